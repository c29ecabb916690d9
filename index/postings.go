package index

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

// MatchType is the kind of a label matcher.
type MatchType uint8

// The four matcher types, with Prometheus semantics.
const (
	MatchEqual MatchType = iota
	MatchNotEqual
	MatchRegexp
	MatchNotRegexp
)

func (t MatchType) String() string {
	switch t {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	}
	return fmt.Sprintf("MatchType(%d)", uint8(t))
}

// Matcher selects series by one label. Regular expressions are fully
// anchored. A matcher that matches the empty string also selects series that
// lack the label (an absent label has the empty value).
type Matcher struct {
	Type  MatchType
	Name  string
	Value string

	re *regexp.Regexp
	// For regexps that are a plain alternation of literals (a|b|c), the set.
	literals []string
	// For regexps of the form literal.*, the prefix.
	prefix    string
	hasPrefix bool
	err       error
}

// NewMatcher builds a matcher. A bad regular expression is an error.
func NewMatcher(t MatchType, name, value string) (Matcher, error) {
	m := Matcher{Type: t, Name: name, Value: value}
	if t > MatchNotRegexp {
		m.err = fmt.Errorf("unknown matcher type %d", t)
		return m, m.err
	}
	if t == MatchRegexp || t == MatchNotRegexp {
		re, err := regexp.Compile("^(?s:" + value + ")$")
		if err != nil {
			m.err = fmt.Errorf("matcher %s%s%q: %w", name, t, value, err)
			return m, m.err
		}
		m.re = re
		m.literals, m.prefix, m.hasPrefix = analyze(value)
	}
	return m, nil
}

// MustMatcher is NewMatcher for constant arguments; it keeps a bad regexp's
// error inside the matcher, reported when the matcher is used.
func MustMatcher(t MatchType, name, value string) Matcher {
	m, _ := NewMatcher(t, name, value)
	return m
}

// Err reports a construction error (a bad regexp).
func (m Matcher) Err() error { return m.err }

func (m Matcher) String() string { return fmt.Sprintf("%s%s%q", m.Name, m.Type, m.Value) }

// Matches reports whether the label value v (empty = absent) satisfies m.
func (m Matcher) Matches(v string) bool {
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.matchRe(v)
	case MatchNotRegexp:
		return !m.matchRe(v)
	}
	return false
}

func (m Matcher) matchRe(v string) bool {
	if m.literals != nil {
		for _, l := range m.literals {
			if l == v {
				return true
			}
		}
		return false
	}
	if m.hasPrefix {
		return strings.HasPrefix(v, m.prefix)
	}
	if m.re == nil {
		return false
	}
	return m.re.MatchString(v)
}

// analyze recognises the fast paths: a|b|c of literals, and literal.* .
func analyze(expr string) (lits []string, prefix string, hasPrefix bool) {
	re, err := syntax.Parse(expr, syntax.Perl|syntax.DotNL)
	if err != nil {
		return nil, "", false
	}
	re = re.Simplify()
	isLit := func(r *syntax.Regexp) (string, bool) {
		if r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0 {
			return string(r.Rune), true
		}
		if r.Op == syntax.OpEmptyMatch {
			return "", true
		}
		return "", false
	}
	if s, ok := isLit(re); ok {
		return []string{s}, "", false
	}
	if re.Op == syntax.OpAlternate {
		out := make([]string, 0, len(re.Sub))
		for _, sub := range re.Sub {
			s, ok := isLit(sub)
			if !ok {
				return nil, "", false
			}
			out = append(out, s)
		}
		return out, "", false
	}
	if re.Op == syntax.OpCharClass {
		// Small character classes like [ab] are alternations of one-rune literals.
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				out = append(out, string(r))
				if len(out) > 64 {
					return nil, "", false
				}
			}
		}
		return out, "", false
	}
	if re.Op == syntax.OpConcat && len(re.Sub) == 2 {
		s, ok := isLit(re.Sub[0])
		star := re.Sub[1]
		if ok && star.Op == syntax.OpStar && len(star.Sub) == 1 && star.Sub[0].Op == syntax.OpAnyChar {
			return nil, s, true
		}
	}
	if re.Op == syntax.OpStar && len(re.Sub) == 1 && re.Sub[0].Op == syntax.OpAnyChar {
		return nil, "", true
	}
	return nil, "", false
}

// Postings is the inverted index: label name -> value -> bitmap of series
// ids. The metric name is indexed under MetricNameLabel. Ids are uint32 in
// the bitmaps; the engine allocates ids below 2^32.
type Postings struct {
	mu     sync.RWMutex
	all    *roaring.Bitmap
	labels map[string]map[string]*roaring.Bitmap
	dirty  map[PostingKey]struct{}
}

// PostingKey names one postings list.
type PostingKey struct{ Name, Value string }

// NewPostings returns an empty index.
func NewPostings() *Postings {
	return &Postings{
		all:    roaring.New(),
		labels: make(map[string]map[string]*roaring.Bitmap),
		dirty:  make(map[PostingKey]struct{}),
	}
}

// Add indexes series id under its name and labels.
func (p *Postings) Add(id uint32, name string, labels []Label) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all.Add(id)
	p.addLocked(id, MetricNameLabel, name)
	for _, l := range labels {
		p.addLocked(id, l.Name, l.Value)
	}
}

func (p *Postings) addLocked(id uint32, name, value string) {
	vals := p.labels[name]
	if vals == nil {
		vals = make(map[string]*roaring.Bitmap)
		p.labels[name] = vals
	}
	bm := vals[value]
	if bm == nil {
		bm = roaring.New()
		vals[value] = bm
	}
	bm.Add(id)
	p.dirty[PostingKey{name, value}] = struct{}{}
}

// Load installs a persisted postings list (replacing any in memory), as
// read back at open. It does not mark it dirty.
func (p *Postings) Load(name, value string, data []byte) error {
	bm := roaring.New()
	if err := bm.UnmarshalBinary(data); err != nil {
		return fmt.Errorf("postings %s=%q: %w", name, value, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	vals := p.labels[name]
	if vals == nil {
		vals = make(map[string]*roaring.Bitmap)
		p.labels[name] = vals
	}
	if old := vals[value]; old != nil {
		bm.Or(old)
	}
	vals[value] = bm
	if name == MetricNameLabel {
		p.all.Or(bm)
	}
	return nil
}

// TakeDirty returns the serialized postings lists changed since the last
// call, and clears the dirty set. On a failed persist, call MarkDirty with
// the keys to try again.
func (p *Postings) TakeDirty() (keys []PostingKey, data [][]byte, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.dirty {
		bm := p.labels[k.Name][k.Value]
		if bm == nil {
			continue
		}
		bm.RunOptimize()
		b, err := bm.ToBytes()
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		data = append(data, b)
	}
	clear(p.dirty)
	return keys, data, nil
}

// MarkDirty marks keys dirty again (after a failed persist).
func (p *Postings) MarkDirty(keys []PostingKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		p.dirty[k] = struct{}{}
	}
}

// Len returns the number of series indexed.
func (p *Postings) Len() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.all.GetCardinality()
}

// Select returns the ids of series named name that satisfy every matcher.
// An empty name selects every series. The result is a new bitmap owned by
// the caller.
func (p *Postings) Select(name string, ms []Matcher) (*roaring.Bitmap, error) {
	for _, m := range ms {
		if m.err != nil {
			return nil, m.err
		}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	var res *roaring.Bitmap
	if name != "" {
		bm := p.labels[MetricNameLabel][name]
		if bm == nil {
			return roaring.New(), nil
		}
		res = bm.Clone()
	} else {
		res = p.all.Clone()
	}
	// Positive matchers first: they shrink the set most.
	order := make([]int, len(ms))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return rank(ms[order[a]]) < rank(ms[order[b]])
	})
	for _, i := range order {
		if res.IsEmpty() {
			break
		}
		p.applyLocked(res, ms[i])
	}
	return res, nil
}

func rank(m Matcher) int {
	switch {
	case m.Type == MatchEqual && m.Value != "":
		return 0
	case m.Type == MatchRegexp && !m.Matches(""):
		return 1
	}
	return 2
}

// applyLocked narrows res by m.
func (p *Postings) applyLocked(res *roaring.Bitmap, m Matcher) {
	vals := p.labels[m.Name]
	if m.Type == MatchEqual && m.Value != "" {
		bm := vals[m.Value]
		if bm == nil {
			res.Clear()
			return
		}
		res.And(bm)
		return
	}
	if m.Type == MatchNotEqual && m.Value != "" {
		if bm := vals[m.Value]; bm != nil {
			res.AndNot(bm)
		}
		return
	}
	// General case: the union of the bitmaps of the values that match, plus
	// the series lacking the label when the empty value matches.
	emptyMatches := m.Matches("")
	if emptyMatches {
		// Remove series whose (non-empty) value does not match.
		for _, bm := range p.valuesFor(m, vals, false) {
			res.AndNot(bm)
		}
		return
	}
	union := roaring.New()
	for _, bm := range p.valuesFor(m, vals, true) {
		union.Or(bm)
	}
	res.And(union)
}

// valuesFor returns the bitmaps of the values of one label for which
// m.Matches(value) == want.
func (p *Postings) valuesFor(m Matcher, vals map[string]*roaring.Bitmap, want bool) map[string]*roaring.Bitmap {
	out := make(map[string]*roaring.Bitmap)
	if want && m.Type == MatchRegexp && m.literals != nil {
		for _, l := range m.literals {
			if bm := vals[l]; bm != nil {
				out[l] = bm
			}
		}
		return out
	}
	if want && m.Type == MatchEqual {
		if bm := vals[m.Value]; bm != nil {
			out[m.Value] = bm
		}
		return out
	}
	for v, bm := range vals {
		if m.Matches(v) == want {
			out[v] = bm
		}
	}
	return out
}

// LabelNames returns the label names (the metric name label excluded) of
// the series in ids, or of all series when ids is nil, sorted.
func (p *Postings) LabelNames(ids *roaring.Bitmap) []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []string
	for name, vals := range p.labels {
		if name == MetricNameLabel {
			continue
		}
		if ids == nil {
			out = append(out, name)
			continue
		}
		for _, bm := range vals {
			if bm.Intersects(ids) {
				out = append(out, name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// LabelValues returns the values of label name (MetricNameLabel for metric
// names) among the series in ids, or all series when ids is nil, sorted,
// with the number of those series carrying each value.
func (p *Postings) LabelValues(name string, ids *roaring.Bitmap) (values []string, counts []uint64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	vals := p.labels[name]
	values = make([]string, 0, len(vals))
	for v := range vals {
		values = append(values, v)
	}
	sort.Strings(values)
	counts = make([]uint64, 0, len(values))
	j := 0
	for _, v := range values {
		bm := vals[v]
		var n uint64
		if ids == nil {
			n = bm.GetCardinality()
		} else {
			n = bm.AndCardinality(ids)
		}
		if n == 0 {
			continue
		}
		values[j] = v
		j++
		counts = append(counts, n)
	}
	return values[:j], counts
}
