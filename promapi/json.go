package promapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// rawJSON is response data already encoded.
type rawJSON []byte

// appendSuccess appends a success response:
// {"status":"success","data":...,"warnings":[...],"infos":[...]}.
func appendSuccess(dst []byte, data any, warnings, infos []string) ([]byte, error) {
	dst = append(dst, `{"status":"success","data":`...)
	if raw, ok := data.(rawJSON); ok {
		dst = append(dst, raw...)
	} else {
		b, err := json.Marshal(data)
		if err != nil {
			return nil, err
		}
		dst = append(dst, b...)
	}
	dst = appendStrings(dst, "warnings", warnings)
	dst = appendStrings(dst, "infos", infos)
	return append(dst, '}'), nil
}

// appendStrings appends ,"key":[...] unless ss is empty.
func appendStrings(dst []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return dst
	}
	dst = append(dst, ',')
	dst = appendString(dst, key)
	dst = append(dst, ":["...)
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// writeError writes an error response with the status code of its type.
func writeError(w http.ResponseWriter, log *slog.Logger, e *apiError, warnings []string) {
	b := append([]byte(nil), `{"status":"error","errorType":`...)
	b = appendString(b, string(e.typ))
	b = append(b, `,"error":`...)
	b = appendString(b, e.err.Error())
	b = appendStrings(b, "warnings", warnings)
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.typ.status())
	if _, err := w.Write(b); err != nil {
		log.Debug("promapi: writing an error response", "err", err)
	}
}

// appendQueryData appends {"resultType":...,"result":...} for a PromQL
// value, in the format of Prometheus' API: sample values as strings
// ("1.5", "NaN", "+Inf"), timestamps as seconds with millisecond
// fractions.
func appendQueryData(dst []byte, v parser.Value) ([]byte, error) {
	dst = append(dst, `{"resultType":`...)
	dst = appendString(dst, string(v.Type()))
	dst = append(dst, `,"result":`...)
	switch v := v.(type) {
	case promql.Matrix:
		dst = append(dst, '[')
		for i, s := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"metric":`...)
			dst = appendLabels(dst, s.Metric)
			if len(s.Floats) > 0 {
				dst = append(dst, `,"values":[`...)
				for j, p := range s.Floats {
					if j > 0 {
						dst = append(dst, ',')
					}
					dst = appendPoint(dst, p.T, p.F)
				}
				dst = append(dst, ']')
			}
			if len(s.Histograms) > 0 {
				b, err := json.Marshal(s.Histograms)
				if err != nil {
					return nil, err
				}
				dst = append(dst, `,"histograms":`...)
				dst = append(dst, b...)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	case promql.Vector:
		dst = append(dst, '[')
		for i, s := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if s.H != nil {
				b, err := json.Marshal(s)
				if err != nil {
					return nil, err
				}
				dst = append(dst, b...)
				continue
			}
			dst = append(dst, `{"metric":`...)
			dst = appendLabels(dst, s.Metric)
			dst = append(dst, `,"value":`...)
			dst = appendPoint(dst, s.T, s.F)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	case promql.Scalar:
		dst = appendPoint(dst, v.T, v.V)
	case promql.String:
		dst = append(dst, '[')
		dst = appendTimestamp(dst, v.T)
		dst = append(dst, ',')
		dst = appendString(dst, v.V)
		dst = append(dst, ']')
	default:
		return nil, fmt.Errorf("promapi: cannot encode a result of type %T", v)
	}
	return append(dst, '}'), nil
}

// appendPoint appends [seconds,"value"].
func appendPoint(dst []byte, t int64, f float64) []byte {
	dst = append(dst, '[')
	dst = appendTimestamp(dst, t)
	dst = append(dst, ',', '"')
	switch {
	case math.IsNaN(f):
		dst = append(dst, "NaN"...)
	case math.IsInf(f, 1):
		dst = append(dst, "+Inf"...)
	case math.IsInf(f, -1):
		dst = append(dst, "-Inf"...)
	default:
		dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	return append(dst, '"', ']')
}

// appendTimestamp appends a millisecond timestamp as seconds: 1435781451.781,
// 12 (no fraction when whole), -0.5.
func appendTimestamp(dst []byte, t int64) []byte {
	u := uint64(t)
	if t < 0 {
		dst = append(dst, '-')
		u = -u
	}
	dst = strconv.AppendUint(dst, u/1000, 10)
	if frac := u % 1000; frac != 0 {
		dst = append(dst, '.')
		if frac < 100 {
			dst = append(dst, '0')
		}
		if frac < 10 {
			dst = append(dst, '0')
		}
		dst = strconv.AppendUint(dst, frac, 10)
	}
	return dst
}

// appendLabels appends a label set as a JSON object, in label order.
func appendLabels(dst []byte, ls labels.Labels) []byte {
	dst = append(dst, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, l.Name)
		dst = append(dst, ':')
		dst = appendString(dst, l.Value)
	})
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json does
// (invalid UTF-8 becomes U+FFFD; <, > and & are escaped for HTML safety).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
