package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/eventmetrics/eventmetrics/engine"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Labels maps label names to values. An empty value means the label is
// absent, as in Prometheus and the engine.
type Labels = map[string]string

// DefaultMaxLabelSets is the default budget of label sets per metric.
const DefaultMaxLabelSets = 10000

// RegistryOptions configure a Registry. A nil *RegistryOptions and the zero
// value of every field mean the defaults.
type RegistryOptions struct {
	// Prefix is prepended, with an underscore, to the exposition and engine
	// name of every metric ("myapp" makes http.requests
	// myapp_http_requests_total). It does not take part in the level tree.
	Prefix string
	// ConstLabels are added to every metric of the registry.
	ConstLabels Labels
	// Engine, when set, receives every observation (see SetEngine).
	Engine *engine.DB
	// WriteThrough writes each observation to the engine before the call
	// returns (about 1.5× slower, and durable per the engine's Sync mode).
	// By default observations are buffered and appended in batches: see
	// FlushPoints, FlushEvery and Registry.Flush.
	WriteThrough bool
	// FlushPoints is the size of the buffer of observations (default
	// DefaultFlushPoints).
	FlushPoints int
	// FlushEvery bounds the time an observation stays buffered (default
	// DefaultFlushEvery).
	FlushEvery time.Duration
	// MaxLabelSets is the default budget of label sets held per metric
	// (default DefaultMaxLabelSets). Past it, binding a new label set fails
	// with ErrLabelBudget and is counted.
	MaxLabelSets int
	// TTL, when positive, expires label sets that saw no observation for
	// that long from memory and exposition (their history stays in the
	// engine). A metric without labels never expires.
	TTL time.Duration
	// Now is the clock of summaries' windows, SetToCurrentTime and expiry
	// (default time.Now).
	Now func() time.Time
}

// Validate reports the first invalid field.
func (o *RegistryOptions) Validate() error {
	if o == nil {
		return nil
	}
	if o.Prefix != "" && !validIdent(o.Prefix) {
		return fmt.Errorf("%w: registry prefix %q: want [a-zA-Z_][a-zA-Z0-9_]*", ErrInvalid, o.Prefix)
	}
	if o.MaxLabelSets < 0 {
		return fmt.Errorf("%w: MaxLabelSets is negative", ErrInvalid)
	}
	if o.FlushPoints < 0 {
		return fmt.Errorf("%w: FlushPoints is negative", ErrInvalid)
	}
	if o.FlushEvery < 0 {
		return fmt.Errorf("%w: FlushEvery is negative", ErrInvalid)
	}
	if o.TTL < 0 {
		return fmt.Errorf("%w: TTL is negative", ErrInvalid)
	}
	for k, v := range o.ConstLabels {
		if err := validateLabel(k, v); err != nil {
			return fmt.Errorf("registry const label: %w", err)
		}
	}
	return nil
}

// Collector produces metric families at exposition time, for values that
// cannot be instrumented directly. The names of its families must not
// collide with the registry's metrics or other collectors.
type Collector interface {
	Collect() ([]*dto.MetricFamily, error)
}

// CollectorFunc returns a Collector that calls fn. Each call returns a
// distinct collector (a pointer), which UnregisterCollector recognizes.
func CollectorFunc(fn func() ([]*dto.MetricFamily, error)) Collector {
	return &funcCollector{fn: fn}
}

type funcCollector struct {
	fn func() ([]*dto.MetricFamily, error)
}

func (f *funcCollector) Collect() ([]*dto.MetricFamily, error) { return f.fn() }

// Registry holds metrics, the level tree of their dotted names, and
// optionally the engine their observations go to. All its methods are safe
// for concurrent use.
type Registry struct {
	prefix     string
	constPairs []*dto.LabelPair // sorted by name
	maxSets    int
	ttl        int64
	now        func() time.Time

	opts       RegistryOptions // as given, for the writers of SetEngine
	clockWall  int64           // the default clock: wall time at creation
	clockMono  time.Time       // and its monotonic reading
	wr         atomic.Pointer[writer]
	engineErrs atomic.Uint64
	lastErr    atomic.Pointer[errBox]

	// treeMu guards the level tree (root and every node).
	treeMu sync.Mutex
	root   *node

	// mu guards the maps of registered metrics and collectors.
	mu         sync.RWMutex
	byProm     map[string]*family // by exposition name
	byDotted   map[string]*family
	collectors map[*collectorEntry]struct{}

	short sync.Map // the short API's metrics by name: *Counter, *Gauge, *Summary
}

type errBox struct{ err error }

type collectorEntry struct {
	c     Collector
	names []string
}

// NewRegistry returns an empty registry.
func NewRegistry(opts *RegistryOptions) (*Registry, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var o RegistryOptions
	if opts != nil {
		o = *opts
	}
	r := &Registry{
		prefix:     o.Prefix,
		maxSets:    o.MaxLabelSets,
		ttl:        int64(o.TTL),
		now:        o.Now,
		opts:       o,
		root:       &node{level: Runtime, eff: Runtime},
		byProm:     make(map[string]*family),
		byDotted:   make(map[string]*family),
		collectors: make(map[*collectorEntry]struct{}),
	}
	if r.maxSets == 0 {
		r.maxSets = DefaultMaxLabelSets
	}
	if r.now == nil {
		r.clockMono = time.Now()
		r.clockWall = r.clockMono.UnixNano()
		r.now = func() time.Time { return time.Unix(0, r.nowNanos()) }
	}
	for k, v := range o.ConstLabels {
		if v != "" {
			r.constPairs = append(r.constPairs, &dto.LabelPair{Name: proto.String(k), Value: proto.String(v)})
		}
	}
	sortPairs(r.constPairs)
	if o.Engine != nil {
		r.SetEngine(o.Engine)
	}
	return r, nil
}

// Default is the registry of the package-level short API (Incr, Set,
// Record) and the one most programs expose.
var Default = mustRegistry()

func mustRegistry() *Registry {
	r, err := NewRegistry(nil)
	if err != nil {
		panic(err) // nil options cannot be invalid
	}
	return r
}

// Must returns v, or panics if err is not nil. It is meant for metric
// declarations in package variables, where a bad declaration is a
// programmer's bug: metrics.Must(r.Counter(metrics.Opts{...})).
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// nowNanos reads the registry's clock: by default the wall time at
// creation plus the monotonic time since (cheaper than time.Now).
func (r *Registry) nowNanos() int64 {
	if r.opts.Now != nil {
		return r.opts.Now().UnixNano()
	}
	return r.clockWall + int64(time.Since(r.clockMono))
}

// SetEngine attaches db (nil detaches): from then on every observation of
// every metric is also written to db at its event time, through a series
// handle resolved once per label set. The series is named by the metric's
// exposition name and labeled with its label set and constant labels.
// Counters are written as running totals continuing from the stored
// total, gauges as their new value, histograms and summaries as the raw
// observations. The previous engine's buffer is flushed first.
func (r *Registry) SetEngine(db *engine.DB) {
	var w *writer
	if db != nil {
		w = newWriter(r, db, &r.opts)
	}
	r.mu.Lock()
	if old := r.wr.Swap(w); old != nil {
		_ = old.stop() // errors are counted
	}
	fams := make([]*family, 0, len(r.byProm))
	for _, f := range r.byProm {
		fams = append(fams, f)
	}
	r.mu.Unlock()
	for _, f := range fams {
		f.mu.Lock()
		for _, m := range f.cells {
			f.bind(m.base(), w)
		}
		if f.single != nil {
			f.bind(f.single.base(), w)
		}
		f.mu.Unlock()
	}
}

// Engine returns the attached engine, or nil.
func (r *Registry) Engine() *engine.DB {
	if w := r.wr.Load(); w != nil {
		return w.db
	}
	return nil
}

// engineError records a failed engine write (writes on the hot path
// cannot return errors: they are counted and the last one is kept).
func (r *Registry) engineError(err error) {
	if err == nil {
		return
	}
	r.engineErrs.Add(1)
	r.lastErr.Store(&errBox{err})
}

// EngineErrors returns the number of failed engine writes and the last
// error. They are exposed as eventmetrics_engine_write_errors_total.
func (r *Registry) EngineErrors() (uint64, error) {
	n := r.engineErrs.Load()
	if b := r.lastErr.Load(); b != nil {
		return n, b.err
	}
	return n, nil
}

// Unregister removes the metric with the dotted name from the registry and
// its exposition. Handles already held keep working in memory (and keep
// writing to the engine). It reports whether the name was registered.
func (r *Registry) Unregister(name string) bool {
	r.mu.Lock()
	f := r.byDotted[name]
	if f != nil {
		delete(r.byDotted, name)
		delete(r.byProm, f.promName)
	}
	r.mu.Unlock()
	if f == nil {
		return false
	}
	r.short.Delete(name)
	r.treeMu.Lock()
	f.node.fams = slices.DeleteFunc(f.node.fams, func(g *family) bool { return g == f })
	r.treeMu.Unlock()
	return true
}

// RegisterCollector adds a custom collector. Its Collect is called once
// here to learn its family names: a failure, an invalid family or a name
// already registered is an error and the collector is not added.
func (r *Registry) RegisterCollector(c Collector) error {
	if c == nil {
		return fmt.Errorf("%w: nil collector", ErrInvalid)
	}
	if !reflect.TypeOf(c).Comparable() {
		return fmt.Errorf("%w: collector of type %T is not comparable: register a pointer", ErrInvalid, c)
	}
	fams, err := c.Collect()
	if err != nil {
		return fmt.Errorf("metrics: register collector: collect: %w", err)
	}
	names := make([]string, 0, len(fams))
	seen := map[string]bool{}
	for _, mf := range fams {
		if err := checkFamily(mf); err != nil {
			return fmt.Errorf("metrics: register collector: %w", err)
		}
		if seen[mf.GetName()] {
			return fmt.Errorf("%w: collector yields family %q twice", ErrDuplicate, mf.GetName())
		}
		seen[mf.GetName()] = true
		names = append(names, mf.GetName())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for e := range r.collectors {
		if e.c == c {
			return fmt.Errorf("%w: collector already registered", ErrDuplicate)
		}
	}
	for _, n := range names {
		if r.nameTakenLocked(n) {
			return fmt.Errorf("%w: collector family %q is already registered", ErrDuplicate, n)
		}
	}
	r.collectors[&collectorEntry{c: c, names: names}] = struct{}{}
	return nil
}

// UnregisterCollector removes a collector; it reports whether it was
// registered.
func (r *Registry) UnregisterCollector(c Collector) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c == nil || !reflect.TypeOf(c).Comparable() {
		return false
	}
	for e := range r.collectors {
		if e.c == c {
			delete(r.collectors, e)
			return true
		}
	}
	return false
}

func (r *Registry) nameTakenLocked(prom string) bool {
	if _, ok := r.byProm[prom]; ok {
		return true
	}
	for e := range r.collectors {
		if slices.Contains(e.names, prom) {
			return true
		}
	}
	return false
}

// checkFamily validates a collector's family.
func checkFamily(mf *dto.MetricFamily) error {
	if mf == nil {
		return fmt.Errorf("%w: nil metric family", ErrInvalid)
	}
	if !validPromName(mf.GetName()) {
		return fmt.Errorf("%w: family name %q: want [a-zA-Z_:][a-zA-Z0-9_:]*", ErrInvalid, mf.GetName())
	}
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if err := validateLabel(lp.GetName(), lp.GetValue()); err != nil {
				return fmt.Errorf("family %q: %w", mf.GetName(), err)
			}
		}
	}
	return nil
}

// Names of the registry's own families.
const (
	overflowFamily    = "eventmetrics_label_sets_overflow_total"
	engineErrorFamily = "eventmetrics_engine_write_errors_total"
)

// Gather returns the current state of every metric and collector, sorted
// by family name, for exposition. It reads memory only, never the engine.
// Expired label sets (RegistryOptions.TTL) are dropped first. A failing
// collector makes Gather return the other families and an error naming it.
func (r *Registry) Gather() ([]*dto.MetricFamily, error) {
	now := r.nowNanos()
	r.mu.RLock()
	fams := make([]*family, 0, len(r.byProm))
	for _, f := range r.byProm {
		fams = append(fams, f)
	}
	entries := make([]*collectorEntry, 0, len(r.collectors))
	for e := range r.collectors {
		entries = append(entries, e)
	}
	r.mu.RUnlock()

	out := make([]*dto.MetricFamily, 0, len(fams)+len(entries)+2)
	var overflow []*dto.Metric
	for _, f := range fams {
		if r.ttl > 0 {
			f.sweep(now)
		}
		if mf := f.gather(now); len(mf.Metric) > 0 { // a Vec without label sets has nothing to expose
			out = append(out, mf)
		}
		if n := f.overflow.Load(); n > 0 {
			overflow = append(overflow, &dto.Metric{
				Label:   []*dto.LabelPair{{Name: proto.String("metric"), Value: proto.String(f.promName)}},
				Counter: &dto.Counter{Value: proto.Float64(float64(n))},
			})
		}
	}
	if len(overflow) > 0 {
		sortMetrics(overflow)
		out = append(out, &dto.MetricFamily{
			Name:   proto.String(overflowFamily),
			Help:   proto.String("Label sets refused because a metric's budget of label sets was full."),
			Type:   dto.MetricType_COUNTER.Enum(),
			Metric: overflow,
		})
	}
	if r.wr.Load() != nil || r.engineErrs.Load() > 0 {
		out = append(out, &dto.MetricFamily{
			Name:   proto.String(engineErrorFamily),
			Help:   proto.String("Observations the attached engine refused or failed to write."),
			Type:   dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(float64(r.engineErrs.Load()))}}},
		})
	}
	var errs []error
	seen := make(map[string]bool, len(out))
	for _, mf := range out {
		seen[mf.GetName()] = true
	}
	for _, e := range entries {
		cf, err := e.c.Collect()
		if err != nil {
			errs = append(errs, fmt.Errorf("collector of %v: %w", e.names, err))
			continue
		}
		for _, mf := range cf {
			if err := checkFamily(mf); err != nil {
				errs = append(errs, fmt.Errorf("collector of %v: %w", e.names, err))
				continue
			}
			if seen[mf.GetName()] {
				errs = append(errs, fmt.Errorf("%w: collector of %v yields family %q, already gathered", ErrDuplicate, e.names, mf.GetName()))
				continue
			}
			seen[mf.GetName()] = true
			if len(mf.GetMetric()) > 0 {
				out = append(out, mf)
			}
		}
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	if len(errs) > 0 {
		return out, fmt.Errorf("metrics: gather: %w", errors.Join(errs...))
	}
	return out, nil
}

// DottedName returns the dotted name of the metric exposed as promName,
// or promName itself when it is not one of the registry's metrics.
func (r *Registry) DottedName(promName string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if f := r.byProm[promName]; f != nil {
		return f.name
	}
	return promName
}

// Prefix returns the registry's name prefix.
func (r *Registry) Prefix() string { return r.prefix }

// validIdent reports whether s matches [a-zA-Z_][a-zA-Z0-9_]*.
func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

func validPromName(s string) bool {
	return validIdent(strings.ReplaceAll(s, ":", "_"))
}

// validateDotted checks a dotted metric name: parts of [a-zA-Z_][a-zA-Z0-9_]*.
func validateDotted(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty metric name", ErrInvalid)
	}
	for part := range strings.SplitSeq(name, ".") {
		if !validIdent(part) {
			return fmt.Errorf("%w: metric name %q: each dot-separated part must match [a-zA-Z_][a-zA-Z0-9_]*", ErrInvalid, name)
		}
	}
	return nil
}

func validateLabelName(k string) error {
	if !validIdent(k) {
		return fmt.Errorf("%w: label name %q: want [a-zA-Z_][a-zA-Z0-9_]*", ErrInvalid, k)
	}
	if strings.HasPrefix(k, "__") {
		return fmt.Errorf("%w: label name %q: names starting with __ are reserved", ErrInvalid, k)
	}
	return nil
}

func validateLabelValue(k, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: value of label %q is not valid UTF-8", ErrInvalid, k)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%w: value of label %q holds a NUL byte", ErrInvalid, k)
	}
	return nil
}

func validateLabel(k, v string) error {
	if err := validateLabelName(k); err != nil {
		return err
	}
	return validateLabelValue(k, v)
}

func sortPairs(ps []*dto.LabelPair) {
	slices.SortFunc(ps, func(a, b *dto.LabelPair) int { return cmp.Compare(a.GetName(), b.GetName()) })
}

func sortMetrics(ms []*dto.Metric) {
	slices.SortFunc(ms, func(a, b *dto.Metric) int {
		la, lb := a.GetLabel(), b.GetLabel()
		for i := 0; i < len(la) && i < len(lb); i++ {
			if c := cmp.Compare(la[i].GetName(), lb[i].GetName()); c != 0 {
				return c
			}
			if c := cmp.Compare(la[i].GetValue(), lb[i].GetValue()); c != 0 {
				return c
			}
		}
		return cmp.Compare(len(la), len(lb))
	})
}
