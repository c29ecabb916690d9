package server

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file decodes the body of POST /em/v1/ingest without reflection: a
// strict JSON reader for exactly the shape of IngestRequest (encoding/json
// took three quarters of the server's CPU on this path). Syntax errors fail
// the request; a point of the wrong shape (a value that is not a number, an
// unknown field) is reported for that point alone, and the rest is kept.
// FuzzIngestJSON checks it against encoding/json.

// rawPoint is one point as read: spans of the body, decoded on demand.
type rawPoint struct {
	name      []byte // a span of the body (or decoded, with escapes)
	labels    []byte // the labels object as sent ("" when absent or null)
	value     float64
	hasValue  bool
	ts        int64
	hasTS     bool
	increment bool
	err       error // the point's own error
}

type jsonReader struct {
	b   []byte
	pos int
}

func (r *jsonReader) syntax(format string, args ...any) error {
	return fmt.Errorf("malformed JSON body at byte %d: %s", r.pos, fmt.Sprintf(format, args...))
}

func (r *jsonReader) ws() {
	for r.pos < len(r.b) {
		switch r.b[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

func (r *jsonReader) peek() byte {
	r.ws()
	if r.pos < len(r.b) {
		return r.b[r.pos]
	}
	return 0
}

func (r *jsonReader) expect(c byte) error {
	if r.peek() != c {
		if r.pos >= len(r.b) {
			return r.syntax("unexpected end, want %q", c)
		}
		return r.syntax("found %q, want %q", r.b[r.pos], c)
	}
	r.pos++
	return nil
}

// str reads a string. Invalid UTF-8 is kept as sent: the engine refuses
// it naming the point.
func (r *jsonReader) str() (string, error) {
	b, err := r.strBytes()
	return string(b), err
}

// strBytes reads a string without allocating when it has no escapes: the
// result is then a span of the body (valid as long as the body).
func (r *jsonReader) strBytes() ([]byte, error) {
	if err := r.expect('"'); err != nil {
		return nil, err
	}
	start := r.pos
	for r.pos < len(r.b) {
		c := r.b[r.pos]
		switch {
		case c == '"':
			r.pos++
			return r.b[start : r.pos-1], nil
		case c == '\\':
			return r.strEscaped(start)
		case c < 0x20:
			return nil, r.syntax("control character in string")
		}
		r.pos++
	}
	return nil, r.syntax("unterminated string")
}

func (r *jsonReader) strEscaped(start int) ([]byte, error) {
	out := append([]byte(nil), r.b[start:r.pos]...)
	for r.pos < len(r.b) {
		c := r.b[r.pos]
		switch {
		case c == '"':
			r.pos++
			return out, nil
		case c < 0x20:
			return nil, r.syntax("control character in string")
		case c != '\\':
			out = append(out, c)
			r.pos++
			continue
		}
		if r.pos+1 >= len(r.b) {
			break
		}
		e := r.b[r.pos+1]
		r.pos += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r1, ok := r.hex4()
			if !ok {
				return nil, r.syntax("bad \\u escape")
			}
			if utf16.IsSurrogate(r1) {
				if r.pos+1 < len(r.b) && r.b[r.pos] == '\\' && r.b[r.pos+1] == 'u' {
					save := r.pos
					r.pos += 2
					if r2, ok := r.hex4(); ok {
						if d := utf16.DecodeRune(r1, r2); d != utf8.RuneError {
							out = utf8.AppendRune(out, d)
							continue
						}
					}
					r.pos = save
				}
				r1 = utf8.RuneError
			}
			out = utf8.AppendRune(out, r1)
		default:
			return nil, r.syntax("bad escape \\%c", e)
		}
	}
	return nil, r.syntax("unterminated string")
}

func (r *jsonReader) hex4() (rune, bool) {
	if r.pos+4 > len(r.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(r.b[r.pos:r.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	r.pos += 4
	return rune(v), true
}

// skip passes over one value of any kind, checking its syntax.
func (r *jsonReader) skip(depth int) error {
	if depth > 64 {
		return r.syntax("nested too deeply")
	}
	switch c := r.peek(); {
	case c == '"':
		_, err := r.strBytes()
		return err
	case c == '{':
		r.pos++
		if r.peek() == '}' {
			r.pos++
			return nil
		}
		for {
			if _, err := r.strBytes(); err != nil {
				return err
			}
			if err := r.expect(':'); err != nil {
				return err
			}
			if err := r.skip(depth + 1); err != nil {
				return err
			}
			if r.peek() == ',' {
				r.pos++
				continue
			}
			return r.expect('}')
		}
	case c == '[':
		r.pos++
		if r.peek() == ']' {
			r.pos++
			return nil
		}
		for {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
			if r.peek() == ',' {
				r.pos++
				continue
			}
			return r.expect(']')
		}
	default:
		_, err := r.literal()
		return err
	}
}

// literal reads a number, true, false or null, returning its bytes.
func (r *jsonReader) literal() ([]byte, error) {
	r.ws()
	start := r.pos
	for r.pos < len(r.b) {
		c := r.b[r.pos]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E' {
			r.pos++
			continue
		}
		break
	}
	lit := r.b[start:r.pos]
	switch string(lit) {
	case "":
		if r.pos >= len(r.b) {
			return nil, r.syntax("unexpected end")
		}
		return nil, r.syntax("unexpected %q", r.b[r.pos])
	case "true", "false", "null":
		return lit, nil
	}
	if !validNumber(lit) {
		return nil, r.syntax("bad literal %q", truncate(lit))
	}
	return lit, nil
}

// validNumber reports whether b is a JSON number.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// parseIngest reads an IngestRequest body, calling fn for each point in
// order. It returns the batch id.
func parseIngest(b []byte, maxPoints int, fn func(i int, p *rawPoint) error) (string, error) {
	r := &jsonReader{b: b}
	if err := r.expect('{'); err != nil {
		return "", err
	}
	id := ""
	seenPoints := false
	if r.peek() == '}' {
		r.pos++
	} else {
		for {
			key, err := r.strBytes()
			if err != nil {
				return "", err
			}
			if err := r.expect(':'); err != nil {
				return "", err
			}
			switch string(key) {
			case "batch_id":
				if r.peek() == 'n' {
					if _, err := r.literal(); err != nil {
						return "", err
					}
					break
				}
				if id, err = r.str(); err != nil {
					return "", err
				}
			case "points":
				seenPoints = true
				if err := r.points(maxPoints, fn); err != nil {
					return "", err
				}
			default:
				return "", r.syntax("unknown field %q", truncate(key))
			}
			if r.peek() == ',' {
				r.pos++
				continue
			}
			if err := r.expect('}'); err != nil {
				return "", err
			}
			break
		}
	}
	if r.ws(); r.pos < len(r.b) { // not peek: a NUL byte is data too
		return "", r.syntax("data after the object")
	}
	if !seenPoints {
		return "", errors.New(`malformed JSON body: no "points" array`)
	}
	return id, nil
}

func (r *jsonReader) points(maxPoints int, fn func(int, *rawPoint) error) error {
	if r.peek() == 'n' {
		_, err := r.literal()
		return err
	}
	if err := r.expect('['); err != nil {
		return err
	}
	if r.peek() == ']' {
		r.pos++
		return nil
	}
	var p rawPoint
	for i := 0; ; i++ {
		if i >= maxPoints {
			return errTooManyPoints
		}
		p = rawPoint{}
		if err := r.point(&p); err != nil {
			return err
		}
		if err := fn(i, &p); err != nil {
			return err
		}
		if r.peek() == ',' {
			r.pos++
			continue
		}
		return r.expect(']')
	}
}

var errTooManyPoints = errors.New("too many points")

// point reads one point object. Shape errors go to p.err; syntax errors
// are returned.
func (r *jsonReader) point(p *rawPoint) error {
	if r.peek() != '{' {
		if err := r.skip(0); err != nil {
			return err
		}
		p.err = errors.New("malformed point: not an object")
		return nil
	}
	r.pos++
	if r.peek() == '}' {
		r.pos++
		p.err = errors.New("point has no value")
		return nil
	}
	setErr := func(err error) {
		if p.err == nil {
			p.err = err
		}
	}
	for {
		key, err := r.strBytes()
		if err != nil {
			return err
		}
		if err := r.expect(':'); err != nil {
			return err
		}
		switch string(key) {
		case "name":
			if r.peek() != '"' {
				if err := r.skip(0); err != nil {
					return err
				}
				setErr(errors.New("malformed point: name is not a string"))
				break
			}
			if p.name, err = r.strBytes(); err != nil {
				return err
			}
		case "labels":
			start := r.pos
			c := r.peek()
			if err := r.skip(0); err != nil {
				return err
			}
			switch c {
			case '{':
				p.labels = r.b[start:r.pos]
			case 'n':
			default:
				setErr(errors.New("malformed point: labels is not an object"))
			}
		case "value":
			c := r.peek()
			var v float64
			var verr error
			if c == '"' {
				s, err := r.strBytes()
				if err != nil {
					return err
				}
				if v, verr = strconv.ParseFloat(string(s), 64); verr != nil {
					verr = fmt.Errorf("malformed point: value %q is not a number", truncate(s))
				}
			} else {
				lit, err := r.literal()
				if err != nil {
					return err
				}
				if lit[0] == 'n' {
					break // null: no value
				}
				if v, verr = strconv.ParseFloat(string(lit), 64); verr != nil {
					verr = fmt.Errorf("malformed point: value %s is not a float64", truncate(lit))
				}
			}
			if verr != nil {
				setErr(verr)
				break
			}
			p.value, p.hasValue = v, true
		case "timestamp":
			c := r.peek()
			var t int64
			var terr error
			if c == '"' {
				s, err := r.str()
				if err != nil {
					return err
				}
				t, terr = ParseTime(s)
			} else {
				lit, err := r.literal()
				if err != nil {
					return err
				}
				if lit[0] == 'n' {
					break
				}
				if t, terr = strconv.ParseInt(string(lit), 10, 64); terr != nil {
					terr = fmt.Errorf("malformed point: timestamp %s is not an integer of Unix nanoseconds nor an RFC 3339 string", truncate(lit))
				}
			}
			if terr != nil {
				setErr(terr)
				break
			}
			p.ts, p.hasTS = t, true
		case "op":
			if r.peek() != '"' {
				if err := r.skip(0); err != nil {
					return err
				}
				setErr(errors.New("malformed point: op is not a string"))
				break
			}
			op, err := r.strBytes()
			if err != nil {
				return err
			}
			switch string(op) {
			case "", "observe":
			case "increment":
				p.increment = true
			default:
				setErr(fmt.Errorf("unknown op %q (observe or increment)", truncate(op)))
			}
		default:
			if err := r.skip(0); err != nil {
				return err
			}
			setErr(fmt.Errorf("malformed point: unknown field %q", truncate(key)))
		}
		if r.peek() == ',' {
			r.pos++
			continue
		}
		return r.expect('}')
	}
}

// labelsInto decodes a labels object (as kept in rawPoint.labels) into m.
func labelsInto(b []byte, m map[string]string) error {
	r := &jsonReader{b: b}
	if err := r.expect('{'); err != nil {
		return err
	}
	if r.peek() == '}' {
		return nil
	}
	for {
		k, err := r.str()
		if err != nil {
			return err
		}
		if err := r.expect(':'); err != nil {
			return err
		}
		if r.peek() != '"' {
			return fmt.Errorf("label %q: value is not a string", truncate([]byte(k)))
		}
		v, err := r.str()
		if err != nil {
			return err
		}
		m[k] = v
		if r.peek() == ',' {
			r.pos++
			continue
		}
		return r.expect('}')
	}
}
