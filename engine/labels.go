package engine

import (
	"fmt"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/query"
)

// LabelValue is one value of a label with the number of series carrying it.
type LabelValue struct {
	Value  string
	Series uint64
}

// SeriesInfo names one series.
type SeriesInfo struct {
	ID     uint64
	Name   string
	Labels []index.Label
}

// selectIDs resolves name and matchers to series ids ("" = every metric).
func (db *DB) ids(name string, ms []query.Matcher) (*roaring.Bitmap, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	if name == "" && len(ms) == 0 {
		return nil, nil // every series, without materializing the set
	}
	ids, err := db.postings.Select(name, ms)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return ids, nil
}

// InternalName reports whether a metric name is reserved for eventmetrics'
// own bookkeeping (names starting with "__", such as the server's batch ids):
// such series are stored and queryable by name like any other, but the
// Prometheus API and the dashboard leave them out of listings and
// selections.
func InternalName(name string) bool { return strings.HasPrefix(name, "__") }

// MetricNames returns the metric names, sorted, with their series counts.
func (db *DB) MetricNames() ([]LabelValue, error) {
	return db.LabelValues(index.MetricNameLabel, "")
}

// LabelNames returns the label names used by the series named name ("" =
// any) that satisfy the matchers, sorted.
func (db *DB) LabelNames(name string, ms ...query.Matcher) ([]string, error) {
	ids, err := db.ids(name, ms)
	if err != nil {
		return nil, err
	}
	return db.postings.LabelNames(ids), nil
}

// LabelValues returns the values of label among the series named name (""
// = any) that satisfy the matchers, sorted, each with its number of series
// (the label's cardinality). Use index.MetricNameLabel for metric names.
func (db *DB) LabelValues(label, name string, ms ...query.Matcher) ([]LabelValue, error) {
	ids, err := db.ids(name, ms)
	if err != nil {
		return nil, err
	}
	vals, counts := db.postings.LabelValues(label, ids)
	out := make([]LabelValue, len(vals))
	for i := range vals {
		out[i] = LabelValue{Value: vals[i], Series: counts[i]}
	}
	return out, nil
}

// SeriesCount returns the number of series.
func (db *DB) SeriesCount() uint64 { return db.postings.Len() }

// ListSeries returns the series named name ("" = any) that satisfy the
// matchers, in id order, at most limit of them (0 = no limit).
func (db *DB) ListSeries(name string, limit int, ms ...query.Matcher) ([]SeriesInfo, error) {
	db.readMu.RLock()
	defer db.readMu.RUnlock()
	if db.closed.Load() {
		return nil, ErrClosed
	}
	ids, err := db.postings.Select(name, ms)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	var out []SeriesInfo
	it := ids.Iterator()
	for it.HasNext() && (limit <= 0 || len(out) < limit) {
		id := uint64(it.Next())
		n, ls, err := db.labelsOf(id)
		if err != nil {
			return nil, err
		}
		out = append(out, SeriesInfo{ID: id, Name: n, Labels: ls})
	}
	return out, nil
}

// labelsOf returns the name and labels of series id, from memory or pebble.
func (db *DB) labelsOf(id uint64) (string, []index.Label, error) {
	db.seriesMu.RLock()
	s := db.lookupIDLocked(id)
	db.seriesMu.RUnlock()
	if s != nil {
		return s.name, s.labels, nil
	}
	key, err := db.getValue(appendSeriesIDKey(nil, id))
	if err != nil {
		return "", nil, fmt.Errorf("engine: series %d: %w", id, err)
	}
	if key == nil {
		return "", nil, fmt.Errorf("engine: series %d is in the index but has no entry", id)
	}
	name, labels, err := index.DecodeKey(key)
	if err != nil {
		return "", nil, fmt.Errorf("engine: series %d: %w", id, err)
	}
	return name, labels, nil
}
