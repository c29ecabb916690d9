// Package index owns series identity and postings.
//
// A series is named by a metric name plus a set of labels. The package gives
// that set one canonical byte encoding (the series key, see AppendKey), which
// is injective: two different (name, labels) pairs never share a key. The
// engine maps each key to a uint64 series id.
//
// Postings map every metric name and every label name=value pair to the
// roaring bitmap of the series ids that carry it. Matchers (Eq, Neq, Re,
// NotRe) are resolved by set operations on those bitmaps with Prometheus
// semantics: a matcher that matches the empty string also selects the series
// that lack the label.
//
// Example:
//
//	p := index.NewPostings()
//	p.Add(1, "latency", []index.Label{{Name: "service", Value: "a"}})
//	ids, _ := p.Select("latency", []index.Matcher{index.MustMatcher(index.MatchEqual, "service", "a")})
//
// Concurrency: Postings is safe for concurrent use (an internal RWMutex);
// the functions on keys and labels are pure.
package index
