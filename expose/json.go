package expose

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Number is a float64 that encodes to JSON as a number, or as the strings
// "NaN", "+Inf" and "-Inf" that JSON numbers cannot express.
type Number float64

// MarshalJSON implements json.Marshaler.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// Flat returns every sample of fams as a flat map, as statvent served:
// keys are sample names with their labels in Prometheus notation
// (`http_requests_total{code="200",method="GET"}`, label values quoted and
// escaped as Go strings); histograms give _bucket{le=…}, _sum and _count,
// summaries {quantile=…}, _sum and _count.
func Flat(fams []*dto.MetricFamily) map[string]Number {
	out := make(map[string]Number)
	for _, mf := range fams {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			ls := m.GetLabel()
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[sampleKey(name, ls, "", "")] = Number(m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				out[sampleKey(name, ls, "", "")] = Number(m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				out[sampleKey(name, ls, "", "")] = Number(m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					out[sampleKey(name+"_bucket", ls, "le", fmtFloat(b.GetUpperBound()))] = Number(b.GetCumulativeCount())
				}
				out[sampleKey(name+"_sum", ls, "", "")] = Number(h.GetSampleSum())
				out[sampleKey(name+"_count", ls, "", "")] = Number(h.GetSampleCount())
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					out[sampleKey(name, ls, "quantile", fmtFloat(q.GetQuantile()))] = Number(q.GetValue())
				}
				out[sampleKey(name+"_sum", ls, "", "")] = Number(s.GetSampleSum())
				out[sampleKey(name+"_count", ls, "", "")] = Number(s.GetSampleCount())
			}
		}
	}
	return out
}

func fmtFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func sampleKey(name string, ls []*dto.LabelPair, extraName, extraValue string) string {
	if len(ls) == 0 && extraName == "" {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	n := 0
	for _, l := range ls {
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.GetValue()))
		n++
	}
	if extraName != "" {
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(extraName)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(extraValue))
	}
	b.WriteByte('}')
	return b.String()
}

// Namer maps an exposition name to a dotted name: *metrics.Registry is one.
type Namer interface {
	DottedName(promName string) string
}

// Tree returns fams as a tree by dotted name, as satella's to_json: nested
// objects, one level per part of the name (from namer when given, else the
// exposition name is one part); a leaf is a list of label sets, each an
// object of its labels and "_", the value. A histogram's "_" is
// {"count", "sum", "buckets": {le: cumulative count}}, a summary's
// {"count", "sum", "quantiles": {q: value}}.
//
// A name that is both a leaf and a prefix of another name (a.b and a.b.c)
// keeps its leaf under the key "_" of its node.
func Tree(fams []*dto.MetricFamily, namer Namer) map[string]any {
	root := map[string]any{}
	for _, mf := range fams {
		name := mf.GetName()
		if namer != nil {
			name = namer.DottedName(name)
		}
		parts := strings.Split(name, ".")
		node := root
		for _, p := range parts[:len(parts)-1] {
			node = subtree(node, p)
		}
		last := parts[len(parts)-1]
		leaf := leafOf(mf)
		if sub, ok := node[last].(map[string]any); ok {
			sub["_"] = leaf
		} else {
			node[last] = leaf
		}
	}
	return root
}

func subtree(node map[string]any, p string) map[string]any {
	switch v := node[p].(type) {
	case map[string]any:
		return v
	case nil:
		m := map[string]any{}
		node[p] = m
		return m
	default: // a leaf already there: move it under "_"
		m := map[string]any{"_": v}
		node[p] = m
		return m
	}
}

func leafOf(mf *dto.MetricFamily) []map[string]any {
	out := make([]map[string]any, 0, len(mf.GetMetric()))
	for _, m := range mf.GetMetric() {
		e := make(map[string]any, len(m.GetLabel())+1)
		for _, l := range m.GetLabel() {
			e[l.GetName()] = l.GetValue()
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			e["_"] = Number(m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			e["_"] = Number(m.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			e["_"] = Number(m.GetUntyped().GetValue())
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.GetHistogram()
			bs := map[string]Number{}
			for _, b := range h.GetBucket() {
				bs[fmtFloat(b.GetUpperBound())] = Number(b.GetCumulativeCount())
			}
			e["_"] = map[string]any{"count": h.GetSampleCount(), "sum": Number(h.GetSampleSum()), "buckets": bs}
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			qs := map[string]Number{}
			for _, q := range s.GetQuantile() {
				qs[fmtFloat(q.GetQuantile())] = Number(q.GetValue())
			}
			e["_"] = map[string]any{"count": s.GetSampleCount(), "sum": Number(s.GetSampleSum()), "quantiles": qs}
		}
		out = append(out, e)
	}
	return out
}

// JSONHandler serves g as JSON: the flat map, or the tree when tree is
// true (dotted names come from g when it is a Namer).
func JSONHandler(g Gatherer, tree bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fams, err := g.Gather()
		if err != nil {
			http.Error(w, "gather metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		var v any
		if tree {
			namer, _ := g.(Namer)
			v = Tree(fams, namer)
		} else {
			v = Flat(fams)
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			http.Error(w, "encode json: "+err.Error(), http.StatusInternalServerError)
		}
	})
}
