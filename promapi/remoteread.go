package promapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Remote read (issue 9): POST /api/v1/read answers Prometheus's remote-read
// protocol, so that a Prometheus server can use eventmetrics' history as a
// remote_read source. A request is a snappy-compressed protobuf
// prompb.ReadRequest; each query's matchers and [start, end] (ms) select
// series through the same Queryable as the PromQL engine (one sample per
// millisecond, see Querier), and the answer is a snappy-compressed
// prompb.ReadResponse of samples (the SAMPLES response type, which every
// client accepts; Prometheus servers ask for it when a source does not
// stream). Prometheus's own handler (storage/remote) would do the same but
// pulls some 790 packages into the build through its configuration and
// service discovery (cloud SDKs); the protocol itself is the few lines
// below, over prompb's generated types.

// Remote-read limits.
const (
	maxReadRequestBytes   = 8 << 20  // compressed request body
	maxReadRequestDecoded = 32 << 20 // decompressed
)

func (a *API) remoteRead(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, format string, args ...any) {
		http.Error(w, "remote read: "+fmt.Sprintf(format, args...), status)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReadRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(http.StatusRequestEntityTooLarge, "request body over %d bytes", maxReadRequestBytes)
			return
		}
		fail(http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		fail(http.StatusBadRequest, "body is not snappy-compressed: %v", err)
		return
	}
	if n > maxReadRequestDecoded {
		fail(http.StatusRequestEntityTooLarge, "request decompresses to %d bytes, over %d", n, maxReadRequestDecoded)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		fail(http.StatusBadRequest, "body is not snappy-compressed: %v", err)
		return
	}
	var req prompb.ReadRequest
	if err := req.Unmarshal(raw); err != nil {
		fail(http.StatusBadRequest, "not a ReadRequest: %v", err)
		return
	}
	if len(req.AcceptedResponseTypes) > 0 && !slices.Contains(req.AcceptedResponseTypes, prompb.ReadRequest_SAMPLES) {
		fail(http.StatusBadRequest, "only the SAMPLES response type is served; the request accepts %v", req.AcceptedResponseTypes)
		return
	}
	release, aerr := a.acquire(r.Context())
	if aerr != nil {
		fail(aerr.typ.status(), "%v", aerr.err)
		return
	}
	defer release()
	resp := prompb.ReadResponse{Results: make([]*prompb.QueryResult, len(req.Queries))}
	samples := 0
	for i, q := range req.Queries {
		res, err := a.readQuery(r, q, &samples)
		if err != nil {
			status := http.StatusBadRequest
			switch {
			case errors.Is(err, ErrTooManyPoints):
				status = http.StatusUnprocessableEntity
			case errors.Is(err, errReadInternal):
				status = http.StatusInternalServerError
			}
			fail(status, "query %d: %v", i, err)
			return
		}
		resp.Results[i] = res
	}
	out, err := resp.Marshal()
	if err != nil {
		fail(http.StatusInternalServerError, "encoding the response: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Header().Set("Content-Encoding", "snappy")
	w.Write(snappy.Encode(nil, out))
}

var errReadInternal = errors.New("reading the store")

// readQuery answers one query of a read request, counting its samples
// against the API's MaxSamples.
func (a *API) readQuery(r *http.Request, q *prompb.Query, samples *int) (*prompb.QueryResult, error) {
	if q == nil {
		return &prompb.QueryResult{}, nil
	}
	if q.StartTimestampMs > q.EndTimestampMs {
		return nil, fmt.Errorf("start %d after end %d", q.StartTimestampMs, q.EndTimestampMs)
	}
	ms := make([]*labels.Matcher, 0, len(q.Matchers))
	for _, m := range q.Matchers {
		if m == nil {
			continue
		}
		var t labels.MatchType
		switch m.Type {
		case prompb.LabelMatcher_EQ:
			t = labels.MatchEqual
		case prompb.LabelMatcher_NEQ:
			t = labels.MatchNotEqual
		case prompb.LabelMatcher_RE:
			t = labels.MatchRegexp
		case prompb.LabelMatcher_NRE:
			t = labels.MatchNotRegexp
		default:
			return nil, fmt.Errorf("matcher type %d is unknown", m.Type)
		}
		lm, err := labels.NewMatcher(t, m.Name, m.Value)
		if err != nil {
			return nil, fmt.Errorf("matcher %s: %w", m.Name, err)
		}
		ms = append(ms, lm)
	}
	if len(ms) == 0 {
		return nil, errors.New("no matchers: a query must select series")
	}
	qr, err := a.queryable.Querier(q.StartTimestampMs, q.EndTimestampMs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errReadInternal, err)
	}
	defer qr.Close()
	hints := &storage.SelectHints{Start: q.StartTimestampMs, End: q.EndTimestampMs}
	ss := qr.Select(r.Context(), false, hints, ms...)
	res := &prompb.QueryResult{}
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		ts := &prompb.TimeSeries{}
		s.Labels().Range(func(l labels.Label) {
			ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value})
		})
		it = s.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			if *samples++; *samples > a.opts.MaxSamples {
				return nil, fmt.Errorf("more than %d samples (Options.MaxSamples)", a.opts.MaxSamples)
			}
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t, Value: v})
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", errReadInternal, err)
		}
		res.Timeseries = append(res.Timeseries, ts)
	}
	if err := ss.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errReadInternal, err)
	}
	return res, nil
}
