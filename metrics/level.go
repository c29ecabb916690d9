package metrics

import (
	"fmt"
	"strings"
)

// Level is the recording level of a node of the metric name tree (from
// satella). A metric records an observation only when the effective level
// of its node is at least the metric's own verbosity: Runtime for ordinary
// metrics, Debug for those declared with Opts.Debug.
type Level int32

// The levels, in increasing verbosity. Inherit (the zero value) takes the
// effective level of the parent node; the root's effective level is Runtime
// when it is set to Inherit.
const (
	Inherit  Level = iota // the parent's effective level
	Disabled              // nothing below this node is recorded
	Runtime               // ordinary metrics are recorded
	Debug                 // Debug metrics are recorded too
)

func (l Level) String() string {
	switch l {
	case Inherit:
		return "inherit"
	case Disabled:
		return "disabled"
	case Runtime:
		return "runtime"
	case Debug:
		return "debug"
	}
	return fmt.Sprintf("Level(%d)", int32(l))
}

// ParseLevel parses the name of a level ("disabled", "runtime", "debug",
// "inherit"; case-insensitive).
func ParseLevel(s string) (Level, error) {
	for _, l := range []Level{Inherit, Disabled, Runtime, Debug} {
		if strings.EqualFold(s, l.String()) {
			return l, nil
		}
	}
	return 0, fmt.Errorf("metrics: unknown level %q (want disabled, runtime, debug or inherit)", s)
}

func (l Level) valid() bool { return l >= Inherit && l <= Debug }

// node is one node of the dotted-name tree. Every field is guarded by
// Registry.treeMu.
type node struct {
	name     string // full dotted name ("" for the root)
	parent   *node
	children map[string]*node
	level    Level // as set (Inherit by default, Runtime for the root)
	eff      Level // effective level: never Inherit
	fams     []*family
}

// child returns the child node named part, creating it.
func (n *node) child(part string) *node {
	c := n.children[part]
	if c == nil {
		name := part
		if n.name != "" {
			name = n.name + "." + part
		}
		c = &node{name: name, parent: n, level: Inherit, eff: n.eff}
		if n.children == nil {
			n.children = make(map[string]*node)
		}
		n.children[part] = c
	}
	return c
}

// lookupLocked returns the node of a dotted name, creating the path.
func (r *Registry) nodeLocked(name string) *node {
	n := r.root
	if name == "" {
		return n
	}
	for part := range strings.SplitSeq(name, ".") {
		n = n.child(part)
	}
	return n
}

// propagate recomputes the effective levels of n's subtree and switches
// its families on or off.
func (n *node) propagate() {
	eff := n.level
	if eff == Inherit {
		if n.parent == nil {
			eff = Runtime
		} else {
			eff = n.parent.eff
		}
	}
	n.eff = eff
	for _, f := range n.fams {
		f.on.Store(eff >= f.need)
	}
	for _, c := range n.children {
		c.propagate()
	}
}

// SetLevel sets the level of the node of a dotted name (a metric's name or
// any prefix of it, registered or not yet; "" is the root). It takes effect
// at once for every metric in the subtree whose nodes inherit.
func (r *Registry) SetLevel(name string, l Level) error {
	if !l.valid() {
		return fmt.Errorf("%w: set level of %q: invalid level %d", ErrInvalid, name, int32(l))
	}
	if name != "" {
		if err := validateDotted(name); err != nil {
			return fmt.Errorf("metrics: set level: %w", err)
		}
	}
	r.treeMu.Lock()
	defer r.treeMu.Unlock()
	n := r.nodeLocked(name)
	n.level = l
	n.propagate()
	return nil
}

// Level returns the level set on a node and its effective level (the one
// that decides recording).
func (r *Registry) Level(name string) (set, effective Level) {
	r.treeMu.Lock()
	defer r.treeMu.Unlock()
	n := r.root
	if name != "" {
		for part := range strings.SplitSeq(name, ".") {
			c := n.children[part]
			if c == nil {
				// An unknown node inherits from its closest known ancestor.
				return Inherit, n.eff
			}
			n = c
		}
	}
	return n.level, n.eff
}
