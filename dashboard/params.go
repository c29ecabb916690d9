package dashboard

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/query"
)

// maxNameBytes bounds a metric or label name given in a request.
const maxNameBytes = 1024

// params reads and validates the query string of one request. Every getter
// returns an *apiError (400) naming the parameter on bad input.
type params struct{ v url.Values }

func newParams(r *http.Request) (params, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return params{}, badRequest("bad query string: %v", err)
	}
	return params{v}, nil
}

// one returns the single value of parameter name ("" when absent); a
// parameter given twice is an error.
func (p params) one(name string) (string, error) {
	vs := p.v[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", badRequest("parameter %q is given %d times; give it once", name, len(vs))
}

// name validates a metric or label name.
func checkName(what, s string) error {
	switch {
	case len(s) > maxNameBytes:
		return badRequest("%s is %d bytes long, over the limit of %d", what, len(s), maxNameBytes)
	case !utf8.ValidString(s):
		return badRequest("%s is not valid UTF-8", what)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return badRequest("%s %q holds a control character", what, s)
	}
	return nil
}

// metric returns the "metric" parameter; required says whether it may be
// empty.
func (p params) metric(required bool) (string, error) {
	m, err := p.one("metric")
	if err != nil {
		return "", err
	}
	if m == "" {
		if required {
			return "", badRequest("parameter \"metric\" is required")
		}
		return "", nil
	}
	return m, checkName("metric", m)
}

// matchers parses the repeated "match" parameter: name=value, name!=value,
// name=~regexp or name!~regexp (Prometheus semantics, anchored RE2).
func (p params) matchers() ([]query.Matcher, error) {
	raw := p.v["match"]
	if len(raw) > MaxMatchers {
		return nil, badRequest("%d matchers given, over the limit of %d", len(raw), MaxMatchers)
	}
	ms := make([]query.Matcher, 0, len(raw))
	for _, s := range raw {
		m, err := parseMatcher(s)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func parseMatcher(s string) (query.Matcher, error) {
	i := strings.IndexAny(s, "=!")
	if i <= 0 {
		return query.Matcher{}, badRequest("matcher %q: want name=value, name!=value, name=~regexp or name!~regexp", s)
	}
	name, rest := s[:i], s[i:]
	var t index.MatchType
	switch {
	case strings.HasPrefix(rest, "=~"):
		t, rest = index.MatchRegexp, rest[2:]
	case strings.HasPrefix(rest, "!~"):
		t, rest = index.MatchNotRegexp, rest[2:]
	case strings.HasPrefix(rest, "!="):
		t, rest = index.MatchNotEqual, rest[2:]
	case strings.HasPrefix(rest, "="):
		t, rest = index.MatchEqual, rest[1:]
	default:
		return query.Matcher{}, badRequest("matcher %q: want name=value, name!=value, name=~regexp or name!~regexp", s)
	}
	if err := checkName("matcher label name", name); err != nil {
		return query.Matcher{}, err
	}
	if !utf8.ValidString(rest) {
		return query.Matcher{}, badRequest("matcher %q: value is not valid UTF-8", s)
	}
	m, err := index.NewMatcher(t, name, rest)
	if err != nil {
		return query.Matcher{}, badRequest("matcher %q: %v", s, err)
	}
	return m, nil
}

// timeRange is a selected range [From, To) in Unix ns.
type timeRange struct{ From, To int64 }

func (tr timeRange) len() int64 { return tr.To - tr.From }

// rangeParams resolves "last" (a duration before now) or "from" and "to"
// (Unix milliseconds or RFC 3339; "to" defaults to now). Neither means the
// last hour.
func (p params) timeRange(now int64) (timeRange, error) {
	last, err := p.one("last")
	if err != nil {
		return timeRange{}, err
	}
	from, err := p.one("from")
	if err != nil {
		return timeRange{}, err
	}
	to, err := p.one("to")
	if err != nil {
		return timeRange{}, err
	}
	if last != "" && (from != "" || to != "") {
		return timeRange{}, badRequest("give either \"last\" or \"from\" and \"to\", not both")
	}
	if from == "" && to != "" {
		return timeRange{}, badRequest("\"to\" needs \"from\"")
	}
	if from == "" {
		if last == "" {
			last = "1h"
		}
		d, err := parseDuration("last", last)
		if err != nil {
			return timeRange{}, err
		}
		if d > maxAbsNanos {
			return timeRange{}, badRequest("last=%s reaches too far back", last)
		}
		// The upper bound is exclusive: +1 keeps a point stamped now.
		return timeRange{From: now - d, To: now + 1}, nil
	}
	f, err := parseTime("from", from)
	if err != nil {
		return timeRange{}, err
	}
	t := now + 1
	if to != "" {
		if t, err = parseTime("to", to); err != nil {
			return timeRange{}, err
		}
	}
	if t <= f {
		return timeRange{}, badRequest("empty range: \"to\" (%s) is not after \"from\" (%s)", to, from)
	}
	return timeRange{From: f, To: t}, nil
}

// maxAbsNanos bounds the times a request may name, ±4e18 ns around 1970
// (the years 1843 to 2096), so that no range length or window arithmetic
// overflows int64.
const maxAbsNanos = 4e18

// parseTime reads Unix milliseconds (an integer, or a decimal with
// fractions of a millisecond) or an RFC 3339 time, into Unix ns.
func parseTime(name, s string) (int64, error) {
	var ns float64
	if ms, err := strconv.ParseFloat(s, 64); err == nil {
		ns = ms * 1e6
	} else {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, badRequest("%s=%q: want Unix milliseconds or an RFC 3339 time", name, s)
		}
		if t.Year() < 1843 || t.Year() > 2096 || t.UnixNano() < -maxAbsNanos || t.UnixNano() > maxAbsNanos {
			return 0, badRequest("%s=%s is outside the years 1843..2096", name, s)
		}
		return t.UnixNano(), nil
	}
	if !(ns >= -maxAbsNanos && ns <= maxAbsNanos) {
		return 0, badRequest("%s=%s is outside the years 1843..2096", name, s)
	}
	return int64(math.Round(ns)), nil
}

// parseDuration reads a positive Go duration, also with the units d (24h)
// and w (7d): "15m", "6h", "7d", "2w".
func parseDuration(name, s string) (int64, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err = scaled(n, 24*time.Hour)
	} else if n, ok := strings.CutSuffix(s, "w"); ok {
		d, err = scaled(n, 7*24*time.Hour)
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, badRequest("%s=%q: want a positive duration such as 15m, 6h, 7d", name, s)
	}
	return int64(d), nil
}

func scaled(n string, unit time.Duration) (time.Duration, error) {
	v, err := strconv.ParseFloat(n, 64)
	if err != nil || !(v > 0) || v > float64(math.MaxInt64)/float64(unit) {
		return 0, strconv.ErrRange
	}
	return time.Duration(v * float64(unit)), nil
}

// intParam reads an integer parameter in [lo, hi], def when absent.
func (p params) intParam(name string, def, lo, hi int) (int, error) {
	s, err := p.one(name)
	if err != nil || s == "" {
		return def, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s=%q: want an integer in [%d, %d]", name, s, lo, hi)
	}
	return n, nil
}

// niceSteps are the automatic window lengths: each divides the next
// coarser ones that matter, and rollup tiers of whole minutes and hours
// nest in them.
var niceSteps = []time.Duration{
	time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour,
}

// windowing is the resolved window layout of a windowed request.
type windowing struct {
	rng     timeRange // From aligned down to a multiple of Step
	step    int64
	rollups bool
}

// windows resolves "step" (auto or a duration), "windows" (the target for
// auto) and "rollups" (auto, on, off) for range tr. The range's start is
// aligned down to a multiple of the step since the epoch, so windows are
// the same from one request to the next and rollup tiers nest in them.
func (p params) windows(tr timeRange) (windowing, error) {
	target, err := p.intParam("windows", DefaultWindows, 1, MaxWindows)
	if err != nil {
		return windowing{}, err
	}
	s, err := p.one("step")
	if err != nil {
		return windowing{}, err
	}
	var step int64
	if s == "" || s == "auto" {
		// A "last" range is d+1 ns long (its end is inclusive of now):
		// the -1 keeps "1h over 120 windows" at 30s.
		want := ceilDiv(tr.len()-1, int64(target))
		step = int64(niceSteps[len(niceSteps)-1])
		for _, d := range niceSteps {
			if int64(d) >= want {
				step = int64(d)
				break
			}
		}
	} else if step, err = parseDuration("step", s); err != nil {
		return windowing{}, err
	}
	from := floorDiv(tr.From, step) * step
	if n := ceilDiv(tr.To-from, step); n > MaxWindows {
		return windowing{}, badRequest("step=%s makes %d windows over the range, over the limit of %d: choose a longer step", time.Duration(step), n, MaxWindows)
	}
	ru, err := p.one("rollups")
	if err != nil {
		return windowing{}, err
	}
	w := windowing{rng: timeRange{From: from, To: tr.To}, step: step}
	switch ru {
	case "", "auto":
		w.rollups = tr.len() >= int64(RollupRange)
	case "on":
		w.rollups = true
	case "off":
	default:
		return windowing{}, badRequest("rollups=%q: want auto, on or off", ru)
	}
	return w, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a-1)/b + 1
}

// bounds parses a comma-separated list of finite, strictly ascending
// bucket bounds.
func parseBounds(s string) ([]float64, error) {
	parts := strings.Split(s, ",")
	if len(parts) > MaxBounds {
		return nil, badRequest("%d bucket bounds given, over the limit of %d", len(parts), MaxBounds)
	}
	out := make([]float64, 0, len(parts))
	for i, f := range parts {
		f = strings.TrimSpace(f)
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, badRequest("bucket bound %d (%q) is not a finite number", i+1, f)
		}
		if i > 0 && !(out[i-1] < v) {
			return nil, badRequest("bucket bounds must be strictly ascending: %g after %g", v, out[i-1])
		}
		out = append(out, v)
	}
	return out, nil
}
