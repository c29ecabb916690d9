package metrics_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/metrics"
)

// TestLabelBindingModel applies random Bind, With and WithValues calls to
// a CounterVec and to a plain model of label binding, and compares every
// outcome (error or not, which label set, which handle) and finally the
// exposed counts.
func TestLabelBindingModel(t *testing.T) {
	rnd := testutil.Rand(t)
	names := []string{"a", "b", "c", "d"}
	defaults := map[string]string{"b": "B", "d": ""} // d defaults to absent
	values := []string{"x", "y", "", "q\"\n\\"}
	r := newReg(t, nil)
	v := metrics.Must(r.CounterVec(metrics.Opts{Name: "m", Labels: names, Defaults: defaults}))

	type partial struct {
		vec   metrics.CounterVec
		bound map[string]string
	}
	parts := []partial{{vec: v, bound: map[string]string{}}}
	handles := map[string]*metrics.Counter{} // full values key -> handle
	counts := map[string]float64{}
	keyOf := func(full map[string]string) string {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "%q,", full[n])
		}
		return b.String()
	}
	randLabels := func() map[string]string {
		l := map[string]string{}
		for _, n := range append(names, "zz") {
			if rnd.IntN(3) == 0 {
				l[n] = values[rnd.IntN(len(values))]
			}
		}
		return l
	}
	// complete returns the full label set of p with l added, or false.
	complete := func(p partial, l map[string]string) (map[string]string, bool) {
		full := map[string]string{}
		for k, val := range l {
			if !strings.Contains("abcd", k) || len(k) != 1 {
				return nil, false // unknown
			}
			if _, ok := p.bound[k]; ok {
				return nil, false // bound twice
			}
			full[k] = val
		}
		for _, n := range names {
			if _, ok := full[n]; ok {
				continue
			}
			if val, ok := p.bound[n]; ok {
				full[n] = val
			} else if val, ok := defaults[n]; ok {
				full[n] = val
			} else {
				return nil, false // missing
			}
		}
		return full, true
	}
	use := func(full map[string]string, c *metrics.Counter) {
		k := keyOf(full)
		if h, ok := handles[k]; ok && h != c {
			t.Fatalf("label set %s: two handles", k)
		}
		handles[k] = c
		c.Inc()
		counts[k]++
	}
	for i := range 3000 {
		p := parts[rnd.IntN(len(parts))]
		switch rnd.IntN(3) {
		case 0: // Bind
			l := randLabels()
			nv, err := p.vec.Bind(l)
			// Bind does not need completeness: only unknown and twice fail.
			wantOK := true
			for k := range l {
				if _, ok := p.bound[k]; ok || k == "zz" {
					wantOK = false
				}
			}
			if (err == nil) != wantOK || (err != nil && !errors.Is(err, metrics.ErrLabels)) {
				t.Fatalf("op %d: Bind(%v) on %v: %v, want ok=%v", i, l, p.bound, err, wantOK)
			}
			if err == nil && len(parts) < 50 {
				nb := map[string]string{}
				for k, val := range p.bound {
					nb[k] = val
				}
				for k, val := range l {
					nb[k] = val
				}
				parts = append(parts, partial{vec: nv, bound: nb})
			}
		case 1: // With
			l := randLabels()
			c, err := p.vec.With(l)
			full, wantOK := complete(p, l)
			if (err == nil) != wantOK || (err != nil && !errors.Is(err, metrics.ErrLabels)) {
				t.Fatalf("op %d: With(%v) on %v: %v, want ok=%v", i, l, p.bound, err, wantOK)
			}
			if err == nil {
				use(full, c)
			}
		case 2: // WithValues
			var unbound []string
			for _, n := range names {
				if _, ok := p.bound[n]; !ok {
					unbound = append(unbound, n)
				}
			}
			k := rnd.IntN(len(unbound) + 2)
			vals := make([]string, k)
			for j := range vals {
				vals[j] = values[rnd.IntN(len(values))]
			}
			c, err := p.vec.WithValues(vals...)
			full := map[string]string{}
			wantOK := k <= len(unbound)
			for j, n := range unbound {
				switch {
				case j < k:
					full[n] = vals[j]
				default:
					if d, ok := defaults[n]; ok {
						full[n] = d
					} else {
						wantOK = false
					}
				}
			}
			for n, val := range p.bound {
				full[n] = val
			}
			if (err == nil) != wantOK || (err != nil && !errors.Is(err, metrics.ErrLabels)) {
				t.Fatalf("op %d: WithValues(%q) on %v: %v, want ok=%v", i, vals, p.bound, err, wantOK)
			}
			if err == nil {
				use(full, c)
			}
		}
	}
	// The exposition holds exactly the model's label sets and counts.
	f := family(t, r, "m_total")
	if len(f.GetMetric()) != len(counts) {
		t.Fatalf("%d label sets exposed, model has %d", len(f.GetMetric()), len(counts))
	}
	for _, m := range f.GetMetric() {
		ls := labelsOf(m)
		full := map[string]string{}
		for _, n := range names {
			full[n] = ls[n]
		}
		if got, want := m.GetCounter().GetValue(), counts[keyOf(full)]; got != want {
			t.Fatalf("%v: %v, model %v", ls, got, want)
		}
	}
}
