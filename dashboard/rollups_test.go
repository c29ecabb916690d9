package dashboard_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
)

// openRollupFixture opens a store holding "cold": a point every 10 s for
// 2.3 days, ending more than a day before fixtureNow, compacted into cold
// blocks with minute and hour rollups.
func openRollupFixture(t testing.TB) *engine.DB {
	t.Helper()
	db, err := engine.Open(t.TempDir(), &engine.Options{
		Now: func() time.Time { return fixtureNow }, NoBackgroundCompaction: true, Sync: engine.SyncNever,
		Rollups: []time.Duration{time.Minute, time.Hour}, RollupAccuracy: 0.01,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			t.Error(err)
		}
	})
	s, err := db.Series("cold", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b engine.Batch
	start := fixtureNow.Add(-4 * 24 * time.Hour).Truncate(time.Hour)
	for i := range rollupPoints {
		b.Add(s, start.Add(time.Duration(i)*10*time.Second).UnixNano(), math.Exp(math.Sin(float64(i))*2))
	}
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if st := db.LastCompaction(); st.RollupsWritten == 0 {
		t.Fatalf("no rollups written: %+v", st)
	}
	return db
}

const rollupPoints = 20000

// TestPercentilesFromRollups: over a long range the percentiles of cold
// data come from rollup sketches, and the answer says it is approximate and
// by how much; rollups=off gives the exact values, within that bound of
// the approximate ones.
func TestPercentilesFromRollups(t *testing.T) {
	db := openRollupFixture(t)
	srv := serve(t, db)
	var approx, exact percentilesResp
	if code, body := get(t, srv, "/dashboard/api/percentiles", vals("metric", "cold", "last", "7d"), &approx); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if !approx.Rollups || !approx.Approximate || len(approx.Rows) != 1 || approx.Rows[0].RelErr == nil {
		t.Fatalf("7d: rollups %v approximate %v", approx.Rollups, approx.Approximate)
	}
	if code, body := get(t, srv, "/dashboard/api/percentiles", vals("metric", "cold", "last", "7d", "rollups", "off"), &exact); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if exact.Rollups || exact.Approximate || exact.Rows[0].RelErr != nil || len(exact.Rows[0].T) != len(approx.Rows[0].T) {
		t.Fatalf("rollups=off: %+v", exact)
	}
	re := approx.Rows[0].RelErr
	for j := range approx.P {
		for i := range approx.Rows[0].T {
			a, e := approx.Rows[0].Values[j][i], exact.Rows[0].Values[j][i]
			// The sketch bounds the error at the value of the rank; the
			// exact percentile interpolates between two ranks, so allow
			// a little more.
			if math.Abs(a-e) > 3*re[i]*math.Abs(e)+1e-9 && math.Abs(a-e) > 0.05*math.Abs(e) {
				t.Errorf("p%v window %d: approximate %v, exact %v, bound %v", approx.P[j], i, a, e, re[i])
			}
		}
	}
}
