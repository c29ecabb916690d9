package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/eventmetrics/eventmetrics/server"
)

// parseSelector parses a Prometheus-style series selector:
//
//	name
//	name{label="value", other=~"re.*", code!="500", path!~"/debug/.*"}
//	{label="value"}
func parseSelector(s string) (string, []server.MatcherSpec, error) {
	s = strings.TrimSpace(s)
	name, rest, hasBrace := strings.Cut(s, "{")
	name = strings.TrimSpace(name)
	if !hasBrace {
		if strings.ContainsAny(name, "}=\"") {
			return "", nil, fmt.Errorf("selector %q: expected name{label=\"value\",...}", s)
		}
		return name, nil, nil
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasSuffix(rest, "}") {
		return "", nil, fmt.Errorf("selector %q: missing closing }", s)
	}
	rest = strings.TrimSpace(rest[:len(rest)-1])
	var ms []server.MatcherSpec
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '_' || rest[i] >= 'a' && rest[i] <= 'z' || rest[i] >= 'A' && rest[i] <= 'Z' || i > 0 && rest[i] >= '0' && rest[i] <= '9') {
			i++
		}
		if i == 0 {
			return "", nil, fmt.Errorf("selector %q: expected a label name at %q", s, rest)
		}
		label := rest[:i]
		rest = strings.TrimSpace(rest[i:])
		op := ""
		for _, o := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(rest, o) {
				op = o
				break
			}
		}
		if op == "" {
			return "", nil, fmt.Errorf("selector %q: expected =, !=, =~ or !~ after %s", s, label)
		}
		rest = strings.TrimSpace(rest[len(op):])
		if rest == "" || rest[0] != '"' {
			return "", nil, fmt.Errorf("selector %q: the value of %s must be a double-quoted string", s, label)
		}
		end := 1
		for end < len(rest) && rest[end] != '"' {
			if rest[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(rest) {
			return "", nil, fmt.Errorf("selector %q: unterminated string after %s%s", s, label, op)
		}
		val, err := strconv.Unquote(rest[:end+1])
		if err != nil {
			return "", nil, fmt.Errorf("selector %q: value of %s: %v", s, label, err)
		}
		ms = append(ms, server.MatcherSpec{Label: label, Op: op, Value: val})
		rest = strings.TrimSpace(rest[end+1:])
		if rest != "" {
			if rest[0] != ',' {
				return "", nil, fmt.Errorf("selector %q: expected , between matchers at %q", s, rest)
			}
			rest = strings.TrimSpace(rest[1:])
		}
	}
	if name == "" && len(ms) == 0 {
		return "", nil, fmt.Errorf("selector %q selects nothing: give a name or a matcher", s)
	}
	return name, ms, nil
}
