package main

import (
	"fmt"
	"testing"
)

func TestParseSelector(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{"lat", "lat []", ""},
		{` lat { } `, "lat []", ""},
		{`lat{svc="a"}`, "lat [{svc = a}]", ""},
		{`lat{svc="a", path=~"/api/.*",code!="500",x!~"y|z"}`, "lat [{svc = a} {path =~ /api/.*} {code != 500} {x !~ y|z}]", ""},
		{`{job="api"}`, " [{job = api}]", ""},
		{`lat{v="q\"uote\\d"}`, `lat [{v = q"uote\d}]`, ""},
		{`lat{v="é"}`, "lat [{v = é}]", ""},
		{`lat{`, "", "missing closing"},
		{`lat{svc}`, "", "expected ="},
		{`lat{svc=a}`, "", "double-quoted"},
		{`lat{svc="a}`, "", "unterminated"},
		{`lat{svc="a" code="b"}`, "", "expected ,"},
		{`lat{9x="a"}`, "", "label name"},
		{`{}`, "", "selects nothing"},
		{`lat}`, "", "expected name"},
	} {
		name, ms, err := parseSelector(c.in)
		if c.err != "" {
			if err == nil || !contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		got := name + " ["
		for i, m := range ms {
			if i > 0 {
				got += " "
			}
			got += fmt.Sprintf("{%s %s %s}", m.Label, m.Op, m.Value)
		}
		got += "]"
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
