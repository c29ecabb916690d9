package expose

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Gatherer yields the metric families to expose: *metrics.Registry is one.
type Gatherer interface {
	Gather() ([]*dto.MetricFamily, error)
}

// HandlerOptions configure Handler. A nil *HandlerOptions means defaults.
type HandlerOptions struct {
	// ContinueOnError serves the families gathered when Gather also
	// returns an error (a failing custom collector), instead of answering
	// 500.
	ContinueOnError bool
	// DisableOpenMetrics serves the text format 0.0.4 only.
	DisableOpenMetrics bool
	// DisableCompression never gzips the response.
	DisableCompression bool
}

// Formats served, in order of preference for an Accept header that allows
// any: the text format first, as client_golang does.
var (
	textOnly   = []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain)}
	withOpenMx = []expfmt.Format{
		expfmt.NewFormat(expfmt.TypeTextPlain),
		expfmt.FmtOpenMetrics_1_0_0,
		expfmt.FmtOpenMetrics_0_0_1,
	}
)

// Handler returns an http.Handler that serves g in the Prometheus text
// format 0.0.4 or OpenMetrics 1.0, as the request's Accept header asks.
func Handler(g Gatherer, opts *HandlerOptions) http.Handler {
	var o HandlerOptions
	if opts != nil {
		o = *opts
	}
	formats := withOpenMx
	if o.DisableOpenMetrics {
		formats = textOnly
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		fams, err := g.Gather()
		if err != nil && (!o.ContinueOnError || len(fams) == 0) {
			http.Error(w, "gather metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		format := expfmt.NegotiateAccept(r.Header, formats...)
		buf := bufPool.Get().(*bytes.Buffer)
		defer bufPool.Put(buf)
		buf.Reset()
		if err := Encode(buf, format, fams); err != nil {
			http.Error(w, "encode metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", string(format))
		var out io.Writer = w
		if !o.DisableCompression && acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			h.Add("Vary", "Accept-Encoding")
			gz := gzip.NewWriter(w)
			defer gz.Close()
			out = gz
		} else {
			h.Set("Content-Length", fmt.Sprint(buf.Len()))
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = out.Write(buf.Bytes())
	})
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// Encode writes fams to w in format (one of expfmt's), closing the
// encoding (OpenMetrics' "# EOF").
func Encode(w io.Writer, format expfmt.Format, fams []*dto.MetricFamily) error {
	bw := bufio.NewWriter(w)
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range fams {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("encode family %s: %w", mf.GetName(), err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteText writes the text format 0.0.4 of g to w.
func WriteText(w io.Writer, g Gatherer) error {
	fams, err := g.Gather()
	if err != nil {
		return err
	}
	return Encode(w, expfmt.NewFormat(expfmt.TypeTextPlain), fams)
}
