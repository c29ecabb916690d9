package server

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzIngestJSON checks the ingest body reader against encoding/json: it
// never panics; what it accepts is valid JSON with as many points as
// encoding/json finds; and a point both accept reads the same.
func FuzzIngestJSON(f *testing.F) {
	for _, s := range []string{
		`{"points":[]}`,
		`{"batch_id":"a-1","points":[{"name":"m","labels":{"a":"b"},"value":1.5,"timestamp":17}]}`,
		`{"points":[{"name":"m","value":"NaN"},{"name":"m","value":"+Inf","timestamp":"2026-01-02T03:04:05Z"}]}`,
		`{"points":[{"name":"c","value":2,"op":"increment"},{"name":"x\u00e9\"\\","value":-0}]}`,
		`{"points":[{"name":"m","value":1e400},{"name":"m","value":"abc"},{"name":"m","labels":{"a":1},"value":1}]}`,
		`{"points":[{"name":"m","value":1,"extra":{"a":[1,2,{"b":null}]}}], "batch_id": null}`,
		`{"points":[{"name":"\ud83d\ude00","value":1}]}`,
		`{"points":[1,"x",null,[]]}`,
		`{"points":[{"name":"m","value":1}]} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		type got struct {
			p      rawPoint
			labels map[string]string
			lerr   error
		}
		var pts []got
		id, err := parseIngest(body, 1<<20, func(i int, p *rawPoint) error {
			g := got{p: *p}
			if p.labels != nil {
				g.labels = map[string]string{}
				g.lerr = labelsInto(p.labels, g.labels)
			}
			pts = append(pts, g)
			return nil
		})
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var req IngestRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return // a top-level field of the wrong type, which the reader reports per point
		}
		if len(req.Points) != len(pts) {
			t.Fatalf("%d points, encoding/json finds %d", len(pts), len(req.Points))
		}
		if !utf8.Valid(body) {
			return // encoding/json replaces invalid UTF-8; the reader keeps it for the engine to refuse
		}
		if id != req.BatchID {
			t.Fatalf("batch id %q, encoding/json %q", id, req.BatchID)
		}
		for i, raw := range req.Points {
			var p Point
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if dec.Decode(&p) != nil || pts[i].p.err != nil || pts[i].lerr != nil || p.Value == nil {
				continue
			}
			g := pts[i].p
			v := float64(*p.Value)
			if string(g.name) != p.Name || !g.hasValue || math.Float64bits(g.value) != math.Float64bits(v) && !(v != v && g.value != g.value) {
				t.Fatalf("point %d: read %+v, encoding/json %+v", i, g, p)
			}
			if (p.Timestamp != nil) != g.hasTS || p.Timestamp != nil && int64(*p.Timestamp) != g.ts {
				t.Fatalf("point %d: timestamp %v %v, encoding/json %v", i, g.hasTS, g.ts, p.Timestamp)
			}
			if g.increment != (p.Op == "increment") {
				t.Fatalf("point %d: op", i)
			}
			if len(p.Labels) != len(pts[i].labels) {
				t.Fatalf("point %d: labels %v, encoding/json %v", i, pts[i].labels, p.Labels)
			}
			for k, v := range p.Labels {
				if pts[i].labels[k] != v {
					t.Fatalf("point %d: labels %v, encoding/json %v", i, pts[i].labels, p.Labels)
				}
			}
		}
	})
}

// TestDedupBounded: keys are forgotten past the window and past the
// maximum count, oldest first; a key in flight makes a second claimant wait.
func TestDedupBounded(t *testing.T) {
	d := newDedup(time.Minute, 3)
	ctx := context.Background()
	for k := uint64(1); k <= 5; k++ {
		if dup, err := d.begin(ctx, k); dup || err != nil {
			t.Fatalf("key %d: %v %v", k, dup, err)
		}
		d.end(k, true, int64(k))
	}
	if d.size() != 3 {
		t.Fatalf("size %d, want 3", d.size())
	}
	for k, want := range map[uint64]bool{1: false, 2: false, 3: true, 4: true, 5: true} {
		dup, _ := d.begin(ctx, k)
		if dup != want {
			t.Errorf("key %d: dup %v, want %v", k, dup, want)
		}
		if !dup {
			d.end(k, false, 0)
		}
	}
	d.end(6, true, int64(2*time.Minute)) // expires everything older than a minute
	if d.size() != 1 {
		t.Errorf("size %d after the window passed, want 1", d.size())
	}
	// In flight: a second claimant waits, then sees the outcome.
	if dup, _ := d.begin(ctx, 7); dup {
		t.Fatal("fresh key is a duplicate")
	}
	got := make(chan bool)
	go func() { dup, _ := d.begin(ctx, 7); got <- dup }()
	select {
	case <-got:
		t.Fatal("second claimant did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	d.end(7, true, int64(2*time.Minute))
	if !<-got {
		t.Error("second claimant of an acknowledged key is not a duplicate")
	}
	cctx, cancel := context.WithCancel(ctx)
	d.begin(ctx, 8)
	cancel()
	if _, err := d.begin(cctx, 8); err == nil {
		t.Error("a cancelled wait returned no error")
	}
	d.end(8, false, 0)
}
