package query

import "github.com/eventmetrics/eventmetrics/index"

// Matcher selects series by one label, with Prometheus semantics: regular
// expressions are fully anchored, and a matcher that matches the empty
// string also selects series that lack the label.
type Matcher = index.Matcher

// Eq selects series whose label name has exactly value ("" = label absent).
func Eq(name, value string) Matcher { return index.MustMatcher(index.MatchEqual, name, value) }

// Neq selects series whose label name is not value.
func Neq(name, value string) Matcher { return index.MustMatcher(index.MatchNotEqual, name, value) }

// Re selects series whose label name matches the fully anchored regular
// expression re (RE2 syntax). A bad expression makes the query fail with an
// error naming it.
func Re(name, re string) Matcher { return index.MustMatcher(index.MatchRegexp, name, re) }

// NotRe selects series whose label name does not match re.
func NotRe(name, re string) Matcher { return index.MustMatcher(index.MatchNotRegexp, name, re) }
