package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Float is a float64 in JSON: finite values are JSON numbers; NaN, +Inf and
// -Inf (which JSON numbers cannot hold) are the strings "NaN", "+Inf" and
// "-Inf". Decoding also accepts any number as a string ("1.5", "Inf").
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) { return appendFloat(nil, float64(f)), nil }

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	v, err := parseFloatJSON(b)
	if err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

func parseFloatJSON(b []byte) (float64, error) {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("value %q is not a number", s)
		}
		return v, nil
	}
	if bytes.Equal(b, []byte("null")) {
		return 0, fmt.Errorf("value is null")
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("value %s is not a number", truncate(b))
	}
	return v, nil
}

// Time is an instant in JSON: an integer of Unix nanoseconds, or a string
// in RFC 3339 (with optional fractional seconds).
type Time int64

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	v, err := parseTimeJSON(b)
	if err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// MarshalJSON implements json.Marshaler (Unix nanoseconds).
func (t Time) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, int64(t), 10), nil }

func parseTimeJSON(b []byte) (int64, error) {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, err
		}
		return ParseTime(s)
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %s is not an integer of Unix nanoseconds nor an RFC 3339 string", truncate(b))
	}
	return v, nil
}

// ParseTime parses an RFC 3339 time or an integer of Unix nanoseconds.
func ParseTime(s string) (int64, error) {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("time %q is neither RFC 3339 nor an integer of Unix nanoseconds", s)
	}
	return t.UnixNano(), nil
}

// Duration is a duration in JSON: a Go duration string ("5m", "1h30m").
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s must be a string such as \"5m\"", truncate(b))
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %v", s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// truncate shortens untrusted bytes quoted in an error message.
func truncate(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
