package server

import (
	"bytes"
	"strconv"
	"testing"
)

func ingestBody(n, series int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"batch_id":"0123456789abcdef0123456789abcdef-1","points":[`)
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"name":"http_request_duration_seconds","labels":{"instance":"i`)
		buf.WriteString(strconv.Itoa(i % series))
		buf.WriteString(`","job":"api"},"value":`)
		buf.WriteString(strconv.FormatFloat(float64(i)*0.25, 'g', -1, 64))
		buf.WriteString(`,"timestamp":`)
		buf.WriteString(strconv.FormatInt(1_700_000_000_000_000_000+int64(i)*1e6, 10))
		buf.WriteByte('}')
	}
	buf.WriteString("]}")
	return buf.Bytes()
}

// BenchmarkParseIngest measures the JSON reader alone (no store).
func BenchmarkParseIngest(b *testing.B) {
	body := ingestBody(5000, 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var sum float64
	for b.Loop() {
		_, err := parseIngest(body, 1<<20, func(i int, p *rawPoint) error {
			sum += p.value
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*5000/b.Elapsed().Seconds(), "points/s")
}

// TestParseIngestAllocs guards the reader's allocations: none per point
// for plain names (a name is a span of the body until a series is new).
func TestParseIngestAllocs(t *testing.T) {
	body := ingestBody(1000, 10)
	allocs := testing.AllocsPerRun(20, func() {
		parseIngest(body, 1<<20, func(int, *rawPoint) error { return nil })
	})
	if allocs > 5 {
		t.Errorf("%v allocations to read 1000 points, want at most 5", allocs)
	}
}
