package metrics

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/query"
)

// Defaults of the engine writer.
const (
	// DefaultFlushPoints is the number of buffered observations that makes
	// the writer append them to the engine at once.
	DefaultFlushPoints = 256
	// DefaultFlushEvery bounds how long an observation stays buffered.
	DefaultFlushEvery = 100 * time.Millisecond
)

// writer takes a registry's observations to one engine. In buffered mode
// (the default) it collects them, with their series handles and event
// times, in an engine.Batch appended when it holds FlushPoints points or
// FlushEvery after its first point; in write-through mode every
// observation is written at once.
//
// Lock order: Registry.mu, then family.mu, then writer.mu.
//
// mu also serializes, in engine mode, the updates whose stored values must
// follow their timestamps (counter totals, gauge values) and the histogram
// counts that SetBuckets recounts.
type writer struct {
	db      *engine.DB
	r       *Registry
	through bool
	max     int
	every   time.Duration

	mu    sync.Mutex
	batch engine.Batch
	armed bool // a flush timer is pending
	timer *time.Timer
}

// binding is a cell's resolved series and the writer it goes through.
type binding struct {
	w *writer
	s *engine.Series
	// total is a counter's running total as stored; guarded by w.mu.
	total float64
}

func newWriter(r *Registry, db *engine.DB, o *RegistryOptions) *writer {
	w := &writer{db: db, r: r, through: o.WriteThrough, max: o.FlushPoints, every: o.FlushEvery}
	if w.max == 0 {
		w.max = DefaultFlushPoints
	}
	if w.every == 0 {
		w.every = DefaultFlushEvery
	}
	return w
}

// appendLocked writes or buffers the point (now, v) of s. w.mu is held.
func (w *writer) appendLocked(s *engine.Series, t int64, v float64) {
	if w.through {
		w.r.engineError(s.ObserveAtNanos(t, v))
		return
	}
	w.batch.Add(s, t, v)
	if n := w.batch.Len(); n >= w.max {
		w.flushLocked()
	} else if n == 1 && !w.armed {
		w.armed = true
		if w.timer == nil {
			w.timer = time.AfterFunc(w.every, w.tick)
		} else {
			w.timer.Reset(w.every)
		}
	}
}

func (w *writer) tick() {
	w.mu.Lock()
	w.armed = false
	w.flushLocked()
	w.mu.Unlock()
}

func (w *writer) flushLocked() error {
	if w.batch.Len() == 0 {
		return nil
	}
	err := w.db.Append(&w.batch)
	if err != nil {
		w.r.engineErrs.Add(uint64(w.batch.Len() - 1)) // engineError counts the last
		err = fmt.Errorf("metrics: append %d observations to the engine: %w", w.batch.Len(), err)
		w.r.engineError(err)
	}
	w.batch.Reset()
	return err
}

func (w *writer) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

// stop flushes and stops the timer.
func (w *writer) stop() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.armed = false
	}
	return w.flushLocked()
}

// Flush appends the buffered observations to the engine now. Call it
// before closing the engine; queries see an observation once it is
// flushed (at most FlushEvery after it was made).
func (r *Registry) Flush() error {
	if w := r.wr.Load(); w != nil {
		return w.flush()
	}
	return nil
}

// bind resolves the series of a cell on w's engine (f.mu held), and for a
// counter the stored running total it continues from.
func (f *family) bind(c *cell, w *writer) {
	if w == nil {
		c.bind.Store(nil)
		return
	}
	ls := make(engine.Labels, len(c.pairs))
	for _, p := range c.pairs {
		ls[p.GetName()] = p.GetValue()
	}
	s, err := w.db.Series(f.promName, ls)
	if err != nil {
		f.reg.engineError(fmt.Errorf("metrics: resolve series of %s: %w", f.promName, err))
		c.bind.Store(nil)
		return
	}
	b := &binding{w: w, s: s}
	if f.kind == kindCounter {
		// The buffer may hold totals of this series (from a label set
		// that expired): the stored total must include them.
		_ = w.flush() // an error is counted; the query below still runs
		last, err := lastValue(w.db, s)
		if err != nil {
			f.reg.engineError(fmt.Errorf("metrics: load the stored total of %s: %w", s, err))
			c.bind.Store(nil)
			return
		}
		b.total = last
	}
	c.bind.Store(b)
}

// lastValue returns the stored value of s with the greatest timestamp (0
// when it has none).
func lastValue(db *engine.DB, s *engine.Series) (float64, error) {
	rows, err := db.Query(s.Name(), exactMatchers(s.Labels())...).BySeries().AggregateBy(query.Last)
	if err != nil {
		return 0, err
	}
	if row := exactRow(rows, s.Labels()); row != nil && len(row.Values) > 0 && row.Values[0][0] == row.Values[0][0] {
		return row.Values[0][0], nil
	}
	return 0, nil
}

// exactRow returns the BySeries row of the series labeled ls (the query
// matchers also select series with more labels).
func exactRow(rows []query.Row, ls []index.Label) *query.Row {
	for i := range rows {
		got := slices.DeleteFunc(slices.Clone(rows[i].Labels), func(l index.Label) bool { return l.Name == index.MetricNameLabel })
		if slices.Equal(got, ls) {
			return &rows[i]
		}
	}
	return nil
}

func exactMatchers(ls []index.Label) []query.Matcher {
	ms := make([]query.Matcher, len(ls))
	for i, l := range ls {
		ms[i] = query.Eq(l.Name, l.Value)
	}
	return ms
}
