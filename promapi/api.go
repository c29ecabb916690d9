package promapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/engine"
)

// Defaults of Options, those of Prometheus' own flags.
const (
	DefaultTimeout              = 2 * time.Minute // --query.timeout
	DefaultMaxSamples           = 50_000_000      // --query.max-samples
	DefaultLookbackDelta        = 5 * time.Minute // --query.lookback-delta
	DefaultMaxConcurrentQueries = 20              // --query.max-concurrency
	// MaxPointsPerSeries is the most steps a range query may have, as in
	// Prometheus.
	MaxPointsPerSeries = 11_000
	// maxFormBytes bounds a POST body.
	maxFormBytes = 8 << 20
)

// Options configure the HTTP API. The zero value of every field means its
// default.
type Options struct {
	// Timeout bounds the evaluation of one query (a request's "timeout"
	// parameter may shorten it). Default DefaultTimeout.
	Timeout time.Duration
	// MaxSamples bounds the samples the PromQL engine holds in memory for
	// one query. Default DefaultMaxSamples.
	MaxSamples int
	// LookbackDelta is how far back an instant selector looks for a sample
	// (a request's "lookback_delta" parameter overrides it). Default
	// DefaultLookbackDelta.
	LookbackDelta time.Duration
	// MaxConcurrentQueries bounds the queries evaluated at once; more wait
	// (until their timeout). Default DefaultMaxConcurrentQueries.
	MaxConcurrentQueries int
	// MaxSelectPoints bounds the points one selector reads into memory
	// (see QueryableOptions). Default DefaultMaxSelectPoints.
	MaxSelectPoints int
	// Now is the clock for queries without a time. Default time.Now.
	Now func() time.Time
	// Logger receives errors writing responses. Default: discard.
	Logger *slog.Logger
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Timeout < 0:
		return fmt.Errorf("promapi: Timeout is %s; it must be >= 0 (0 = default)", o.Timeout)
	case o.MaxSamples < 0:
		return fmt.Errorf("promapi: MaxSamples is %d; it must be >= 0 (0 = default)", o.MaxSamples)
	case o.LookbackDelta < 0:
		return fmt.Errorf("promapi: LookbackDelta is %s; it must be >= 0 (0 = default)", o.LookbackDelta)
	case o.MaxConcurrentQueries < 0:
		return fmt.Errorf("promapi: MaxConcurrentQueries is %d; it must be >= 0 (0 = default)", o.MaxConcurrentQueries)
	}
	return QueryableOptions{MaxSelectPoints: o.MaxSelectPoints}.Validate()
}

func (o Options) withDefaults() Options {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxSamples == 0 {
		o.MaxSamples = DefaultMaxSamples
	}
	if o.LookbackDelta == 0 {
		o.LookbackDelta = DefaultLookbackDelta
	}
	if o.MaxConcurrentQueries == 0 {
		o.MaxConcurrentQueries = DefaultMaxConcurrentQueries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// API serves the Prometheus HTTP API over an engine DB.
type API struct {
	mux       *http.ServeMux
	engine    *promql.Engine
	queryable *Queryable
	parser    parser.Parser
	opts      Options
	sem       chan struct{} // one token per running query
	buildInfo buildInfo
}

// New returns the Prometheus HTTP API over db (see the package doc for the
// endpoints). Options that fail Validate, or a nil db, give a handler that
// answers every request with an internal error naming the problem; call
// NewAPI to get that error instead.
func New(db *engine.DB, opts Options) http.Handler {
	api, err := NewAPI(db, opts)
	if err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, slog.New(slog.DiscardHandler), &apiError{errorInternal, err}, nil)
		})
	}
	return api
}

// NewAPI is New, returning an error for bad options.
func NewAPI(db *engine.DB, opts Options) (*API, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	q, err := NewQueryable(db, QueryableOptions{MaxSelectPoints: opts.MaxSelectPoints})
	if err != nil {
		return nil, err
	}
	p := parser.NewParser(parser.Options{})
	a := &API{
		mux:       http.NewServeMux(),
		queryable: q,
		parser:    p,
		opts:      opts,
		sem:       make(chan struct{}, opts.MaxConcurrentQueries),
		buildInfo: readBuildInfo(),
		engine: promql.NewEngine(promql.EngineOpts{
			Logger:               opts.Logger,
			MaxSamples:           opts.MaxSamples,
			Timeout:              opts.Timeout,
			LookbackDelta:        opts.LookbackDelta,
			EnableAtModifier:     true,
			EnableNegativeOffset: true,
			Parser:               p,
			// An instant query's subquery without a step uses 1m, as
			// Prometheus with its default evaluation interval.
			NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		}),
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		a.mux.HandleFunc(m+" /api/v1/query", a.wrap(a.query))
		a.mux.HandleFunc(m+" /api/v1/query_range", a.wrap(a.queryRange))
		a.mux.HandleFunc(m+" /api/v1/series", a.wrap(a.series))
		a.mux.HandleFunc(m+" /api/v1/labels", a.wrap(a.labelNames))
	}
	a.mux.HandleFunc("GET /api/v1/label/{name}/values", a.wrap(a.labelValues))
	a.mux.HandleFunc("GET /api/v1/status/buildinfo", a.wrap(a.serveBuildInfo))
	a.mux.HandleFunc("POST /api/v1/read", a.remoteRead)
	return a, nil
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// errorType is the "errorType" of an error response.
type errorType string

const (
	errorTimeout     errorType = "timeout"
	errorCanceled    errorType = "canceled"
	errorExec        errorType = "execution"
	errorBadData     errorType = "bad_data"
	errorInternal    errorType = "internal"
	errorUnavailable errorType = "unavailable"
)

// statusClientClosedConnection is the status Prometheus answers a canceled
// query with (nginx's 499).
const statusClientClosedConnection = 499

func (t errorType) status() int {
	switch t {
	case errorBadData:
		return http.StatusBadRequest
	case errorExec:
		return http.StatusUnprocessableEntity
	case errorCanceled:
		return statusClientClosedConnection
	case errorTimeout, errorUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

type apiError struct {
	typ errorType
	err error
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %v", e.typ, e.err) }

func badData(param string, err error) *apiError {
	return &apiError{errorBadData, fmt.Errorf("invalid parameter %q: %w", param, err)}
}

// result is what an endpoint answers.
type result struct {
	data     any // marshaled by encoding/json, or a promql value
	warnings annotations.Annotations
	query    string // for the annotations' positions
	err      *apiError
}

// wrap parses the form of a request, runs fn, and writes its answer.
func (a *API) wrap(fn func(r *http.Request) result) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		}
		if err := r.ParseForm(); err != nil {
			writeError(w, a.opts.Logger, &apiError{errorBadData, fmt.Errorf("error parsing form values: %w", err)}, nil)
			return
		}
		res := fn(r)
		warnings, infos := res.warnings.AsStrings(res.query, 10, 10)
		if res.err != nil {
			writeError(w, a.opts.Logger, res.err, warnings)
			return
		}
		b, err := appendSuccess(nil, res.data, warnings, infos)
		if err != nil {
			writeError(w, a.opts.Logger, &apiError{errorInternal, fmt.Errorf("encoding the response: %w", err)}, nil)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(b); err != nil {
			a.opts.Logger.Debug("promapi: writing a response", "err", err)
		}
	}
}

// toAPIError classifies an error of the engine or of the storage.
func toAPIError(err error) *apiError {
	var (
		eqc promql.ErrQueryCanceled
		eqt promql.ErrQueryTimeout
		es  promql.ErrStorage
	)
	switch {
	case errors.As(err, &eqc), errors.Is(err, context.Canceled):
		return &apiError{errorCanceled, err}
	case errors.As(err, &eqt), errors.Is(err, context.DeadlineExceeded):
		return &apiError{errorTimeout, err}
	case errors.Is(err, engine.ErrClosed):
		return &apiError{errorUnavailable, err}
	case errors.As(err, &es), errors.Is(err, encode.ErrCorrupt):
		return &apiError{errorInternal, err}
	}
	return &apiError{errorExec, err}
}

// acquire takes a query slot, waiting at most until ctx is done.
func (a *API) acquire(ctx context.Context) (release func(), err *apiError) {
	select {
	case a.sem <- struct{}{}:
		return func() { <-a.sem }, nil
	case <-ctx.Done():
		return nil, toAPIError(fmt.Errorf("waiting for a query slot: %w", ctx.Err()))
	}
}

// queryContext applies the request's "timeout" parameter.
func (a *API) queryContext(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	ctx := r.Context()
	v := r.Form.Get("timeout")
	if v == "" {
		ctx, cancel := context.WithTimeout(ctx, a.opts.Timeout)
		return ctx, cancel, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return nil, nil, badData("timeout", err)
	}
	if d <= 0 {
		return nil, nil, badData("timeout", fmt.Errorf("timeout must be positive, got %s", d))
	}
	ctx, cancel := context.WithTimeout(ctx, min(d, a.opts.Timeout))
	return ctx, cancel, nil
}

// queryOpts reads "lookback_delta".
func queryOpts(r *http.Request) (promql.QueryOpts, *apiError) {
	var d time.Duration
	if v := r.Form.Get("lookback_delta"); v != "" {
		var err error
		if d, err = parseDuration(v); err != nil {
			return nil, badData("lookback_delta", err)
		}
		if d < 0 {
			return nil, badData("lookback_delta", fmt.Errorf("lookback delta must not be negative, got %s", d))
		}
	}
	return promql.NewPrometheusQueryOpts(false, d, nil), nil
}

func (a *API) query(r *http.Request) result {
	limit, err := parseLimit(r.Form.Get("limit"))
	if err != nil {
		return result{err: badData("limit", err)}
	}
	ts, err := parseTimeParam(r, "time", a.opts.Now())
	if err != nil {
		return result{err: badData("time", err)}
	}
	opts, aerr := queryOpts(r)
	if aerr != nil {
		return result{err: aerr}
	}
	ctx, cancel, aerr := a.queryContext(r)
	if aerr != nil {
		return result{err: aerr}
	}
	defer cancel()
	qs := r.Form.Get("query")
	qry, err := a.engine.NewInstantQuery(ctx, a.queryable, opts, qs, ts)
	if err != nil {
		return result{err: constructionError(err)}
	}
	return a.exec(ctx, qry, qs, limit)
}

func (a *API) queryRange(r *http.Request) result {
	limit, err := parseLimit(r.Form.Get("limit"))
	if err != nil {
		return result{err: badData("limit", err)}
	}
	start, err := parseTime(r.Form.Get("start"))
	if err != nil {
		return result{err: badData("start", err)}
	}
	end, err := parseTime(r.Form.Get("end"))
	if err != nil {
		return result{err: badData("end", err)}
	}
	if end.Before(start) {
		return result{err: badData("end", errors.New("end timestamp must not be before start time"))}
	}
	step, err := parseDuration(r.Form.Get("step"))
	if err != nil {
		return result{err: badData("step", err)}
	}
	if step <= 0 {
		return result{err: badData("step", errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"))}
	}
	if end.Sub(start)/step > MaxPointsPerSeries {
		return result{err: &apiError{errorBadData, errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")}}
	}
	opts, aerr := queryOpts(r)
	if aerr != nil {
		return result{err: aerr}
	}
	ctx, cancel, aerr := a.queryContext(r)
	if aerr != nil {
		return result{err: aerr}
	}
	defer cancel()
	qs := r.Form.Get("query")
	qry, err := a.engine.NewRangeQuery(ctx, a.queryable, opts, qs, start, end, step)
	if err != nil {
		return result{err: constructionError(err)}
	}
	return a.exec(ctx, qry, qs, limit)
}

// constructionError classifies an error of building a query: a bad query,
// unless the context ended.
func constructionError(err error) *apiError {
	var (
		eqc promql.ErrQueryCanceled
		eqt promql.ErrQueryTimeout
	)
	if errors.As(err, &eqc) || errors.As(err, &eqt) {
		return toAPIError(err)
	}
	return badData("query", err)
}

// exec runs a query in a query slot.
func (a *API) exec(ctx context.Context, qry promql.Query, qs string, limit int) result {
	defer qry.Close()
	release, aerr := a.acquire(ctx)
	if aerr != nil {
		return result{err: aerr}
	}
	defer release()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return result{err: toAPIError(res.Err), warnings: res.Warnings, query: qs}
	}
	warnings := res.Warnings
	val := res.Value
	if limit > 0 {
		truncated := false
		switch v := val.(type) {
		case promql.Matrix:
			if len(v) > limit {
				val, truncated = v[:limit], true
			}
		case promql.Vector:
			if len(v) > limit {
				val, truncated = v[:limit], true
			}
		}
		if truncated {
			warnings = warnings.Add(errors.New("results truncated due to limit"))
		}
	}
	// The value is encoded before qry.Close, which recycles its memory.
	b, err := appendQueryData(nil, val)
	if err != nil {
		return result{err: &apiError{errorInternal, err}}
	}
	return result{data: rawJSON(b), warnings: warnings, query: qs}
}

// matcherSets parses match[]: each a selector with a matcher that does not
// match the empty string (as Prometheus requires).
func (a *API) matcherSets(r *http.Request) ([][]*labels.Matcher, *apiError) {
	sets, err := a.parser.ParseMetricSelectors(r.Form["match[]"])
	if err != nil {
		return nil, badData("match[]", err)
	}
outer:
	for _, ms := range sets {
		for _, m := range ms {
			if m != nil && !m.Matches("") {
				continue outer
			}
		}
		return nil, badData("match[]", errors.New("match[] must contain at least one non-empty matcher"))
	}
	return sets, nil
}

// timeRange reads the optional "start" and "end" of the metadata endpoints,
// in ms.
func timeRange(r *http.Request) (mint, maxt int64, aerr *apiError) {
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		return 0, 0, badData("start", err)
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		return 0, 0, badData("end", err)
	}
	return start.UnixMilli(), end.UnixMilli(), nil
}

func (a *API) series(r *http.Request) result {
	if len(r.Form["match[]"]) == 0 {
		return result{err: &apiError{errorBadData, errors.New("no match[] parameter provided")}}
	}
	limit, err := parseLimit(r.Form.Get("limit"))
	if err != nil {
		return result{err: badData("limit", err)}
	}
	mint, maxt, aerr := timeRange(r)
	if aerr != nil {
		return result{err: aerr}
	}
	sets, aerr := a.matcherSets(r)
	if aerr != nil {
		return result{err: aerr}
	}
	q, err := a.queryable.Querier(mint, maxt)
	if err != nil {
		return result{err: toAPIError(err)}
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: mint, End: maxt, Func: "series"}
	var out []labels.Labels
	for _, ms := range sets {
		ss := q.Select(r.Context(), true, hints, ms...)
		for ss.Next() {
			out = append(out, ss.At().Labels())
		}
		if err := ss.Err(); err != nil {
			return result{err: toAPIError(err)}
		}
	}
	// Several match[] may select one series more than once.
	slices.SortFunc(out, labels.Compare)
	out = slices.CompactFunc(out, labels.Equal)
	var warnings annotations.Annotations
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		warnings = warnings.Add(errors.New("results truncated due to limit"))
	}
	if out == nil {
		out = []labels.Labels{}
	}
	return result{data: out, warnings: warnings}
}

// labelHints is the LabelHints of a limit: one more, to tell truncation.
func labelHints(limit int) *storage.LabelHints {
	if limit > 0 && limit < math.MaxInt {
		return &storage.LabelHints{Limit: limit + 1}
	}
	return &storage.LabelHints{}
}

// mergeLabels runs fn once per matcher set (once with none when there is
// none) and returns the sorted union, truncated to limit.
func mergeLabels(sets [][]*labels.Matcher, limit int, fn func(ms []*labels.Matcher) ([]string, error)) result {
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	var all []string
	for _, ms := range sets {
		vals, err := fn(ms)
		if err != nil {
			return result{err: toAPIError(err)}
		}
		all = append(all, vals...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	var warnings annotations.Annotations
	if limit > 0 && len(all) > limit {
		all = all[:limit]
		warnings = warnings.Add(errors.New("results truncated due to limit"))
	}
	if all == nil {
		all = []string{}
	}
	return result{data: all, warnings: warnings}
}

func (a *API) labelNames(r *http.Request) result {
	return a.labelList(r, func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, error) {
		names, _, err := q.LabelNames(r.Context(), hints, ms...)
		return names, err
	})
}

func (a *API) labelValues(r *http.Request) result {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return result{err: &apiError{errorBadData, fmt.Errorf("invalid label name: %q", name)}}
	}
	return a.labelList(r, func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, error) {
		vals, _, err := q.LabelValues(r.Context(), name, hints, ms...)
		return vals, err
	})
}

// labelList answers a label listing: the request's limit, time range and
// match[] sets, list called once per set, the results merged.
func (a *API) labelList(r *http.Request, list func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, error)) result {
	limit, err := parseLimit(r.Form.Get("limit"))
	if err != nil {
		return result{err: badData("limit", err)}
	}
	mint, maxt, aerr := timeRange(r)
	if aerr != nil {
		return result{err: aerr}
	}
	sets, aerr := a.matcherSets(r)
	if aerr != nil {
		return result{err: aerr}
	}
	q, err := a.queryable.Querier(mint, maxt)
	if err != nil {
		return result{err: toAPIError(err)}
	}
	defer q.Close()
	hints := labelHints(limit)
	return mergeLabels(sets, limit, func(ms []*labels.Matcher) ([]string, error) { return list(q, hints, ms) })
}

// buildInfo is the answer of /api/v1/status/buildinfo. Version is the
// Prometheus version whose PromQL engine evaluates queries (clients such
// as Grafana pick features by it).
type buildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

func (a *API) serveBuildInfo(*http.Request) result { return result{data: a.buildInfo} }

// promModule is the module of the PromQL engine.
const promModule = "github.com/prometheus/prometheus"

// PrometheusVersion is the Prometheus release whose PromQL engine go.mod
// requires, reported by /api/v1/status/buildinfo when the binary carries no
// module information (test binaries); TestPrometheusVersionMatchesGoMod
// keeps it true.
const PrometheusVersion = "3.16.0"

func readBuildInfo() buildInfo {
	bi := buildInfo{Version: PrometheusVersion, GoVersion: runtime.Version(), Branch: "unknown", BuildUser: "unknown", BuildDate: "unknown", Revision: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	for _, d := range info.Deps {
		if d.Path == promModule {
			bi.Version = ReleaseOf(d.Version)
		}
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			bi.Revision = s.Value
		case "vcs.time":
			bi.BuildDate = s.Value
		}
	}
	return bi
}

// ReleaseOf maps the Go module version of Prometheus (v0.316.0) to
// the release it is (3.16.0); other forms are returned as they are.
func ReleaseOf(mod string) string {
	v, ok := strings.CutPrefix(mod, "v0.")
	if !ok {
		return mod
	}
	minor, patch, ok := strings.Cut(v, ".")
	n, err := strconv.Atoi(minor)
	if !ok || err != nil || n < 100 {
		return mod
	}
	return fmt.Sprintf("%d.%d.%s", n/100, n%100, patch)
}

// minTime and maxTime are the default bounds of the metadata endpoints,
// Prometheus' MinTime and MaxTime.
var (
	minTime   = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime   = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()
	minTimeMs = minTime.UnixMilli()
	maxTimeMs = maxTime.UnixMilli()

	minTimeFormatted = minTime.Format(time.RFC3339Nano)
	maxTimeFormatted = maxTime.Format(time.RFC3339Nano)
)

func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.Form.Get(name)
	if v == "" {
		return def, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time value for '%s': %w", name, err)
	}
	return t, nil
}

// parseTime reads a Unix time in seconds (with a fraction) or RFC 3339.
func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < float64(minTime.Unix()) || f > float64(maxTime.Unix()) {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp: out of range", s)
		}
		sec, frac := math.Modf(f)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	switch s {
	case minTimeFormatted:
		return minTime, nil
	case maxTimeFormatted:
		return maxTime, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration reads seconds (with a fraction) or a Prometheus duration
// (5m, 1h30m).
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		if math.IsNaN(ns) || ns >= float64(math.MaxInt64) || ns < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ns), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

// parseLimit reads a "limit": 0 (or absent) means none.
func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errors.New("limit must be non-negative")
	}
	return n, nil
}
