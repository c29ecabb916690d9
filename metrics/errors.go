package metrics

import "errors"

// Errors returned by the package, for errors.Is. Every returned error wraps
// one of them and says what was wrong.
var (
	// ErrInvalid: a bad name, label name, label value, option or value.
	ErrInvalid = errors.New("metrics: invalid input")
	// ErrLabels: a missing, unknown or doubly bound label.
	ErrLabels = errors.New("metrics: label mismatch")
	// ErrDuplicate: a metric or collector family name already registered.
	ErrDuplicate = errors.New("metrics: duplicate registration")
	// ErrLabelBudget: a new label set would exceed the metric's budget
	// (RegistryOptions.MaxLabelSets, Opts.MaxLabelSets). Each refusal is
	// counted in eventmetrics_label_sets_overflow_total.
	ErrLabelBudget = errors.New("metrics: label set budget exceeded")
	// ErrNoEngine: the operation needs the stored observations of an
	// attached engine.
	ErrNoEngine = errors.New("metrics: no engine attached")
	// ErrType: a short-API call (Incr, Set, Record) on a name registered as
	// another type.
	ErrType = errors.New("metrics: metric type mismatch")
)
