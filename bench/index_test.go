package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/index"
)

// labelSets returns the label sets of n series of the workloads (past
// 1,000 series workload.Labels adds a shard label), as maps and in
// canonical (sorted) form.
func labelSets(n int) ([]map[string]string, [][]index.Label) {
	maps := make([]map[string]string, n)
	sorted := make([][]index.Label, n)
	for s := range n {
		maps[s] = workload.Labels(s)
		sorted[s] = index.Sorted(nil, maps[s])
	}
	return maps, sorted
}

func sizeName(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("series=%dk", n/1000)
	}
	return fmt.Sprintf("series=%d", n)
}

// selections are the matcher sets of the index benchmarks: those of Q1–Q4
// and two that take other paths (a regexp alternation, a negation).
var selections = []struct {
	name string
	ms   []index.Matcher
}{
	{"Q1-one-series", []index.Matcher{
		index.MustMatcher(index.MatchEqual, "service", "svc-0"),
		index.MustMatcher(index.MatchEqual, "endpoint", "/api/0"),
		index.MustMatcher(index.MatchEqual, "status", "200"),
	}},
	{"Q2-service", []index.Matcher{index.MustMatcher(index.MatchEqual, "service", "svc-3")}},
	{"Q3-endpoint", []index.Matcher{index.MustMatcher(index.MatchEqual, "endpoint", "/api/7")}},
	{"Q4-all", nil},
	{"regexp-alternation", []index.Matcher{index.MustMatcher(index.MatchRegexp, "endpoint", "/api/(1|2|3)")}},
	{"neq-status", []index.Matcher{index.MustMatcher(index.MatchNotEqual, "status", "200")}},
}

const indexMetric = "http_request_duration_seconds"

func (s *suite) indexCases() []benchCase {
	var cases []benchCase
	for _, n := range s.sz.indexSeries {
		cases = append(cases, benchCase{"postings-add/" + sizeName(n), func(b *testing.B) {
			_, sorted := labelSets(n)
			b.ReportAllocs()
			ops := 0
			for b.Loop() {
				p := index.NewPostings()
				for id, ls := range sorted {
					p.Add(uint32(id+1), indexMetric, ls)
				}
				ops++
			}
			b.ReportMetric(perSecond(float64(ops*n), b.Elapsed()), "series/s")
		}})
		for _, sel := range selections {
			cases = append(cases, benchCase{"postings-select/" + sizeName(n) + "/" + sel.name, func(b *testing.B) {
				_, sorted := labelSets(n)
				p := index.NewPostings()
				for id, ls := range sorted {
					p.Add(uint32(id+1), indexMetric, ls)
				}
				ids, err := p.Select(indexMetric, sel.ms)
				if err != nil {
					b.Fatal(err)
				}
				want := len(labelSetsMatching(sorted, sel.ms))
				if int(ids.GetCardinality()) != want {
					b.Fatalf("%s selects %d series, want %d", sel.name, ids.GetCardinality(), want)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.Select(indexMetric, sel.ms); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(want), "series/op")
			}})
		}
		cases = append(cases,
			benchCase{"db-series-create/" + sizeName(n), func(b *testing.B) {
				maps, _ := labelSets(n)
				b.ReportAllocs()
				var el time.Duration
				ops := 0
				for b.Loop() {
					b.StopTimer()
					db := openDB(b, b.TempDir(), &engine.Options{Sync: engine.SyncNever})
					b.StartTimer()
					start := time.Now()
					for _, l := range maps {
						if _, err := db.Series(indexMetric, l); err != nil {
							b.Fatal(err)
						}
					}
					el += time.Since(start)
					ops++
					b.StopTimer()
					if got := db.SeriesCount(); got != uint64(n) {
						b.Fatalf("%d series, want %d", got, n)
					}
					if err := db.Close(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.ReportMetric(perSecond(float64(ops*n), el), "series/s")
			}},
			benchCase{"db-series-lookup/" + sizeName(n), func(b *testing.B) {
				maps, _ := labelSets(n)
				db := openDB(b, b.TempDir(), &engine.Options{Sync: engine.SyncNever})
				defer db.Close()
				want := make([]*engine.Series, n)
				for i, l := range maps {
					h, err := db.Series(indexMetric, l)
					if err != nil {
						b.Fatal(err)
					}
					want[i] = h
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					k := i % n
					h, err := db.Series(indexMetric, maps[k])
					if err != nil || h != want[k] {
						b.Fatalf("lookup of series %d: %v, %v (want the handle it was created with)", k, h, err)
					}
					i++
				}
				b.ReportMetric(perSecond(float64(i), b.Elapsed()), "lookups/s")
			}},
		)
	}
	return cases
}

// labelSetsMatching returns the indexes of the label sets that satisfy
// every matcher (by Matcher.Matches, independently of the postings).
func labelSetsMatching(sets [][]index.Label, ms []index.Matcher) []int {
	var out []int
	for i, ls := range sets {
		ok := true
		for _, m := range ms {
			v := ""
			for _, l := range ls {
				if l.Name == m.Name {
					v = l.Value
				}
			}
			if !m.Matches(v) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, i)
		}
	}
	return out
}

// BenchmarkIndex measures series identity and selection at 1k and 100k
// series: building postings (index.Postings.Add), resolving matchers
// (index.Postings.Select, with the number of series selected), and the
// engine's db.Series: creating series (a log record and a postings entry
// each) and looking up existing ones by their label map.
func BenchmarkIndex(b *testing.B) { runCases(b, std().indexCases()) }
