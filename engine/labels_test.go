package engine_test

import (
	"slices"
	"testing"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

func TestLabelListing(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, nil)
	for _, w := range []struct {
		name string
		l    engine.Labels
	}{
		{"http", engine.Labels{"code": "200", "svc": "a"}},
		{"http", engine.Labels{"code": "500", "svc": "a"}},
		{"http", engine.Labels{"code": "200", "svc": "b"}},
		{"queue", engine.Labels{"svc": "b", "shard": "1"}},
	} {
		if err := db.Observe(w.name, 1, w.l); err != nil {
			t.Fatal(err)
		}
	}
	check := func(db *engine.DB) {
		t.Helper()
		names, _ := db.MetricNames()
		if len(names) != 2 || names[0] != (engine.LabelValue{Value: "http", Series: 3}) || names[1] != (engine.LabelValue{Value: "queue", Series: 1}) {
			t.Errorf("metric names %v", names)
		}
		ln, _ := db.LabelNames("http")
		if !slices.Equal(ln, []string{"code", "svc"}) {
			t.Errorf("label names of http: %v", ln)
		}
		ln, _ = db.LabelNames("")
		if !slices.Equal(ln, []string{"code", "shard", "svc"}) {
			t.Errorf("all label names: %v", ln)
		}
		lv, _ := db.LabelValues("code", "http", query.Eq("svc", "a"))
		if len(lv) != 2 || lv[0] != (engine.LabelValue{Value: "200", Series: 1}) {
			t.Errorf("code values under svc=a: %v", lv)
		}
		lv, _ = db.LabelValues("svc", "")
		if len(lv) != 2 || lv[0].Series != 2 || lv[1].Series != 2 {
			t.Errorf("svc cardinality: %v", lv)
		}
		ss, err := db.ListSeries("http", 0, query.Eq("code", "200"))
		if err != nil || len(ss) != 2 || ss[0].Name != "http" {
			t.Errorf("list series: %v %v", ss, err)
		}
		if db.SeriesCount() != 4 {
			t.Errorf("series count %d", db.SeriesCount())
		}
	}
	check(db)
	db.Close()
	db = open(t, dir, nil)
	defer db.Close()
	check(db) // from the persisted postings and series entries
}
