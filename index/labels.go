package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits on names and labels. They bound memory and key sizes; the engine
// may lower them through its options.
const (
	MaxNameLen       = 1024
	MaxLabelNameLen  = 1024
	MaxLabelValueLen = 16 * 1024
	MaxLabels        = 64
)

// MetricNameLabel is the reserved label name under which the metric name is
// indexed. User labels may not use it.
const MetricNameLabel = "__name__"

// ErrInvalidSeries is the sentinel wrapped by every validation error.
var ErrInvalidSeries = errors.New("invalid series")

// Label is one name=value pair.
type Label struct {
	Name, Value string
}

// Limits configures validation. The zero value of a field means its default.
type Limits struct {
	MaxLabels        int
	MaxLabelValueLen int
}

func (l Limits) maxLabels() int {
	if l.MaxLabels > 0 {
		return l.MaxLabels
	}
	return MaxLabels
}

func (l Limits) maxValueLen() int {
	if l.MaxLabelValueLen > 0 {
		return l.MaxLabelValueLen
	}
	return MaxLabelValueLen
}

// ValidateName checks a metric name: non-empty, valid UTF-8, no NUL or other
// control characters, at most MaxNameLen bytes.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty metric name", ErrInvalidSeries)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: metric name is %d bytes, more than the limit of %d", ErrInvalidSeries, len(name), MaxNameLen)
	}
	if err := checkText(name); err != nil {
		return fmt.Errorf("%w: metric name %q: %v", ErrInvalidSeries, truncate(name), err)
	}
	return nil
}

func checkText(s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("control character %#x at byte %d", c, i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("invalid UTF-8 at byte %d", i)
		}
		i += size
	}
	return nil
}

func checkValue(s string) error {
	if !utf8.ValidString(s) {
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return fmt.Errorf("invalid UTF-8 at byte %d", i)
			}
			i += size
		}
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Errorf("NUL byte at %d", i)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Canonical validates name and labels and returns the labels in canonical
// form: empty values dropped (an empty value means the label is absent),
// sorted by name. It appends to dst, which may be nil.
func Canonical(dst []Label, name string, labels map[string]string, lim Limits) ([]Label, error) {
	if err := ValidateName(name); err != nil {
		return dst, err
	}
	n := 0
	for k, v := range labels {
		if v == "" {
			continue
		}
		n++
		if err := validateLabel(k, v, lim); err != nil {
			return dst, err
		}
		dst = append(dst, Label{Name: k, Value: v})
	}
	if n > lim.maxLabels() {
		return dst, fmt.Errorf("%w: %d labels, more than the limit of %d", ErrInvalidSeries, n, lim.maxLabels())
	}
	ls := dst[len(dst)-n:]
	if n > 1 {
		slices.SortFunc(ls, compareLabels)
	}
	return dst, nil
}

// Sorted appends the labels with a non-empty value to dst, sorted by name,
// without validating them: for looking up series already known (validated
// when they were created).
func Sorted(dst []Label, labels map[string]string) []Label {
	n := len(dst)
	for k, v := range labels {
		if v != "" {
			dst = append(dst, Label{Name: k, Value: v})
		}
	}
	if len(dst)-n > 1 {
		slices.SortFunc(dst[n:], compareLabels)
	}
	return dst
}

// CanonicalSlice is Canonical for labels given as a slice; duplicate names
// are an error.
func CanonicalSlice(name string, labels []Label, lim Limits) ([]Label, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	out := make([]Label, 0, len(labels))
	for _, l := range labels {
		if l.Value == "" {
			continue
		}
		if err := validateLabel(l.Name, l.Value, lim); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if len(out) > lim.maxLabels() {
		return nil, fmt.Errorf("%w: %d labels, more than the limit of %d", ErrInvalidSeries, len(out), lim.maxLabels())
	}
	slices.SortFunc(out, compareLabels)
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, fmt.Errorf("%w: label %q given twice", ErrInvalidSeries, out[i].Name)
		}
	}
	return out, nil
}

func compareLabels(a, b Label) int { return strings.Compare(a.Name, b.Name) }

func validateLabel(k, v string, lim Limits) error {
	if k == "" {
		return fmt.Errorf("%w: empty label name (value %q)", ErrInvalidSeries, truncate(v))
	}
	if k == MetricNameLabel {
		return fmt.Errorf("%w: label name %q is reserved for the metric name", ErrInvalidSeries, k)
	}
	if len(k) > MaxLabelNameLen {
		return fmt.Errorf("%w: label name is %d bytes, more than the limit of %d", ErrInvalidSeries, len(k), MaxLabelNameLen)
	}
	if err := checkText(k); err != nil {
		return fmt.Errorf("%w: label name %q: %v", ErrInvalidSeries, truncate(k), err)
	}
	if len(v) > lim.maxValueLen() {
		return fmt.Errorf("%w: value of label %q is %d bytes, more than the limit of %d", ErrInvalidSeries, truncate(k), len(v), lim.maxValueLen())
	}
	if err := checkValue(v); err != nil {
		return fmt.Errorf("%w: value of label %q: %v", ErrInvalidSeries, truncate(k), err)
	}
	return nil
}

// AppendKey appends the canonical series key of name and labels (which must
// be canonical: sorted by name, no empty values, no duplicates) to dst.
//
// Layout (part of the format: do not change):
//
//	uvarint len(name) | name | { uvarint len(label name) | label name | uvarint len(value) | value }*
//
// Every string is length-prefixed and labels are sorted, so the encoding is
// injective.
func AppendKey(dst []byte, name string, labels []Label) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(name)))
	dst = append(dst, name...)
	for _, l := range labels {
		dst = binary.AppendUvarint(dst, uint64(len(l.Name)))
		dst = append(dst, l.Name...)
		dst = binary.AppendUvarint(dst, uint64(len(l.Value)))
		dst = append(dst, l.Value...)
	}
	return dst
}

// ErrCorruptKey is wrapped by DecodeKey errors.
var ErrCorruptKey = errors.New("corrupt series key")

// DecodeKey decodes a series key. It checks that the key is canonical
// (sorted, unique, non-empty label names and values, valid text), so that a
// damaged key is reported instead of silently aliasing another series.
func DecodeKey(b []byte) (name string, labels []Label, err error) {
	s, b, err := readString(b, MaxNameLen)
	if err != nil {
		return "", nil, fmt.Errorf("%w: metric name: %v", ErrCorruptKey, err)
	}
	if err := ValidateName(s); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrCorruptKey, err)
	}
	name = s
	for len(b) > 0 {
		if len(labels) >= 4096 {
			return "", nil, fmt.Errorf("%w: too many labels", ErrCorruptKey)
		}
		var k, v string
		if k, b, err = readString(b, MaxLabelNameLen); err != nil {
			return "", nil, fmt.Errorf("%w: label name: %v", ErrCorruptKey, err)
		}
		if v, b, err = readString(b, 1<<24); err != nil {
			return "", nil, fmt.Errorf("%w: label value: %v", ErrCorruptKey, err)
		}
		if k == "" || v == "" || k == MetricNameLabel {
			return "", nil, fmt.Errorf("%w: empty or reserved label", ErrCorruptKey)
		}
		if err := checkText(k); err != nil {
			return "", nil, fmt.Errorf("%w: label name: %v", ErrCorruptKey, err)
		}
		if err := checkValue(v); err != nil {
			return "", nil, fmt.Errorf("%w: label value: %v", ErrCorruptKey, err)
		}
		if n := len(labels); n > 0 && labels[n-1].Name >= k {
			return "", nil, fmt.Errorf("%w: labels not sorted and unique", ErrCorruptKey)
		}
		labels = append(labels, Label{Name: k, Value: v})
	}
	return name, labels, nil
}

func readString(b []byte, max int) (string, []byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return "", nil, errors.New("bad length")
	}
	if w > 1 && b[w-1] == 0 {
		// A non-minimal varint (trailing zero group) would let two byte
		// strings name one series.
		return "", nil, errors.New("non-minimal length")
	}
	b = b[w:]
	if n > uint64(max) || n > uint64(len(b)) {
		return "", nil, fmt.Errorf("length %d out of range", n)
	}
	return string(b[:n]), b[n:], nil
}

// String formats name and labels as name{a="b", c="d"}.
func String(name string, labels []Label) string {
	var sb strings.Builder
	sb.WriteString(name)
	sb.WriteByte('{')
	for i, l := range labels {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s=%q", l.Name, l.Value)
	}
	sb.WriteByte('}')
	return sb.String()
}
