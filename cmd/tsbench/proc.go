package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// memStatus is the memory of this process as /proc/self/status reports it.
type memStatus struct {
	RSS  int64 // VmRSS: resident now, bytes
	Peak int64 // VmHWM: the peak of VmRSS since the process started, bytes
}

// readMemStatus reads VmRSS and VmHWM of this process (Linux). Elsewhere it
// returns zeros and an error.
func readMemStatus() (memStatus, error) {
	var m memStatus
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return m, fmt.Errorf("read memory status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &m.RSS
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &m.Peak
		default:
			continue
		}
		f := strings.Fields(line) // "VmRSS:", "12345", "kB"
		if len(f) != 3 || f[2] != "kB" {
			return m, fmt.Errorf("read memory status: unexpected line %q", line)
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return m, fmt.Errorf("read memory status: %q: %w", line, err)
		}
		*dst = kb << 10
	}
	if m.RSS == 0 || m.Peak == 0 {
		return m, errors.New("read memory status: no VmRSS/VmHWM in /proc/self/status")
	}
	return m, nil
}

// loadAverage returns the 1, 5 and 15 minute load averages (Linux), or nil.
func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		if out[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return nil
		}
	}
	return out
}

// diskUsage is the size of a directory tree.
type diskUsage struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"` // sum of the files' sizes
	// By top-level entry of the data directory: "wal" (the engine's log),
	// "data" (the pebble store: chunks, index, manifest), and the rest
	// (the lock file).
	WALBytes   int64 `json:"wal_bytes"`
	StoreBytes int64 `json:"store_bytes"`
	OtherBytes int64 `json:"other_bytes"`
}

// measureDisk sums the sizes of every regular file under dir.
func measureDisk(dir string) (diskUsage, error) {
	var u diskUsage
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n := info.Size()
		u.Files++
		u.Bytes += n
		rel, _ := filepath.Rel(dir, path)
		switch top, _, _ := strings.Cut(filepath.ToSlash(rel), "/"); top {
		case "wal":
			u.WALBytes += n
		case "data":
			u.StoreBytes += n
		default:
			u.OtherBytes += n
		}
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("measure disk usage of %s: %w", dir, err)
	}
	return u, nil
}

// checkDir accepts a -dir that is missing or an empty directory: tsbench
// must know every point in it, and must never delete what it did not write.
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return usagef("-dir: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return usagef("-dir: %v", err)
	}
	if !st.IsDir() {
		return usagef("-dir: %s is not a directory", dir)
	}
	if _, err := f.Readdirnames(1); err != io.EOF {
		if err == nil {
			return usagef("-dir: %s is not empty: give a missing or empty directory (tsbench verifies every point it wrote, and removes what it wrote)", dir)
		}
		return usagef("-dir: %v", err)
	}
	return nil
}

// dataDir is the directory of a run and how to clean it up.
type dataDir struct {
	path    string
	created bool // tsbench created path itself (else it was empty)
}

func makeDataDir(dir string) (*dataDir, error) {
	if dir == "" {
		p, err := os.MkdirTemp("", "tsbench-")
		if err != nil {
			return nil, fmt.Errorf("create a temporary data directory: %w", err)
		}
		return &dataDir{path: p, created: true}, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	_, statErr := os.Stat(abs)
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	return &dataDir{path: abs, created: errors.Is(statErr, fs.ErrNotExist)}, nil
}

// remove deletes what tsbench wrote: the directory if it created it, else
// its contents (it was empty before).
func (d *dataDir) remove() error {
	if d.created {
		return os.RemoveAll(d.path)
	}
	names, err := os.ReadDir(d.path)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(d.path, n.Name())); err != nil {
			return err
		}
	}
	return nil
}
