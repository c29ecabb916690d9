package metrics

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// MeterOpts declare a meter.
type MeterOpts struct {
	Opts
	// Periods are the trailing periods a meter counts calls over, each a
	// whole number of seconds from 1 s to 1 h (default 1 s and 1 min).
	Periods []time.Duration
}

// Meter counts calls per time unit, as satella's "cps" metric: for each of
// its periods, how many calls were marked in the last period, with a
// resolution of one second (the current second counts in full). It is
// exposed as a gauge with a "period" label ("60s") per period. With an
// engine attached each Mark stores a point of value n at its time, so
// query.Sum over any window gives the same counts from the stored history.
// It is safe for concurrent use.
type Meter struct {
	cell
	mu     sync.Mutex
	secs   []int64 // ring: the Unix second each slot counts
	counts []uint64
}

func (r *Registry) meter(o MeterOpts, vec bool) (*family, error) {
	ps := o.Periods
	if ps == nil {
		ps = []time.Duration{time.Second, time.Minute}
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%w: %s: a meter needs a period", ErrInvalid, o.Name)
	}
	for _, p := range ps {
		if p < time.Second || p > time.Hour || p%time.Second != 0 {
			return nil, fmt.Errorf("%w: %s: meter period %v: want whole seconds from 1s to 1h", ErrInvalid, o.Name, p)
		}
	}
	ps = slices.Clone(ps)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	slots := int(ps[len(ps)-1] / time.Second)
	f, err := r.register(kindMeter, o.Opts, vec, func(*family) metricCell {
		return &Meter{secs: make([]int64, slots), counts: make([]uint64, slots)}
	})
	if err != nil {
		return nil, err
	}
	f.periods = ps
	return f, nil
}

// Meter registers a meter without labels.
func (r *Registry) Meter(o MeterOpts) (*Meter, error) {
	f, err := r.meter(o, false)
	if err != nil {
		return nil, err
	}
	f.initSingle()
	return f.single.(*Meter), nil
}

// MeterVec registers a meter with labels.
func (r *Registry) MeterVec(o MeterOpts) (MeterVec, error) {
	f, err := r.meter(o, true)
	if err != nil {
		return MeterVec{}, err
	}
	return newVec[*Meter](f), nil
}

// Mark counts one call now.
func (m *Meter) Mark() { m.MarkN(1) }

// MarkN counts n calls now.
func (m *Meter) MarkN(n uint64) {
	if !m.fam.on.Load() || n == 0 {
		return
	}
	if m.state.Load() != stTouched {
		m = m.fam.live(&m.cell, m).(*Meter)
	}
	now := m.fam.reg.nowNanos()
	sec := floorDiv(now, int64(time.Second))
	m.mu.Lock()
	i := int(floorMod(sec, int64(len(m.secs))))
	if m.secs[i] != sec {
		m.secs[i], m.counts[i] = sec, 0
	}
	m.counts[i] += n
	m.mu.Unlock()
	if b := m.bind.Load(); b != nil {
		b.w.mu.Lock()
		b.w.appendLocked(b.s, now, float64(n))
		b.w.mu.Unlock()
	}
}

// Counts returns, for each period (ascending), the calls marked in the
// last period.
func (m *Meter) Counts() (periods []time.Duration, counts []uint64) {
	return slices.Clone(m.fam.periods), m.countsAt(m.fam.reg.nowNanos())
}

func (m *Meter) countsAt(now int64) []uint64 {
	sec := floorDiv(now, int64(time.Second))
	out := make([]uint64, len(m.fam.periods))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, s := range m.secs {
		if s > sec || m.counts[i] == 0 {
			continue
		}
		for j, p := range m.fam.periods {
			if sec-s < int64(p/time.Second) {
				out[j] += m.counts[i]
			}
		}
	}
	return out
}

func (m *Meter) collect(dm *dto.Metric, now int64) {
	// Only the first period fits one dto.Metric: collectAll gives all.
	dm.Gauge = &dto.Gauge{Value: proto.Float64(float64(m.countsAt(now)[0]))}
}

// collectAll returns one gauge per period, labeled period="<seconds>s".
func (m *Meter) collectAll(now int64) []*dto.Metric {
	cs := m.countsAt(now)
	out := make([]*dto.Metric, len(cs))
	for j, p := range m.fam.periods {
		ls := make([]*dto.LabelPair, 0, len(m.pairs)+1)
		ls = append(ls, m.pairs...)
		ls = append(ls, &dto.LabelPair{Name: proto.String("period"), Value: proto.String(strconv.FormatInt(int64(p/time.Second), 10) + "s")})
		sortPairs(ls)
		out[j] = &dto.Metric{Label: ls, Gauge: &dto.Gauge{Value: proto.Float64(float64(cs[j]))}}
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
