package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/query"
)

// QueryRequest is the body of POST /em/v1/query: every part of the query
// layer (package query) as JSON.
type QueryRequest struct {
	Name     string        `json:"name"`
	Matchers []MatcherSpec `json:"matchers,omitempty"`

	// Time selection: From (inclusive) and To (exclusive) as Unix ns or
	// RFC 3339; Since ("5m") sets From to now minus it. None: every point.
	From  *Time    `json:"from,omitempty"`
	To    *Time    `json:"to,omitempty"`
	Since Duration `json:"since,omitempty"`

	// Groups and windows: one row per combination of GroupBy values, or
	// per series with BySeries; one result per tumbling window of Step.
	GroupBy  []string `json:"group_by,omitempty"`
	BySeries bool     `json:"by_series,omitempty"`
	Step     Duration `json:"step,omitempty"`
	// Rollups lets grouped aggregations and percentiles read rollups.
	Rollups bool `json:"rollups,omitempty"`

	// Op is what to compute:
	//   "aggregate":   Aggs (last, min, max, mean, count, sum, increase, rate)
	//   "percentiles": Percentiles (0..100), exact
	//   "approx_percentiles": Percentiles within RelErr (DDSketch), ungrouped
	//   "buckets":     counts per Bounds (Cumulative for "le" counts)
	//   "points":      every selected point (timestamps and values)
	// Ungrouped aggregate, percentiles and buckets answer Values; grouped or
	// windowed ones answer Rows.
	Op          string    `json:"op"`
	Aggs        []string  `json:"aggs,omitempty"`
	Percentiles []float64 `json:"percentiles,omitempty"`
	Bounds      []Float   `json:"bounds,omitempty"`
	Cumulative  bool      `json:"cumulative,omitempty"`
	RelErr      float64   `json:"rel_err,omitempty"`
}

// MatcherSpec is one label matcher: Op is "=", "!=", "=~" or "!~"
// (regular expressions fully anchored, RE2 syntax, as in Prometheus).
type MatcherSpec struct {
	Label string `json:"label"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

// QueryResponse answers a query; which fields are set depends on Op.
type QueryResponse struct {
	Values     []Float `json:"values,omitempty"`
	Rows       []Row   `json:"rows,omitempty"`
	Timestamps []int64 `json:"timestamps,omitempty"` // "points": Unix ns
	RelErr     float64 `json:"rel_err,omitempty"`    // "approx_percentiles": the bound
	Count      uint64  `json:"count,omitempty"`      // "approx_percentiles": values summarized
}

// Row is one group's result (query.Row).
type Row struct {
	Labels map[string]string `json:"labels"`
	Times  []int64           `json:"times"` // window starts, Unix ns
	Values [][]Float         `json:"values"`
	RelErr []float64         `json:"rel_err,omitempty"`
}

// Matchers turns specs into query matchers, reporting the first bad one.
func Matchers(specs []MatcherSpec) ([]query.Matcher, error) {
	ms := make([]query.Matcher, 0, len(specs))
	for i, sp := range specs {
		var t index.MatchType
		switch sp.Op {
		case "=", "":
			t = index.MatchEqual
		case "!=":
			t = index.MatchNotEqual
		case "=~":
			t = index.MatchRegexp
		case "!~":
			t = index.MatchNotRegexp
		default:
			return nil, fmt.Errorf("matcher %d: unknown op %q (=, !=, =~, !~)", i, sp.Op)
		}
		if sp.Label == "" {
			return nil, fmt.Errorf("matcher %d: empty label name", i)
		}
		m, err := index.NewMatcher(t, sp.Label, sp.Value)
		if err != nil {
			return nil, fmt.Errorf("matcher %d: %v", i, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// ParseAgg parses an aggregation name.
func ParseAgg(s string) (query.Agg, error) {
	for _, a := range []query.Agg{query.Last, query.Min, query.Max, query.Mean, query.Count, query.Sum, query.Increase, query.Rate} {
		if a.String() == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown aggregation %q (last, min, max, mean, count, sum, increase, rate)", s)
}

// RunQuery runs req on db (the native query API, also used by the
// command line on a local store). Errors about the request wrap
// ErrBadQuery.
func RunQuery(db *engine.DB, req *QueryRequest, maxPoints int) (*QueryResponse, error) {
	q, err := buildQuery(db, req)
	if err != nil {
		return nil, err
	}
	grouped := len(req.GroupBy) > 0 || req.BySeries || req.Step > 0
	switch req.Op {
	case "aggregate":
		if len(req.Aggs) == 0 {
			return nil, badQuery("aggregate needs aggs")
		}
		aggs := make([]query.Agg, len(req.Aggs))
		counter := false
		for i, a := range req.Aggs {
			if aggs[i], err = ParseAgg(a); err != nil {
				return nil, badQuery("%v", err)
			}
			counter = counter || aggs[i] == query.Increase || aggs[i] == query.Rate
		}
		if !grouped && !counter {
			vs, err := q.Scalars(aggs...)
			return &QueryResponse{Values: floats(vs)}, err
		}
		rows, err := q.AggregateBy(aggs...)
		return rowsResponse(rows, err, !grouped)
	case "percentiles":
		if len(req.Percentiles) == 0 {
			return nil, badQuery("percentiles needs percentiles")
		}
		if !grouped {
			vs, err := q.Percentiles(req.Percentiles...)
			return &QueryResponse{Values: floats(vs)}, err
		}
		rows, err := q.PercentilesBy(req.Percentiles...)
		return rowsResponse(rows, err, false)
	case "approx_percentiles":
		if grouped {
			return nil, badQuery("approx_percentiles takes no group_by, by_series or step")
		}
		a, err := q.ApproxPercentiles(req.RelErr, req.Percentiles...)
		if err != nil {
			return nil, err
		}
		return &QueryResponse{Values: floats(a.Values), RelErr: a.RelativeError, Count: a.Count}, nil
	case "buckets":
		bounds := make([]float64, len(req.Bounds))
		for i, b := range req.Bounds {
			bounds[i] = float64(b)
		}
		if !grouped {
			cs, err := q.Buckets(bounds, req.Cumulative)
			if err != nil {
				return nil, err
			}
			vs := make([]Float, len(cs))
			for i, c := range cs {
				vs[i] = Float(c)
			}
			return &QueryResponse{Values: vs}, nil
		}
		rows, err := q.BucketsBy(bounds, req.Cumulative)
		return rowsResponse(rows, err, false)
	case "points":
		if grouped {
			return nil, badQuery("points takes no group_by, by_series or step")
		}
		ts, vs, err := q.Points()
		if err != nil {
			return nil, err
		}
		if len(ts) > maxPoints {
			return nil, badQuery("query selects %d points, more than the server's limit of %d: narrow the range or aggregate", len(ts), maxPoints)
		}
		return &QueryResponse{Timestamps: ts, Values: floats(vs)}, nil
	}
	return nil, badQuery("unknown op %q (aggregate, percentiles, approx_percentiles, buckets, points)", req.Op)
}

func buildQuery(db *engine.DB, req *QueryRequest) (*query.Query, error) {
	if req.Name == "" && len(req.Matchers) == 0 {
		return nil, badQuery("a query needs a name or at least one matcher")
	}
	ms, err := Matchers(req.Matchers)
	if err != nil {
		return nil, badQuery("%v", err)
	}
	q := db.Query(req.Name, ms...)
	if req.Since > 0 {
		q = q.Since(time.Duration(req.Since))
	}
	if req.From != nil {
		q = q.FromNanos(int64(*req.From))
	}
	if req.To != nil {
		q = q.ToNanos(int64(*req.To))
	}
	if req.BySeries && len(req.GroupBy) > 0 {
		return nil, badQuery("group_by and by_series exclude each other")
	}
	if req.BySeries {
		q = q.BySeries()
	} else if len(req.GroupBy) > 0 {
		q = q.GroupBy(req.GroupBy...)
	}
	if req.Step < 0 {
		return nil, badQuery("step must be positive")
	}
	if req.Step > 0 {
		q = q.Step(time.Duration(req.Step))
	}
	if req.Rollups {
		q = q.UseRollups()
	}
	return q, nil
}

// ErrBadQuery is wrapped by RunQuery's errors about the request itself.
var ErrBadQuery = errors.New("bad query")

func badQuery(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadQuery, fmt.Sprintf(format, args...))
}

func floats(vs []float64) []Float {
	out := make([]Float, len(vs))
	for i, v := range vs {
		out[i] = Float(v)
	}
	return out
}

func rowsResponse(rows []query.Row, err error, _ bool) (*QueryResponse, error) {
	if err != nil {
		return nil, err
	}
	out := make([]Row, len(rows))
	for i, r := range rows {
		ls := make(map[string]string, len(r.Labels))
		for _, l := range r.Labels {
			ls[l.Name] = l.Value
		}
		vals := make([][]Float, len(r.Values))
		for j, v := range r.Values {
			vals[j] = floats(v)
		}
		out[i] = Row{Labels: ls, Times: r.Times, Values: vals, RelErr: r.RelErr}
	}
	return &QueryResponse{Rows: out}, nil
}

// queryError turns a query error into an answer: 400 for a bad request
// (ErrBadQuery, or the query layer refusing its arguments), 500 else.
func (s *Server) queryError(w http.ResponseWriter, err error) {
	msg := err.Error()
	if errors.Is(err, ErrBadQuery) || strings.HasPrefix(msg, "query: ") {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	if errors.Is(err, engine.ErrClosed) {
		writeError(w, http.StatusServiceUnavailable, "store is closed: server shutting down")
		return
	}
	s.log.Error("eventmetrics server: query failed", "err", err)
	writeError(w, http.StatusInternalServerError, msg)
}

// maxQueryBody bounds the body of a query request.
const maxQueryBody = 1 << 20

// handleQuery is POST /em/v1/query.
func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	var req QueryRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxQueryBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("query body is larger than %d bytes", maxQueryBody))
			return
		}
		writeError(w, http.StatusBadRequest, "malformed query JSON: "+err.Error())
		return
	}
	select {
	case s.queries <- struct{}{}:
	case <-r.Context().Done():
		writeError(w, http.StatusServiceUnavailable, "request abandoned while waiting for a query slot")
		return
	}
	resp, err := RunQuery(s.db, &req, s.opts.MaxQueryPoints)
	<-s.queries
	if err != nil {
		s.queryError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// matchersFromURL reads repeated match=LABEL<op>VALUE parameters
// ("service=api", "code!=500", "path=~/api/.*").
func matchersFromURL(r *http.Request) ([]query.Matcher, error) {
	var specs []MatcherSpec
	for _, m := range r.URL.Query()["match"] {
		sp, err := parseMatcher(m)
		if err != nil {
			return nil, err
		}
		specs = append(specs, sp)
	}
	return Matchers(specs)
}

func parseMatcher(s string) (MatcherSpec, error) {
	for _, op := range []string{"=~", "!~", "!=", "="} {
		if i := strings.Index(s, op); i > 0 {
			return MatcherSpec{Label: s[:i], Op: op, Value: s[i+len(op):]}, nil
		}
	}
	return MatcherSpec{}, fmt.Errorf("matcher %q is not LABEL=VALUE, LABEL!=VALUE, LABEL=~RE or LABEL!~RE", s)
}

// SeriesResponse answers GET /em/v1/series.
type SeriesResponse struct {
	Series    []map[string]string `json:"series"` // labels, with __name__
	Truncated bool                `json:"truncated,omitempty"`
}

// handleSeries is GET /em/v1/series?name=N&match=L=V&limit=K.
func (s *Server) handleSeries(w http.ResponseWriter, r *http.Request) {
	ms, err := matchersFromURL(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit := 10000
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q is not a positive integer", v))
			return
		}
	}
	name := r.URL.Query().Get("name")
	if name == "" && len(ms) == 0 {
		writeError(w, http.StatusBadRequest, "give a name or at least one match")
		return
	}
	list, err := s.db.ListSeries(name, limit+1, ms...)
	if err != nil {
		s.queryError(w, err)
		return
	}
	resp := SeriesResponse{Series: []map[string]string{}}
	for i, si := range list {
		if i == limit {
			resp.Truncated = true
			break
		}
		m := map[string]string{index.MetricNameLabel: si.Name}
		for _, l := range si.Labels {
			m[l.Name] = l.Value
		}
		resp.Series = append(resp.Series, m)
	}
	writeJSON(w, http.StatusOK, resp)
}

// LabelValuesResponse answers GET /em/v1/names and /em/v1/label_values.
type LabelValuesResponse struct {
	Values []engine.LabelValue `json:"values"`
}

// handleNames is GET /em/v1/names: the metric names with their series
// counts (the system's, starting with "__", hidden).
func (s *Server) handleNames(w http.ResponseWriter, r *http.Request) {
	vals, err := s.db.MetricNames()
	if err != nil {
		s.queryError(w, err)
		return
	}
	out := vals[:0]
	for _, v := range vals {
		if !strings.HasPrefix(v.Value, "__") {
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, LabelValuesResponse{Values: out})
}

// handleLabels is GET /em/v1/labels?name=N&match=...: label names.
func (s *Server) handleLabels(w http.ResponseWriter, r *http.Request) {
	ms, err := matchersFromURL(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	names, err := s.db.LabelNames(r.URL.Query().Get("name"), ms...)
	if err != nil {
		s.queryError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]string{"labels": names})
}

// handleLabelValues is GET /em/v1/label_values?label=L&name=N&match=...
func (s *Server) handleLabelValues(w http.ResponseWriter, r *http.Request) {
	label := r.URL.Query().Get("label")
	if label == "" {
		writeError(w, http.StatusBadRequest, "label_values needs label=NAME")
		return
	}
	ms, err := matchersFromURL(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	vals, err := s.db.LabelValues(label, r.URL.Query().Get("name"), ms...)
	if err != nil {
		s.queryError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, LabelValuesResponse{Values: vals})
}

// handleStats is GET /em/v1/stats: the server's counters and the store's
// series count.
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Server Stats  `json:"server"`
		Series uint64 `json:"series"`
	}{s.Stats(), s.db.SeriesCount()})
}

// routes registers the server's own endpoints.
func (s *Server) routes() {
	s.mux.HandleFunc("POST /em/v1/ingest", s.handleIngest)
	s.mux.HandleFunc("POST /em/v1/import", s.handleImport)
	s.mux.HandleFunc("POST /api/v1/write", s.handleRemoteWrite)
	s.mux.HandleFunc("POST /api/v1/import/prometheus", s.handleImport)
	s.mux.HandleFunc("POST /em/v1/query", s.handleQuery)
	s.mux.HandleFunc("GET /em/v1/series", s.handleSeries)
	s.mux.HandleFunc("GET /em/v1/names", s.handleNames)
	s.mux.HandleFunc("GET /em/v1/labels", s.handleLabels)
	s.mux.HandleFunc("GET /em/v1/label_values", s.handleLabelValues)
	s.mux.HandleFunc("GET /em/v1/stats", s.handleStats)
	s.mux.HandleFunc("GET /em/v1/health", func(w http.ResponseWriter, r *http.Request) {
		if s.err != nil {
			writeError(w, http.StatusServiceUnavailable, s.err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}
