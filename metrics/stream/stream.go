package stream

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventmetrics/eventmetrics/query"
)

// Errors, for errors.Is.
var (
	// ErrInvalid: bad options or input.
	ErrInvalid = errors.New("stream: invalid input")
	// ErrLate: an observation for a time window already emitted.
	ErrLate = errors.New("stream: observation after its window closed")
)

// Agg is a named aggregation of a group's values (NaN values are removed
// before; the slice may be empty and is sorted ascending when Sorted).
type Agg struct {
	Name string
	Fn   func(vals []float64) float64
	// Sorted asks for the values in ascending order.
	Sorted bool

	err error // a bad argument of the constructor (P), reported by Validate
}

// The standard aggregations, each as the query layer computes it.
var (
	Sum   = Agg{Name: "sum", Fn: sum}
	Count = Agg{Name: "count", Fn: func(v []float64) float64 { return float64(len(v)) }}
	Mean  = Agg{Name: "mean", Fn: func(v []float64) float64 {
		if len(v) == 0 {
			return math.NaN()
		}
		return sum(v) / float64(len(v))
	}}
	Min = Agg{Name: "min", Fn: func(v []float64) float64 {
		if len(v) == 0 {
			return math.NaN()
		}
		return slices.Min(v)
	}}
	Max = Agg{Name: "max", Fn: func(v []float64) float64 {
		if len(v) == 0 {
			return math.NaN()
		}
		return slices.Max(v)
	}}
)

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// P returns the exact percentile p (in [0, 100]) with linear
// interpolation, named "p" and p ("p99", "p99.9").
func P(p float64) Agg {
	if !(p >= 0 && p <= 100) {
		return Agg{Name: fmt.Sprintf("p%v", p), err: fmt.Errorf("%w: percentile %v is outside [0, 100]", ErrInvalid, p)}
	}
	return Agg{
		Name:   "p" + strconv.FormatFloat(p, 'f', -1, 64),
		Sorted: true,
		Fn:     func(v []float64) float64 { return query.PercentileSorted(v, p) },
	}
}

// Element is one emitted aggregate: Name is the stream's name and the
// aggregation's ("latency.p99"), Time the window's start (time windows)
// or the first observation's time (count windows), in Unix ns.
type Element struct {
	Name  string
	Time  int64
	Value float64
	Tags  map[string]string
}

// Options configure a Stream. Exactly one of Window and Batch is set.
type Options struct {
	// Name prefixes the emitted element names.
	Name string
	// Aggs are the aggregations; their names must be distinct.
	Aggs []Agg
	// DefaultTags apply to every observation; tags given with an
	// observation add to them and override them.
	DefaultTags map[string]string
	// Window groups observations into tumbling windows of event time.
	Window time.Duration
	// Batch groups every Batch successive observations (in arrival order).
	Batch int
	// Lateness keeps a time window open until an observation this far
	// past its end arrives (default 0).
	Lateness time.Duration
	// Sinks receive the aggregates (more can be connected later).
	Sinks []Sink
	// Now is the clock of Send (default time.Now).
	Now func() time.Time
}

// Stream is a windowed aggregation of one metric's observations.
type Stream struct {
	name     string
	aggs     []Agg
	defaults map[string]string
	window   int64
	batch    int
	lateness int64
	now      func() time.Time
	late     atomic.Uint64

	// mu guards everything below, and serializes the sinks' calls.
	mu        sync.Mutex
	sinks     []Sink
	open      map[int64]*win // time windows by start
	cur       *win           // the count window
	watermark int64          // greatest event time seen
	closedEnd int64          // time windows ending at or before this are emitted
	out       []Element
}

type win struct {
	start  int64
	n      int
	groups map[string]*group
}

type group struct {
	tags map[string]string
	vals []float64
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	if o.Name == "" {
		return fmt.Errorf("%w: empty stream name", ErrInvalid)
	}
	if (o.Window > 0) == (o.Batch > 0) {
		return fmt.Errorf("%w: stream %q: set either Window or Batch, not neither, not both", ErrInvalid, o.Name)
	}
	if o.Window < 0 || o.Batch < 0 || o.Lateness < 0 {
		return fmt.Errorf("%w: stream %q: Window, Batch and Lateness must not be negative", ErrInvalid, o.Name)
	}
	if len(o.Aggs) == 0 {
		return fmt.Errorf("%w: stream %q: no aggregation", ErrInvalid, o.Name)
	}
	seen := map[string]bool{}
	for _, a := range o.Aggs {
		if a.err != nil {
			return fmt.Errorf("stream %q: %w", o.Name, a.err)
		}
		if a.Name == "" || a.Fn == nil {
			return fmt.Errorf("%w: stream %q: an aggregation needs a name and a function", ErrInvalid, o.Name)
		}
		if seen[a.Name] {
			return fmt.Errorf("%w: stream %q: aggregation %q given twice", ErrInvalid, o.Name, a.Name)
		}
		seen[a.Name] = true
	}
	for _, s := range o.Sinks {
		if s == nil {
			return fmt.Errorf("%w: stream %q: nil sink", ErrInvalid, o.Name)
		}
	}
	return nil
}

// New returns a stream.
func New(o Options) (*Stream, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &Stream{
		name:      o.Name,
		aggs:      slices.Clone(o.Aggs),
		defaults:  maps.Clone(o.DefaultTags),
		window:    int64(o.Window),
		batch:     o.Batch,
		lateness:  int64(o.Lateness),
		now:       o.Now,
		sinks:     slices.Clone(o.Sinks),
		open:      map[int64]*win{},
		watermark: math.MinInt64,
		closedEnd: math.MinInt64,
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.name }

// Connect adds sinks.
func (s *Stream) Connect(sinks ...Sink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range sinks {
		if k != nil {
			s.sinks = append(s.sinks, k)
		}
	}
}

// Late returns how many observations were refused because their window
// had closed.
func (s *Stream) Late() uint64 { return s.late.Load() }

// Send adds the observation v, stamped now, with tags (added to and
// overriding the default tags). Emitting closed windows may return a
// sink's error.
func (s *Stream) Send(v float64, tags map[string]string) error {
	return s.SendAt(s.now(), v, tags)
}

// SendAt adds the observation v at event time t.
func (s *Stream) SendAt(t time.Time, v float64, tags map[string]string) error {
	ts := t.UnixNano()
	key, merged := s.tagKey(tags)
	s.mu.Lock()
	defer s.mu.Unlock()
	var w *win
	if s.window > 0 {
		start := windowOf(ts, s.window)
		if satAdd(start, s.window) <= s.closedEnd {
			s.late.Add(1)
			return fmt.Errorf("%w: stream %q: observation at %v belongs to the window at %v, emitted already", ErrLate, s.name, time.Unix(0, ts).UTC(), time.Unix(0, start).UTC())
		}
		w = s.open[start]
		if w == nil {
			w = &win{start: start, groups: map[string]*group{}}
			s.open[start] = w
		}
		s.watermark = max(s.watermark, ts)
	} else {
		if s.cur == nil {
			s.cur = &win{start: ts, groups: map[string]*group{}}
		}
		w = s.cur
	}
	g := w.groups[key]
	if g == nil {
		g = &group{tags: merged()}
		w.groups[key] = g
	}
	if v == v {
		g.vals = append(g.vals, v)
	}
	w.n++
	if s.window > 0 {
		// Close every window that ended Lateness or more before the
		// watermark.
		return s.closeLocked(satSub(s.watermark, s.lateness))
	}
	if w.n >= s.batch {
		s.cur = nil
		return s.emitLocked([]*win{w})
	}
	return nil
}

// Time returns a function that sends the time elapsed since Time was
// called, in unit (0 means seconds): defer s.Time(time.Millisecond, nil)().
func (s *Stream) Time(unit time.Duration, tags map[string]string) func() error {
	if unit <= 0 {
		unit = time.Second
	}
	start := time.Now()
	return func() error { return s.Send(float64(time.Since(start))/float64(unit), tags) }
}

// Flush emits every open window (and the partial count window).
func (s *Stream) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.window > 0 {
		end := int64(math.MinInt64)
		for start := range s.open {
			end = max(end, satAdd(start, s.window))
		}
		return s.closeLocked(end)
	}
	if s.cur != nil {
		w := s.cur
		s.cur = nil
		return s.emitLocked([]*win{w})
	}
	return nil
}

// FlushBefore emits the time windows that end at or before t (the
// coordinator calls it with the current time minus Lateness, so windows
// close even when observations stop). Count windows are not affected.
func (s *Stream) FlushBefore(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.window == 0 {
		return nil
	}
	return s.closeLocked(t.UnixNano())
}

// closeLocked emits the windows whose end is <= t, in time order.
func (s *Stream) closeLocked(t int64) error {
	s.closedEnd = max(s.closedEnd, t)
	var done []*win
	for start, w := range s.open {
		if end := satAdd(start, s.window); end <= t {
			done = append(done, w)
			delete(s.open, start)
		}
	}
	if len(done) == 0 {
		return nil
	}
	slices.SortFunc(done, func(a, b *win) int { return cmp.Compare(a.start, b.start) })
	return s.emitLocked(done)
}

// emitLocked aggregates windows and writes the elements to every sink.
func (s *Stream) emitLocked(ws []*win) error {
	out := s.out[:0]
	var sorted []float64
	for _, w := range ws {
		keys := slices.Sorted(maps.Keys(w.groups))
		for _, k := range keys {
			g := w.groups[k]
			sorted = sorted[:0]
			for _, a := range s.aggs {
				vals := g.vals
				if a.Sorted {
					if len(sorted) == 0 && len(g.vals) > 0 {
						sorted = append(sorted, g.vals...)
						slices.Sort(sorted)
					}
					vals = sorted
				}
				out = append(out, Element{Name: s.name + "." + a.Name, Time: w.start, Value: a.Fn(vals), Tags: g.tags})
			}
		}
	}
	s.out = out[:0]
	var errs []error
	for _, k := range s.sinks {
		if err := k.Write(out); err != nil {
			errs = append(errs, fmt.Errorf("stream %q: sink: %w", s.name, err))
		}
	}
	clear(out)
	return errors.Join(errs...)
}

// tagKey returns the canonical key of the merged tags and a function
// building the merged map (called only for a new group).
func (s *Stream) tagKey(tags map[string]string) (string, func() map[string]string) {
	merged := func() map[string]string {
		m := make(map[string]string, len(s.defaults)+len(tags))
		maps.Copy(m, s.defaults)
		maps.Copy(m, tags)
		for k, v := range m {
			if v == "" {
				delete(m, k) // empty means absent, as in the engine
			}
		}
		return m
	}
	m := merged()
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0xfe)
		b.WriteString(m[k])
		b.WriteByte(0xff)
	}
	return b.String(), func() map[string]string { return m }
}

// windowOf returns the start of the window of length d holding t: a
// multiple of d since the Unix epoch.
func windowOf(t, d int64) int64 {
	r := t % d
	if r < 0 {
		r += d
	}
	return t - r
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satSub(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}
