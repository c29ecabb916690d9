package encode

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3 /* CLOCK_THREAD_CPUTIME_ID */, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// measure returns min CPU ns per call over rounds.
func measure(f func(), inner int) float64 {
	best := 1e18
	for range 25 {
		c0 := threadCPU()
		for range inner {
			f()
		}
		d := float64(threadCPU()-c0) / float64(inner)
		if d > 0 && d < best {
			best = d
		}
	}
	return best
}

func TestScratchCPU(t *testing.T) {
	if os.Getenv("SCRATCH") == "" {
		t.Skip()
	}
	runtime.LockOSThread()
	for _, s := range benchShapes() {
		d := makeBenchDataT(t, s)
		k := 0
		dst := make([]byte, 0, 64<<10)
		enc := measure(func() { dst, _ = AppendChunk(dst[:0], d.ts[k%8], d.vs[k%8]); k++ }, 30)
		ts, vs := make([]int64, 0, benchPoints), make([]float64, 0, benchPoints)
		dec := measure(func() { _, ts, vs, _ = DecodeAll(d.chunks[k%8], ts[:0], vs[:0]); k++ }, 100)
		var it Iterator
		var sum uint64
		iter := measure(func() {
			it.Reset(d.chunks[k%8])
			for it.Next() {
				t, v := it.At()
				sum += uint64(t) ^ uint64(v)
			}
			k++
		}, 100)
		fmt.Printf("%-22s %6.3f B/pt  enc %6.2f us  dec %6.0f Mpts/s  iter %6.0f Mpts/s\n", s.name, float64(d.bytes)/8/benchPoints, enc/1e3, benchPoints/dec*1e3, benchPoints/iter*1e3)
	}
}

func makeBenchDataT(t *testing.T, s benchShape) *benchData {
	r := newRand(t, 100)
	d := &benchData{}
	for range 8 {
		ts, vs := s.gen(r, benchPoints)
		c, _ := AppendChunk(nil, ts, vs)
		d.ts, d.vs, d.chunks = append(d.ts, ts), append(d.vs, vs), append(d.chunks, c)
		d.bytes += len(c)
	}
	return d
}
