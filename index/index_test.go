package index

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestKeyRoundTripAndInjective(t *testing.T) {
	cases := []struct {
		name   string
		labels map[string]string
	}{
		{"m", nil},
		{"m", map[string]string{"a": "b"}},
		{"m", map[string]string{"a": "b", "c": "d"}},
		{"ma", map[string]string{"": "x"}}, // invalid, skipped below
		{"m", map[string]string{"ab": "c"}},
		{"m", map[string]string{"a": "bc"}},
		{"m", map[string]string{"a": "b", "x": ""}}, // empty value = absent: same as {a=b}
		{"m\u00e9", map[string]string{"k": "\u65e5\u672c"}},
	}
	seen := map[string]string{}
	for _, c := range cases {
		ls, err := Canonical(nil, c.name, c.labels, Limits{})
		if err != nil {
			continue
		}
		key := AppendKey(nil, c.name, ls)
		name, got, err := DecodeKey(key)
		if err != nil || name != c.name || !slices.Equal(got, ls) {
			t.Fatalf("round trip of %s %v: %q %v %v", c.name, ls, name, got, err)
		}
		s := String(c.name, ls)
		if prev, ok := seen[string(key)]; ok && prev != s {
			t.Fatalf("key collision: %s and %s", prev, s)
		}
		seen[string(key)] = s
	}
	a, _ := Canonical(nil, "m", map[string]string{"a": "b", "x": ""}, Limits{})
	b, _ := Canonical(nil, "m", map[string]string{"a": "b"}, Limits{})
	if !bytes.Equal(AppendKey(nil, "m", a), AppendKey(nil, "m", b)) {
		t.Error("an empty label value must mean the label is absent")
	}
}

func FuzzDecodeKey(f *testing.F) {
	f.Add(AppendKey(nil, "m", []Label{{"a", "b"}, {"c", "d"}}))
	f.Add(AppendKey(nil, "http_requests", nil))
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, ls, err := DecodeKey(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptKey) {
				t.Fatalf("error does not wrap ErrCorruptKey: %v", err)
			}
			return
		}
		// A key that decodes is canonical: re-encoding gives the same bytes
		// (so no two keys alias one series).
		if re := AppendKey(nil, name, ls); !bytes.Equal(re, b) {
			t.Fatalf("non-canonical key accepted: %x re-encodes as %x", b, re)
		}
	})
}

func TestMatchers(t *testing.T) {
	p := NewPostings()
	series := []struct {
		id     uint32
		name   string
		labels []Label
	}{
		{1, "m", []Label{{"env", "prod"}, {"svc", "a"}}},
		{2, "m", []Label{{"env", "dev"}, {"svc", "b"}}},
		{3, "m", []Label{{"svc", "c"}}}, // no env
		{4, "m", []Label{{"env", "prod"}, {"svc", "abc"}}},
		{5, "other", []Label{{"env", "prod"}}},
	}
	for _, s := range series {
		p.Add(s.id, s.name, s.labels)
	}
	cases := []struct {
		m    Matcher
		want []uint32
	}{
		{MustMatcher(MatchEqual, "env", "prod"), []uint32{1, 4}},
		{MustMatcher(MatchEqual, "env", ""), []uint32{3}}, // absent
		{MustMatcher(MatchEqual, "env", "nope"), nil},
		{MustMatcher(MatchEqual, "nolabel", ""), []uint32{1, 2, 3, 4}},
		{MustMatcher(MatchNotEqual, "env", "prod"), []uint32{2, 3}},
		{MustMatcher(MatchNotEqual, "env", ""), []uint32{1, 2, 4}},
		{MustMatcher(MatchRegexp, "svc", "a"), []uint32{1}}, // anchored: not abc
		{MustMatcher(MatchRegexp, "svc", "a.*"), []uint32{1, 4}},
		{MustMatcher(MatchRegexp, "svc", "b|c"), []uint32{2, 3}},
		{MustMatcher(MatchRegexp, "svc", "[ab]"), []uint32{1, 2}},
		{MustMatcher(MatchRegexp, "env", "prod|"), []uint32{1, 3, 4}}, // matches empty: absent too
		{MustMatcher(MatchRegexp, "env", ".*"), []uint32{1, 2, 3, 4}},
		{MustMatcher(MatchRegexp, "env", ".+"), []uint32{1, 2, 4}},
		{MustMatcher(MatchRegexp, "env", "(?i)PROD"), []uint32{1, 4}},
		{MustMatcher(MatchNotRegexp, "env", "prod"), []uint32{2, 3}},
		{MustMatcher(MatchNotRegexp, "env", ".*"), nil},
		{MustMatcher(MatchNotRegexp, "env", ".+"), []uint32{3}},
		{MustMatcher(MatchNotRegexp, "svc", "a.*"), []uint32{2, 3}},
	}
	for _, c := range cases {
		t.Run(c.m.String(), func(t *testing.T) {
			bm, err := p.Select("m", []Matcher{c.m})
			if err != nil {
				t.Fatal(err)
			}
			got := bm.ToArray()
			if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	// Several matchers intersect; an unknown metric selects nothing.
	bm, _ := p.Select("m", []Matcher{MustMatcher(MatchEqual, "env", "prod"), MustMatcher(MatchRegexp, "svc", "ab.*")})
	if got := bm.ToArray(); !slices.Equal(got, []uint32{4}) {
		t.Errorf("intersection: %v", got)
	}
	if bm, _ := p.Select("nope", nil); !bm.IsEmpty() {
		t.Error("unknown metric selected series")
	}
	if bm, _ := p.Select("", []Matcher{MustMatcher(MatchEqual, "env", "prod")}); !slices.Equal(bm.ToArray(), []uint32{1, 4, 5}) {
		t.Errorf("no metric name: %v", bm.ToArray())
	}
	if _, err := p.Select("m", []Matcher{MustMatcher(MatchRegexp, "env", "(")}); err == nil {
		t.Error("bad regexp accepted")
	}
	vals, counts := p.LabelValues("env", nil)
	if !slices.Equal(vals, []string{"dev", "prod"}) || !slices.Equal(counts, []uint64{1, 3}) {
		t.Errorf("label values %v %v", vals, counts)
	}
	if names := p.LabelNames(nil); !slices.Equal(names, []string{"env", "svc"}) {
		t.Errorf("label names %v", names)
	}
	// Persistence round trip.
	keys, data, err := p.TakeDirty()
	if err != nil {
		t.Fatal(err)
	}
	q := NewPostings()
	for i, k := range keys {
		if err := q.Load(k.Name, k.Value, data[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		a, _ := p.Select("m", []Matcher{c.m})
		b, _ := q.Select("m", []Matcher{c.m})
		if !a.Equals(b) {
			t.Errorf("%s differs after reload", c.m)
		}
	}
}
