package metrics

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Opts declare a metric.
type Opts struct {
	// Name is the dotted name ("http.server.requests"): each part matches
	// [a-zA-Z_][a-zA-Z0-9_]*. The parts are nodes of the level tree. The
	// exposition and engine name is the registry prefix and the parts
	// joined by underscores, with "_total" appended to counters that lack
	// it.
	Name string
	// Help is the HELP text.
	Help string
	// Labels are the required label names, in the order WithValues takes
	// their values.
	Labels []string
	// Defaults gives default values to some of Labels: a label with a
	// default need not be bound.
	Defaults Labels
	// ConstLabels are fixed labels of this metric.
	ConstLabels Labels
	// Level is the level of the metric's node (default Inherit).
	Level Level
	// Debug makes the metric record only when its effective level is
	// Debug (by default it records at Runtime and Debug).
	Debug bool
	// MaxLabelSets overrides the registry's budget of label sets.
	MaxLabelSets int
	// Unit is the unit of durations observed by Time and ObserveDuration:
	// a duration d is recorded as d/Unit (default time.Second).
	Unit time.Duration
}

// HistogramOpts declare a histogram.
type HistogramOpts struct {
	Opts
	// Buckets are the upper bounds of the exposition buckets, strictly
	// ascending, without +Inf (default DefBuckets). See
	// Histogram.SetBuckets.
	Buckets []float64
}

// SummaryOpts declare a summary.
type SummaryOpts struct {
	Opts
	// Quantiles to expose, each in [0, 1] (default 0.5, 0.9, 0.99).
	Quantiles []float64
	// MaxAge is the sliding window the quantiles are computed over
	// (default 10 minutes).
	MaxAge time.Duration
}

// DefBuckets are the default histogram buckets (seconds, for latencies).
var DefBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindHistogram
	kindSummary
	kindMeter
)

func (k kind) String() string {
	return [...]string{"counter", "gauge", "histogram", "summary", "meter"}[k]
}

// metricCell is one label set of a metric: *Counter, *Gauge, *Histogram or
// *Summary.
type metricCell interface {
	base() *cell
	collect(m *dto.Metric, now int64)
}

// Cell states, for expiry (RegistryOptions.TTL).
const (
	stTouched int32 = iota // observed since the last sweep
	stIdle                 // not observed since the sweep at idleSince
	stDead                 // expired: removed from its family
)

// cell is the part common to every metric type: identity, expiry state and
// the engine series.
type cell struct {
	fam       *family
	key       string
	pairs     []*dto.LabelPair // constant and bound labels, sorted; immutable
	state     atomic.Int32
	idleSince atomic.Int64
	bind      atomic.Pointer[binding] // nil without an engine
}

func (c *cell) base() *cell { return c }

// family is one registered metric and its label sets.
type family struct {
	reg        *Registry
	kind       kind
	name       string // dotted
	promName   string
	help       string
	labelNames []string
	defaults   []string
	hasDef     uint64 // bit i: labelNames[i] has a default
	constPairs []*dto.LabelPair
	need       Level // the effective level needed to record
	unit       float64
	maxSets    int
	quantiles  []float64
	periods    []time.Duration // meters
	maxAge     int64
	node       *node
	newCell    func(f *family) metricCell

	on atomic.Bool // the node's effective level >= need
	// ready is closed when registration is complete (level tree set): a
	// family is in the registry's maps a little earlier, and concurrent
	// first uses of the short API find it there.
	ready     chan struct{}
	overflow  atomic.Uint64
	bounds    atomic.Pointer[[]float64] // histogram buckets for new cells
	lastSweep atomic.Int64

	// mu guards cells (and single's engine binding). Cells are created
	// under the write lock.
	mu     sync.RWMutex
	cells  map[string]metricCell
	single metricCell // the one cell of a metric without labels
}

// register validates o and adds a family of kind k.
func (r *Registry) register(k kind, o Opts, vec bool, newCell func(*family) metricCell) (*family, error) {
	if err := validateDotted(o.Name); err != nil {
		return nil, err
	}
	if !vec && len(o.Labels) > 0 {
		return nil, fmt.Errorf("%w: %s %q declares labels %v: declare it with the %sVec constructor", ErrInvalid, k, o.Name, o.Labels, strings.ToUpper(k.String()[:1])+k.String()[1:])
	}
	if vec && len(o.Labels) == 0 {
		return nil, fmt.Errorf("%w: %s vector %q declares no labels", ErrInvalid, k, o.Name)
	}
	if len(o.Labels) > 64 {
		return nil, fmt.Errorf("%w: %q declares %d labels, more than 64", ErrInvalid, o.Name, len(o.Labels))
	}
	if !o.Level.valid() {
		return nil, fmt.Errorf("%w: %q: invalid level %d", ErrInvalid, o.Name, int32(o.Level))
	}
	if o.MaxLabelSets < 0 {
		return nil, fmt.Errorf("%w: %q: MaxLabelSets is negative", ErrInvalid, o.Name)
	}
	if o.Unit < 0 {
		return nil, fmt.Errorf("%w: %q: Unit is negative", ErrInvalid, o.Name)
	}
	reserved := map[kind]string{kindHistogram: "le", kindSummary: "quantile", kindMeter: "period"}[k]
	f := &family{
		reg:        r,
		kind:       k,
		name:       o.Name,
		help:       o.Help,
		labelNames: slices.Clone(o.Labels),
		defaults:   make([]string, len(o.Labels)),
		need:       Runtime,
		unit:       float64(time.Second),
		maxSets:    r.maxSets,
		newCell:    newCell,
		cells:      make(map[string]metricCell),
		ready:      make(chan struct{}),
	}
	if o.Debug {
		f.need = Debug
	}
	if o.Unit > 0 {
		f.unit = float64(o.Unit)
	}
	if o.MaxLabelSets > 0 {
		f.maxSets = o.MaxLabelSets
	}
	prom := strings.ReplaceAll(o.Name, ".", "_")
	if r.prefix != "" {
		prom = r.prefix + "_" + prom
	}
	if k == kindCounter && !strings.HasSuffix(prom, "_total") {
		prom += "_total"
	}
	f.promName = prom
	seen := map[string]bool{}
	for i, l := range o.Labels {
		if err := validateLabelName(l); err != nil {
			return nil, fmt.Errorf("%q: %w", o.Name, err)
		}
		if l == reserved {
			return nil, fmt.Errorf("%w: %q: label name %q is reserved for %ss", ErrInvalid, o.Name, l, k)
		}
		if seen[l] {
			return nil, fmt.Errorf("%w: %q: label %q declared twice", ErrInvalid, o.Name, l)
		}
		seen[l] = true
		if v, ok := o.Defaults[l]; ok {
			if err := validateLabelValue(l, v); err != nil {
				return nil, fmt.Errorf("%q: default: %w", o.Name, err)
			}
			f.defaults[i] = v
			f.hasDef |= 1 << i
		}
	}
	for l := range o.Defaults {
		if !seen[l] {
			return nil, fmt.Errorf("%w: %q: default for undeclared label %q (declared: %s)", ErrLabels, o.Name, l, strings.Join(o.Labels, ", "))
		}
	}
	consts := map[string]string{}
	for _, p := range r.constPairs {
		consts[p.GetName()] = p.GetValue()
	}
	for l, v := range o.ConstLabels {
		if err := validateLabel(l, v); err != nil {
			return nil, fmt.Errorf("%q: const label: %w", o.Name, err)
		}
		consts[l] = v
	}
	for l, v := range consts {
		if seen[l] {
			return nil, fmt.Errorf("%w: %q: label %q is both constant and variable", ErrInvalid, o.Name, l)
		}
		if l == reserved {
			return nil, fmt.Errorf("%w: %q: label name %q is reserved for %ss", ErrInvalid, o.Name, l, k)
		}
		if v != "" {
			f.constPairs = append(f.constPairs, &dto.LabelPair{Name: proto.String(l), Value: proto.String(v)})
		}
	}
	sortPairs(f.constPairs)

	r.mu.Lock()
	if g := r.byDotted[o.Name]; g != nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: metric %q is already registered (as a %s)", ErrDuplicate, o.Name, g.kind)
	}
	if r.nameTakenLocked(prom) {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: metric %q: exposition name %q is already registered", ErrDuplicate, o.Name, prom)
	}
	r.byDotted[o.Name] = f
	r.byProm[prom] = f
	r.mu.Unlock()

	r.treeMu.Lock()
	n := r.nodeLocked(o.Name)
	f.node = n
	n.fams = append(n.fams, f)
	if o.Level != Inherit {
		n.level = o.Level
	}
	n.propagate()
	r.treeMu.Unlock()
	close(f.ready)
	return f, nil
}

// init creates the single cell of a family without labels (once: a
// concurrent first use of the short API may call it too).
func (f *family) initSingle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.single != nil {
		return
	}
	m := f.newCell(f)
	c := m.base()
	c.fam = f
	c.pairs = f.constPairs
	f.single = m
	f.bind(c, f.reg.wr.Load())
}

// singleCell waits until the family is registered and returns its single
// cell, creating it if its constructor has not yet; nil for a family with
// labels.
func (f *family) singleCell() metricCell {
	<-f.ready
	if len(f.labelNames) > 0 {
		return nil
	}
	f.initSingle()
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.single
}

// lookup returns the cell of the label values vals (complete, in
// labelNames order), creating it within the budget.
func (f *family) lookup(vals []string) (metricCell, error) {
	var buf [256]byte
	key := appendKey(buf[:0], vals)
	f.mu.RLock()
	m := f.cells[string(key)]
	f.mu.RUnlock()
	if m != nil {
		return m, nil
	}
	for i, v := range vals {
		if err := validateLabelValue(f.labelNames[i], v); err != nil {
			return nil, fmt.Errorf("%s: %w", f.promName, err)
		}
	}
	now := f.reg.nowNanos()
	if f.reg.ttl > 0 && now-f.lastSweep.Load() >= f.reg.ttl/2 {
		f.sweep(now)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.cells[string(key)]; m != nil {
		return m, nil
	}
	if len(f.cells) >= f.maxSets {
		f.overflow.Add(1)
		return nil, fmt.Errorf("%w: %s holds %d label sets; refused %s", ErrLabelBudget, f.promName, len(f.cells), f.describe(vals))
	}
	m = f.newCell(f)
	c := m.base()
	c.fam = f
	c.key = string(key)
	c.pairs = slices.Clone(f.constPairs)
	for i, v := range vals {
		if v != "" {
			c.pairs = append(c.pairs, &dto.LabelPair{Name: proto.String(f.labelNames[i]), Value: proto.String(v)})
		}
	}
	sortPairs(c.pairs)
	f.cells[c.key] = m
	f.bind(c, f.reg.wr.Load())
	return m, nil
}

func (f *family) describe(vals []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", f.labelNames[i], v)
	}
	b.WriteByte('}')
	return b.String()
}

// appendKey joins label values with 0xff, a byte no UTF-8 text holds.
func appendKey(dst []byte, vals []string) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, 0xff)
		}
		dst = append(dst, v...)
	}
	return dst
}

// live is the slow path of an observation on a cell that is not marked
// touched: it marks it, or, when it expired, puts it back (or returns the
// cell that replaced it).
func (f *family) live(c *cell, self metricCell) metricCell {
	for {
		switch c.state.Load() {
		case stTouched:
			return self
		case stIdle:
			if c.state.CompareAndSwap(stIdle, stTouched) {
				return self
			}
		case stDead:
			f.mu.Lock()
			other := f.cells[c.key]
			if other == nil {
				f.cells[c.key] = self
				c.state.Store(stTouched)
				f.mu.Unlock()
				return self
			}
			f.mu.Unlock()
			if other == self { // cannot happen: a dead cell is not in the map
				return self
			}
			self, c = other, other.base()
		}
	}
}

// sweep expires idle label sets: a cell untouched for a whole sweep
// becomes idle; an idle cell expires once it has been idle for the TTL.
func (f *family) sweep(now int64) {
	ttl := f.reg.ttl
	f.lastSweep.Store(now)
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, m := range f.cells {
		c := m.base()
		switch c.state.Load() {
		case stTouched:
			c.idleSince.Store(now)
			c.state.CompareAndSwap(stTouched, stIdle)
		case stIdle:
			if now-c.idleSince.Load() >= ttl && c.state.CompareAndSwap(stIdle, stDead) {
				delete(f.cells, k)
			}
		}
	}
}

// gather returns the family's exposition state.
func (f *family) gather(now int64) *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: proto.String(f.promName), Type: f.dtoType().Enum()}
	if f.help != "" {
		mf.Help = proto.String(f.help)
	} else {
		mf.Help = proto.String(f.name + " (" + f.kind.String() + ")")
	}
	f.mu.RLock()
	cells := make([]metricCell, 0, len(f.cells)+1)
	if f.single != nil {
		cells = append(cells, f.single)
	}
	for _, m := range f.cells {
		cells = append(cells, m)
	}
	f.mu.RUnlock()
	mf.Metric = make([]*dto.Metric, 0, len(cells))
	for _, m := range cells {
		if mm, ok := m.(interface{ collectAll(int64) []*dto.Metric }); ok {
			mf.Metric = append(mf.Metric, mm.collectAll(now)...)
			continue
		}
		dm := &dto.Metric{Label: m.base().pairs}
		m.collect(dm, now)
		mf.Metric = append(mf.Metric, dm)
	}
	sortMetrics(mf.Metric)
	return mf
}

func (f *family) dtoType() dto.MetricType {
	switch f.kind {
	case kindCounter:
		return dto.MetricType_COUNTER
	case kindGauge:
		return dto.MetricType_GAUGE
	case kindHistogram:
		return dto.MetricType_HISTOGRAM
	case kindMeter:
		return dto.MetricType_GAUGE
	}
	return dto.MetricType_SUMMARY
}

// Vec is a metric declared with labels, with none, some or all of them
// bound. It is an immutable value: Bind returns a new Vec, so a partially
// bound Vec can be kept and shared. With resolves a complete label set to
// its metric handle (*Counter, *Gauge, *Histogram or *Summary); keep the
// handle for the hot path.
type Vec[M metricCell] struct {
	f    *family
	vals []string
	set  uint64 // bit i: vals[i] is bound
}

// CounterVec, GaugeVec, HistogramVec and SummaryVec are the Vec types of
// each metric type.
type (
	CounterVec   = Vec[*Counter]
	GaugeVec     = Vec[*Gauge]
	HistogramVec = Vec[*Histogram]
	SummaryVec   = Vec[*Summary]
	MeterVec     = Vec[*Meter]
)

func newVec[M metricCell](f *family) Vec[M] {
	return Vec[M]{f: f, vals: make([]string, len(f.labelNames))}
}

// Name returns the exposition name of the metric.
func (v Vec[M]) Name() string { return v.f.promName }

// LabelNames returns the declared label names.
func (v Vec[M]) LabelNames() []string { return slices.Clone(v.f.labelNames) }

// Bind returns a copy of v with the labels of l bound. An unknown label or
// one already bound is an error.
func (v Vec[M]) Bind(l Labels) (Vec[M], error) {
	if v.f == nil {
		return v, fmt.Errorf("%w: zero Vec", ErrInvalid)
	}
	nv := Vec[M]{f: v.f, vals: slices.Clone(v.vals), set: v.set}
	used := 0
	for i, name := range v.f.labelNames {
		val, ok := l[name]
		if !ok {
			continue
		}
		used++
		if v.set&(1<<i) != 0 {
			return v, fmt.Errorf("%w: %s: label %q is already bound to %q", ErrLabels, v.f.promName, name, v.vals[i])
		}
		if err := validateLabelValue(name, val); err != nil {
			return v, fmt.Errorf("%s: %w", v.f.promName, err)
		}
		nv.vals[i] = val
		nv.set |= 1 << i
	}
	if used < len(l) {
		return v, v.f.unknown(l)
	}
	return nv, nil
}

func (f *family) unknown(l Labels) error {
	for name := range l {
		if !slices.Contains(f.labelNames, name) {
			return fmt.Errorf("%w: %s: unknown label %q (declared: %s)", ErrLabels, f.promName, name, strings.Join(f.labelNames, ", "))
		}
	}
	return nil
}

// With binds the labels of l and returns the metric of the complete label
// set; a label neither bound nor given falls back to its default, and is
// an error without one.
func (v Vec[M]) With(l Labels) (M, error) {
	var zero M
	if v.f == nil {
		return zero, fmt.Errorf("%w: zero Vec", ErrInvalid)
	}
	f := v.f
	var arr [16]string
	vals := arr[:0]
	used := 0
	for i, name := range f.labelNames {
		val, ok := l[name]
		switch {
		case ok && v.set&(1<<i) != 0:
			return zero, fmt.Errorf("%w: %s: label %q is already bound to %q", ErrLabels, f.promName, name, v.vals[i])
		case ok:
			used++
		case v.set&(1<<i) != 0:
			val = v.vals[i]
		case f.hasDef&(1<<i) != 0:
			val = f.defaults[i]
		default:
			if err := f.unknown(l); err != nil {
				return zero, err // a misspelt label explains the missing one
			}
			return zero, fmt.Errorf("%w: %s: missing value for label %q", ErrLabels, f.promName, name)
		}
		vals = append(vals, val)
	}
	if used < len(l) {
		return zero, f.unknown(l)
	}
	m, err := f.lookup(vals)
	if err != nil {
		return zero, err
	}
	return m.(M), nil
}

// WithValues returns the metric of the label set whose unbound labels take
// values, in declaration order. Fewer values than unbound labels are
// allowed when the rest have defaults.
func (v Vec[M]) WithValues(values ...string) (M, error) {
	var zero M
	if v.f == nil {
		return zero, fmt.Errorf("%w: zero Vec", ErrInvalid)
	}
	f := v.f
	var arr [16]string
	vals := arr[:0]
	j := 0
	for i, name := range f.labelNames {
		var val string
		switch {
		case v.set&(1<<i) != 0:
			val = v.vals[i]
		case j < len(values):
			val = values[j]
			j++
		case f.hasDef&(1<<i) != 0:
			val = f.defaults[i]
		default:
			return zero, fmt.Errorf("%w: %s: missing value for label %q (%d values given)", ErrLabels, f.promName, name, len(values))
		}
		vals = append(vals, val)
	}
	if j < len(values) {
		return zero, fmt.Errorf("%w: %s: %d label values given, %d labels unbound", ErrLabels, f.promName, len(values), j)
	}
	m, err := f.lookup(vals)
	if err != nil {
		return zero, err
	}
	return m.(M), nil
}

// Delete removes the label set of l (bound labels and defaults completing
// it) from memory and exposition; its history stays in the engine. It
// reports whether the set existed.
func (v Vec[M]) Delete(l Labels) bool {
	if v.f == nil {
		return false
	}
	f := v.f
	vals := make([]string, len(f.labelNames))
	for i, name := range f.labelNames {
		val, ok := l[name]
		switch {
		case ok:
		case v.set&(1<<i) != 0:
			val = v.vals[i]
		case f.hasDef&(1<<i) != 0:
			val = f.defaults[i]
		default:
			return false
		}
		vals[i] = val
	}
	key := string(appendKey(nil, vals))
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.cells[key]
	if m == nil {
		return false
	}
	delete(f.cells, key)
	m.base().state.Store(stDead)
	return true
}

// Len returns the number of label sets held in memory.
func (v Vec[M]) Len() int {
	if v.f == nil {
		return 0
	}
	v.f.mu.RLock()
	defer v.f.mu.RUnlock()
	return len(v.f.cells)
}

// Overflow returns how many label sets were refused by the budget.
func (v Vec[M]) Overflow() uint64 {
	if v.f == nil {
		return 0
	}
	return v.f.overflow.Load()
}

// addFloat adds d to the float64 stored as bits in a, returning the sum.
func addFloat(a *atomic.Uint64, d float64) float64 {
	for {
		old := a.Load()
		nv := math.Float64frombits(old) + d
		if a.CompareAndSwap(old, math.Float64bits(nv)) {
			return nv
		}
	}
}
