package metrics_test

import (
	"sync"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/metrics"
	"github.com/eventmetrics/eventmetrics/query"
)

func TestMeter(t *testing.T) {
	now := time.Unix(10_000, 300_000_000)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	db := openDB(t, nil)
	r := newReg(t, &metrics.RegistryOptions{Now: clock, Engine: db})
	m := metrics.Must(r.Meter(metrics.MeterOpts{Opts: metrics.Opts{Name: "logins"}, Periods: []time.Duration{time.Minute, time.Second, 10 * time.Second}}))
	m.Mark()
	m.MarkN(2)
	advance(5 * time.Second)
	m.Mark()
	ps, cs := m.Counts()
	if len(ps) != 3 || ps[0] != time.Second || cs[0] != 1 || cs[1] != 4 || cs[2] != 4 {
		t.Fatalf("periods %v counts %v", ps, cs)
	}
	advance(6 * time.Second) // the first marks leave the 10 s period
	if _, cs = m.Counts(); cs[0] != 0 || cs[1] != 1 || cs[2] != 4 {
		t.Fatalf("after 11 s: %v", cs)
	}
	advance(2 * time.Minute) // a whole ring turn: nothing left
	m.Mark()
	if _, cs = m.Counts(); cs[0] != 1 || cs[1] != 1 || cs[2] != 1 {
		t.Fatalf("after the ring turned: %v", cs)
	}
	f := family(t, r, "logins")
	if len(f.GetMetric()) != 3 || labelsOf(f.GetMetric()[0])["period"] == "" {
		t.Fatalf("exposed %v", f)
	}
	byPeriod := map[string]float64{}
	for _, mm := range f.GetMetric() {
		byPeriod[labelsOf(mm)["period"]] = mm.GetGauge().GetValue()
	}
	if byPeriod["1s"] != 1 || byPeriod["10s"] != 1 || byPeriod["60s"] != 1 {
		t.Fatalf("by period %v", byPeriod)
	}
	flush(t, r)
	if total, err := db.Query("logins").Scalar(query.Sum); err != nil || total != 5 {
		t.Fatalf("stored marks %v %v", total, err)
	}

	v := metrics.Must(r.MeterVec(metrics.MeterOpts{Opts: metrics.Opts{Name: "api.calls", Labels: []string{"route"}}}))
	metrics.Must(v.WithValues("/x")).Mark()
	if ps, cs := metrics.Must(v.WithValues("/x")).Counts(); len(ps) != 2 || cs[0] != 1 {
		t.Fatalf("default periods %v %v", ps, cs)
	}
	for _, bad := range [][]time.Duration{{}, {500 * time.Millisecond}, {1500 * time.Millisecond}, {2 * time.Hour}} {
		_, err := r.Meter(metrics.MeterOpts{Opts: metrics.Opts{Name: "bad.meter"}, Periods: bad})
		wantErr(t, err, metrics.ErrInvalid, "period")
	}
	_, err := r.MeterVec(metrics.MeterOpts{Opts: metrics.Opts{Name: "bad.label", Labels: []string{"period"}}})
	wantErr(t, err, metrics.ErrInvalid, `"period" is reserved`)
	if err := r.SetLevel("logins", metrics.Disabled); err != nil {
		t.Fatal(err)
	}
	m.Mark()
	if _, cs = m.Counts(); cs[0] != 1 {
		t.Fatal("disabled meter counted")
	}
}
