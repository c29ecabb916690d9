package dashboard

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/query"
)

// now returns the store's clock (engine Options.Now) in Unix ns, so that
// "the last hour" means the same to the page as to the engine.
func (h *Handler) now() int64 {
	mint, _ := h.db.Query("").Since(0).Range()
	return mint
}

// seriesCount returns the number of series named metric ("" = any) that
// satisfy ms.
func (h *Handler) seriesCount(metric string, ms []query.Matcher) (uint64, error) {
	names, err := h.db.LabelValues(index.MetricNameLabel, metric, ms...)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range names {
		n += v.Series
	}
	return n, nil
}

// --- /dashboard/api/metrics

type metricInfo struct {
	Name   string `json:"name"`
	Series uint64 `json:"series"`
}

type metricsResponse struct {
	Metrics []metricInfo `json:"metrics"`
	// Series is the number of series in the store.
	Series uint64 `json:"series"`
}

// metrics lists the metric names with their series counts.
func (h *Handler) metrics(r *http.Request) (any, error) {
	if _, err := newParams(r); err != nil {
		return nil, err
	}
	names, err := h.db.MetricNames()
	if err != nil {
		return nil, err
	}
	resp := metricsResponse{Metrics: make([]metricInfo, 0, len(names)), Series: h.db.SeriesCount()}
	for _, n := range names {
		if engine.InternalName(n.Value) {
			resp.Series -= n.Series // bookkeeping series (engine.InternalName) are not shown
			continue
		}
		resp.Metrics = append(resp.Metrics, metricInfo{Name: n.Value, Series: n.Series})
	}
	return resp, nil
}

// --- /dashboard/api/labels and /dashboard/api/cardinality

type valueInfo struct {
	Value  string `json:"value"`
	Series uint64 `json:"series"`
}

type labelInfo struct {
	Name string `json:"name"`
	// Distinct is the number of distinct values (the label's cardinality).
	Distinct int `json:"distinct"`
	// Values lists values with their series counts: every value up to
	// MaxLabelValues sorted by value (labels), or the top ones by series
	// count (cardinality).
	Values    []valueInfo `json:"values"`
	Truncated bool        `json:"truncated,omitempty"`
}

type labelsResponse struct {
	Metric string `json:"metric"`
	// Series is the number of series selected by metric and matchers.
	Series uint64      `json:"series"`
	Labels []labelInfo `json:"labels"`
	// Truncated says that more than MaxLabels label names exist.
	Truncated bool `json:"truncated,omitempty"`
}

// labelStats returns the labels of the selection with all their values.
func (h *Handler) labelStats(r *http.Request) (labelsResponse, params, error) {
	p, err := newParams(r)
	if err != nil {
		return labelsResponse{}, p, err
	}
	metric, err := p.metric(false)
	if err != nil {
		return labelsResponse{}, p, err
	}
	ms, err := p.matchers()
	if err != nil {
		return labelsResponse{}, p, err
	}
	resp := labelsResponse{Metric: metric, Labels: []labelInfo{}}
	if resp.Series, err = h.seriesCount(metric, ms); err != nil {
		return resp, p, err
	}
	names, err := h.db.LabelNames(metric, ms...)
	if err != nil {
		return resp, p, err
	}
	if len(names) > MaxLabels {
		names, resp.Truncated = names[:MaxLabels], true
	}
	for _, n := range names {
		vals, err := h.db.LabelValues(n, metric, ms...)
		if err != nil {
			return resp, p, err
		}
		li := labelInfo{Name: n, Distinct: len(vals), Values: make([]valueInfo, len(vals))}
		for i, v := range vals {
			li.Values[i] = valueInfo{Value: v.Value, Series: v.Series}
		}
		resp.Labels = append(resp.Labels, li)
	}
	return resp, p, nil
}

// labels lists the label names of the selection, each with its values
// (sorted, at most MaxLabelValues) and their series counts: the label
// filter's choices.
func (h *Handler) labels(r *http.Request) (any, error) {
	resp, _, err := h.labelStats(r)
	if err != nil {
		return nil, err
	}
	for i := range resp.Labels {
		l := &resp.Labels[i]
		if len(l.Values) > MaxLabelValues {
			l.Values, l.Truncated = l.Values[:MaxLabelValues], true
		}
	}
	return resp, nil
}

// cardinality lists the labels of the selection by descending number of
// distinct values, each with its top values by series count ("top",
// default 10).
func (h *Handler) cardinality(r *http.Request) (any, error) {
	resp, p, err := h.labelStats(r)
	if err != nil {
		return nil, err
	}
	top, err := p.intParam("top", 10, 1, MaxLabelValues)
	if err != nil {
		return nil, err
	}
	for i := range resp.Labels {
		l := &resp.Labels[i]
		slices.SortStableFunc(l.Values, func(a, b valueInfo) int { return cmp.Compare(b.Series, a.Series) })
		if len(l.Values) > top {
			l.Values, l.Truncated = l.Values[:top], true
		}
	}
	slices.SortStableFunc(resp.Labels, func(a, b labelInfo) int {
		if c := cmp.Compare(b.Distinct, a.Distinct); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return resp, nil
}

// --- /dashboard/api/points

type seriesPoints struct {
	Labels map[string]string `json:"labels"`
	// Total is the exact number of stored points in the range; Shown how
	// many are returned (fewer when downsampled).
	Total int `json:"total"`
	Shown int `json:"shown"`
	// T holds Unix milliseconds, V the values (null for NaN and ±Inf).
	T numbers `json:"t"`
	V numbers `json:"v"`
}

type pointsResponse struct {
	Metric string `json:"metric"`
	From   number `json:"from"` // Unix ms, inclusive
	To     number `json:"to"`   // Unix ms, exclusive
	// SeriesTotal series matched; the first SeriesShown (by id) are
	// returned.
	SeriesTotal uint64 `json:"series_total"`
	SeriesShown int    `json:"series_shown"`
	// Total and Shown add up the series' points.
	Total int `json:"total"`
	Shown int `json:"shown"`
	// Downsampled says that some series has more points than MaxPoints
	// ("max"), reduced by Method.
	Downsampled bool           `json:"downsampled"`
	Method      string         `json:"method"`
	MaxPoints   int            `json:"max_points"`
	Series      []seriesPoints `json:"series"`
}

// points returns the points of the selected series in the range, each
// series downsampled to at most "max" points (minMax).
func (h *Handler) points(r *http.Request) (any, error) {
	p, err := newParams(r)
	if err != nil {
		return nil, err
	}
	metric, err := p.metric(true)
	if err != nil {
		return nil, err
	}
	ms, err := p.matchers()
	if err != nil {
		return nil, err
	}
	tr, err := p.timeRange(h.now())
	if err != nil {
		return nil, err
	}
	maxPts, err := p.intParam("max", DefaultPoints, 10, MaxPoints)
	if err != nil {
		return nil, err
	}
	maxSeries, err := p.intParam("series", DefaultSeries, 1, MaxSeries)
	if err != nil {
		return nil, err
	}
	resp := pointsResponse{
		Metric: metric, From: number(float64(tr.From) / 1e6), To: number(float64(tr.To) / 1e6),
		Method: "minmax", MaxPoints: maxPts, Series: []seriesPoints{},
	}
	if resp.SeriesTotal, err = h.seriesCount(metric, ms); err != nil {
		return nil, err
	}
	list, err := h.db.ListSeries(metric, maxSeries, ms...)
	if err != nil {
		return nil, err
	}
	// A series is singled out by equality on each of its labels and
	// absence of every other label the selection uses.
	names, err := h.db.LabelNames(metric, ms...)
	if err != nil {
		return nil, err
	}
	for _, s := range list {
		one := slices.Clone(ms)
		have := make(map[string]string, len(s.Labels))
		for _, l := range s.Labels {
			one = append(one, query.Eq(l.Name, l.Value))
			have[l.Name] = l.Value
		}
		for _, n := range names {
			if _, ok := have[n]; !ok {
				one = append(one, query.Eq(n, ""))
			}
		}
		q := h.db.Query(metric, one...).FromNanos(tr.From).ToNanos(tr.To)
		n, err := q.Scalar(query.Count)
		if err != nil {
			return nil, err
		}
		if n > MaxRawPoints {
			return nil, tooLarge("series %s holds %d points in the range, over the limit of %d read for one chart: choose a shorter range", seriesName(metric, s.Labels), int64(n), MaxRawPoints)
		}
		ts, vs, err := q.Points()
		if err != nil {
			return nil, err
		}
		sp := seriesPoints{Labels: have, Total: len(ts)}
		dt, dv := minMax(make([]int64, 0, min(len(ts), maxPts)), make([]float64, 0, min(len(ts), maxPts)), ts, vs, maxPts)
		sp.Shown = len(dt)
		sp.T, sp.V = millis(make(numbers, 0, len(dt)), dt), numbers(dv)
		resp.Total += sp.Total
		resp.Shown += sp.Shown
		resp.Downsampled = resp.Downsampled || sp.Shown < sp.Total
		resp.Series = append(resp.Series, sp)
	}
	resp.SeriesShown = len(resp.Series)
	return resp, nil
}

// seriesName formats a series for messages: name{a="x",b="y"}.
func seriesName(name string, ls []index.Label) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteString("=\"")
		b.WriteString(l.Value)
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// --- windowed requests: /dashboard/api/aggregates and /percentiles

type windowedRequest struct {
	p      params
	metric string
	ms     []query.Matcher
	by     string
	w      windowing
	q      *query.Query
}

func (h *Handler) windowedRequest(r *http.Request) (windowedRequest, error) {
	var wr windowedRequest
	p, err := newParams(r)
	if err != nil {
		return wr, err
	}
	wr.p = p
	if wr.metric, err = p.metric(true); err != nil {
		return wr, err
	}
	if wr.ms, err = p.matchers(); err != nil {
		return wr, err
	}
	tr, err := p.timeRange(h.now())
	if err != nil {
		return wr, err
	}
	if wr.w, err = p.windows(tr); err != nil {
		return wr, err
	}
	if wr.by, err = p.one("by"); err != nil {
		return wr, err
	}
	if wr.by != "" {
		if err := checkName("by", wr.by); err != nil {
			return wr, err
		}
	}
	q := h.db.Query(wr.metric, wr.ms...).FromNanos(wr.w.rng.From).ToNanos(wr.w.rng.To).Step(time.Duration(wr.w.step))
	if wr.by != "" {
		q = q.GroupBy(wr.by)
	}
	if wr.w.rollups {
		q = q.UseRollups()
	}
	wr.q = q
	return wr, nil
}

type windowedResponse struct {
	Metric string `json:"metric"`
	By     string `json:"by,omitempty"`
	From   number `json:"from"` // Unix ms, aligned down to a multiple of the step
	To     number `json:"to"`
	StepMS number `json:"step_ms"`
	Step   string `json:"step"`
	// Rollups says whether rollups of cold data could be read.
	Rollups bool `json:"rollups"`
	// Truncated says that more than MaxGroups groups exist (the first by
	// labels are returned).
	Truncated bool `json:"truncated,omitempty"`
}

func (wr *windowedRequest) response() windowedResponse {
	return windowedResponse{
		Metric: wr.metric, By: wr.by,
		From: number(float64(wr.w.rng.From) / 1e6), To: number(float64(wr.w.rng.To) / 1e6),
		StepMS: number(float64(wr.w.step) / 1e6), Step: formatStep(wr.w.step),
		Rollups: wr.w.rollups,
	}
}

// formatStep writes a window length in its largest whole unit: 30s, 5m,
// 2h, 7d (Go's form, 2h0m0s, otherwise).
func formatStep(ns int64) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if ns >= int64(u.d) && ns%int64(u.d) == 0 {
			return fmt.Sprintf("%d%s", ns/int64(u.d), u.name)
		}
	}
	return time.Duration(ns).String()
}

type aggregateRow struct {
	Labels map[string]string `json:"labels"`
	T      numbers           `json:"t"` // window starts, Unix ms
	Count  numbers           `json:"count"`
	Mean   numbers           `json:"mean"`
	Min    numbers           `json:"min"`
	Max    numbers           `json:"max"`
}

type aggregatesResponse struct {
	windowedResponse
	Rows []aggregateRow `json:"rows"`
}

// aggregates returns count, mean, min and max per window (and per group of
// "by"). Only windows holding points are listed.
func (h *Handler) aggregates(r *http.Request) (any, error) {
	wr, err := h.windowedRequest(r)
	if err != nil {
		return nil, err
	}
	rows, err := wr.q.AggregateBy(query.Count, query.Mean, query.Min, query.Max)
	if err != nil {
		return nil, err
	}
	resp := aggregatesResponse{windowedResponse: wr.response(), Rows: []aggregateRow{}}
	if len(rows) > MaxGroups {
		rows, resp.Truncated = rows[:MaxGroups], true
	}
	for _, row := range rows {
		n := len(row.Times)
		ar := aggregateRow{Labels: labelMap(row.Labels), T: millis(make(numbers, 0, n), row.Times),
			Count: make(numbers, n), Mean: make(numbers, n), Min: make(numbers, n), Max: make(numbers, n)}
		for i, v := range row.Values {
			ar.Count[i], ar.Mean[i], ar.Min[i], ar.Max[i] = v[0], v[1], v[2], v[3]
		}
		resp.Rows = append(resp.Rows, ar)
	}
	return resp, nil
}

func labelMap(ls []query.Label) map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// percentilesOf are the percentiles the page draws (p50, p90, p99) unless
// the request names others with "p".
var defaultPercentiles = []float64{50, 90, 99}

// maxPercentiles bounds the percentiles of one request.
const maxPercentiles = 8

type percentileRow struct {
	Labels map[string]string `json:"labels"`
	T      numbers           `json:"t"`
	// Values[j][i] is percentile P[j] of window T[i].
	Values []numbers `json:"values"`
	// RelErr[i] bounds the relative error of window i (0 = exact); null
	// when every window is exact.
	RelErr numbers `json:"rel_err"`
}

type percentilesResponse struct {
	windowedResponse
	P []float64 `json:"p"`
	// Approximate says that some window was answered from rollup
	// sketches, within MaxRelErr.
	Approximate bool            `json:"approximate"`
	MaxRelErr   float64         `json:"max_rel_err"`
	Rows        []percentileRow `json:"rows"`
}

// percentiles returns percentiles (default p50, p90, p99) per window:
// exact from the points, or from rollup sketches (approximate, and said so)
// where rollups are read.
func (h *Handler) percentiles(r *http.Request) (any, error) {
	wr, err := h.windowedRequest(r)
	if err != nil {
		return nil, err
	}
	ps := defaultPercentiles
	if s, err := wr.p.one("p"); err != nil {
		return nil, err
	} else if s != "" {
		if ps, err = parsePercentiles(s); err != nil {
			return nil, err
		}
	}
	if !wr.w.rollups {
		// Exact percentiles hold every value of the range in memory.
		n, err := wr.q.Scalar(query.Count)
		if err != nil {
			return nil, err
		}
		if n > MaxPercentilePoints {
			return nil, tooLarge("the range holds %d points, over the limit of %d for exact percentiles: choose a shorter range, or rollups=on", int64(n), MaxPercentilePoints)
		}
	}
	rows, err := wr.q.PercentilesBy(ps...)
	if err != nil {
		return nil, err
	}
	resp := percentilesResponse{windowedResponse: wr.response(), P: ps, Rows: []percentileRow{}}
	if len(rows) > MaxGroups {
		rows, resp.Truncated = rows[:MaxGroups], true
	}
	for _, row := range rows {
		n := len(row.Times)
		pr := percentileRow{Labels: labelMap(row.Labels), T: millis(make(numbers, 0, n), row.Times), Values: make([]numbers, len(ps))}
		for j := range ps {
			pr.Values[j] = make(numbers, n)
			for i, v := range row.Values {
				pr.Values[j][i] = v[j]
			}
		}
		if !row.Exact() {
			pr.RelErr = numbers(row.RelErr)
			resp.Approximate = true
			for _, e := range row.RelErr {
				resp.MaxRelErr = max(resp.MaxRelErr, e)
			}
		}
		resp.Rows = append(resp.Rows, pr)
	}
	return resp, nil
}

func parsePercentiles(s string) ([]float64, error) {
	ps, err := parseBounds(s)
	if err != nil {
		return nil, badRequest("p=%q: want up to %d ascending percentiles in [0, 100], comma-separated", s, maxPercentiles)
	}
	if len(ps) > maxPercentiles {
		return nil, badRequest("%d percentiles given, over the limit of %d", len(ps), maxPercentiles)
	}
	for _, v := range ps {
		if v < 0 || v > 100 {
			return nil, badRequest("percentile %g is outside [0, 100]", v)
		}
	}
	return ps, nil
}

// --- /dashboard/api/histogram

type histogramResponse struct {
	Metric string `json:"metric"`
	From   number `json:"from"`
	To     number `json:"to"`
	// Bounds are the buckets' upper bounds: a value v counts in the first
	// bucket with v <= bound; Counts has one more entry, for values above
	// every bound.
	Bounds numbers  `json:"bounds"`
	Counts []uint64 `json:"counts"`
	// Total is the number of non-NaN values; Min and Max their range.
	Total uint64 `json:"total"`
	Min   number `json:"min"`
	Max   number `json:"max"`
	// Auto says the bounds were chosen from Min and Max.
	Auto bool `json:"auto"`
}

// histogram counts the values of the range per bucket. "bounds" is a
// comma-separated ascending list, or "auto" (the default): "buckets"
// (default 10) equal buckets between the range's min and max, at round
// numbers.
func (h *Handler) histogram(r *http.Request) (any, error) {
	p, err := newParams(r)
	if err != nil {
		return nil, err
	}
	metric, err := p.metric(true)
	if err != nil {
		return nil, err
	}
	ms, err := p.matchers()
	if err != nil {
		return nil, err
	}
	tr, err := p.timeRange(h.now())
	if err != nil {
		return nil, err
	}
	bs, err := p.one("bounds")
	if err != nil {
		return nil, err
	}
	nb, err := p.intParam("buckets", 10, 1, MaxBounds)
	if err != nil {
		return nil, err
	}
	q := h.db.Query(metric, ms...).FromNanos(tr.From).ToNanos(tr.To)
	sc, err := q.Scalars(query.Count, query.Min, query.Max)
	if err != nil {
		return nil, err
	}
	resp := histogramResponse{Metric: metric, From: number(float64(tr.From) / 1e6), To: number(float64(tr.To) / 1e6),
		Total: uint64(sc[0]), Min: number(sc[1]), Max: number(sc[2])}
	var bounds []float64
	if bs == "" || bs == "auto" {
		bounds, resp.Auto = autoBounds(sc[1], sc[2], nb), true
	} else if bounds, err = parseBounds(bs); err != nil {
		return nil, err
	}
	rows, err := q.BucketsBy(bounds, false)
	if err != nil {
		return nil, err
	}
	resp.Bounds = numbers(bounds)
	resp.Counts = make([]uint64, len(bounds)+1)
	for _, row := range rows { // one row (no grouping), one window (no step)
		for _, vals := range row.Values {
			for j, c := range vals {
				resp.Counts[j] += uint64(c)
			}
		}
	}
	return resp, nil
}

// autoBounds returns at most about n bounds splitting [lo, hi] into equal
// buckets of a round width (1, 2 or 5 times a power of ten), the last bound
// >= hi so that the overflow bucket holds only +Inf. No values (NaN ends)
// or infinite ends give no bounds: one bucket.
func autoBounds(lo, hi float64, n int) []float64 {
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) || n < 1 {
		return []float64{}
	}
	if lo >= hi {
		return []float64{hi}
	}
	raw := hi/float64(n) - lo/float64(n) // finite even when hi-lo is not
	e := math.Floor(math.Log10(raw))
	m := 10.0
	for _, c := range []float64{1, 2, 5} {
		if c*math.Pow(10, e) >= raw {
			m = c
			break
		}
	}
	// Bound k is k*m*10^e, computed by one multiplication or one division
	// by an exact power of ten, so that 0.3 prints as 0.3.
	at := func(k float64) float64 {
		if e < 0 && e >= -22 {
			return k * m / math.Pow(10, -e)
		}
		return k * m * math.Pow(10, e)
	}
	k := math.Floor(lo / at(1))
	out := make([]float64, 0, n+2)
	for len(out) < MaxBounds {
		k++
		b := at(k)
		if math.IsInf(b, 0) || (len(out) > 0 && !(b > out[len(out)-1])) {
			break // past the float range, or below its spacing
		}
		out = append(out, b)
		if b >= hi {
			break
		}
	}
	return out
}
