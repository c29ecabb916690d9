package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// BatchIDHeader carries a batch id on any write endpoint (the JSON body's
// "batch_id" field does the same for /em/v1/ingest). A batch whose id the
// server acknowledged within Options.DedupWindow is not written again.
const BatchIDHeader = "EventMetrics-Batch-Id"

// maxBatchIDLen bounds a batch id.
const maxBatchIDLen = 256

// maxReportedErrors bounds the per-point errors in one answer.
const maxReportedErrors = 100

// IngestRequest is the body of POST /em/v1/ingest.
type IngestRequest struct {
	// BatchID, when set, makes the write idempotent: a retry with the
	// same id within the server's DedupWindow is acknowledged without
	// being written again.
	BatchID string            `json:"batch_id,omitempty"`
	Points  []json.RawMessage `json:"points"`
}

// Point is one point of an IngestRequest.
type Point struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Value is the observation, or the delta of an increment. NaN, +Inf
	// and -Inf are written as strings.
	Value *Float `json:"value"`
	// Timestamp is the event time (Unix ns or RFC 3339); absent means the
	// server's now. Increments are always stamped now.
	Timestamp *Time `json:"timestamp,omitempty"`
	// Op is "observe" (the default) or "increment" (Value is added to the
	// series' running total and the total is stored, as DB.Increment).
	Op string `json:"op,omitempty"`
}

// IngestResponse answers a write.
type IngestResponse struct {
	Accepted  int          `json:"accepted"`
	Rejected  int          `json:"rejected"`
	Duplicate bool         `json:"duplicate,omitempty"` // the batch id was acknowledged before: nothing written
	Errors    []PointError `json:"errors,omitempty"`    // the first 100 rejections
}

// PointError says why one point was rejected.
type PointError struct {
	Index int    `json:"index"` // the point's position in the request (remote write: the series')
	Error string `json:"error"`
}

// httpError is an answer with a status other than 200.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		writeError(w, he.status, he.msg)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "request abandoned: "+err.Error())
	default:
		s.log.Error("eventmetrics server: write failed", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// acquire takes a slot of MaxConcurrentWrites.
func (s *Server) acquire(ctx context.Context) error {
	select {
	case s.writes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) release() { <-s.writes }

// readRaw reads the request body as sent, within MaxBodyBytes. It runs
// before a write slot is taken, so that clients sending slowly (bounded by
// ReadTimeout) do not hold up the others' writes.
func (s *Server) readRaw(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	s.stats.bytesReceived.Add(uint64(len(raw)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", s.opts.MaxBodyBytes)
		}
		return nil, errorf(http.StatusBadRequest, "read request body: %v", err)
	}
	return raw, nil
}

// readBody reads the body (readRaw), takes a write slot (the caller
// releases it when err is nil) and decompresses the body as its
// Content-Encoding says (identity, gzip or snappy; forceSnappy for remote
// write, which is always snappy), within MaxDecodedBytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, forceSnappy bool) ([]byte, error) {
	raw, err := s.readRaw(w, r)
	if err != nil {
		return nil, err
	}
	if err := s.acquire(r.Context()); err != nil {
		return nil, err
	}
	body, err := s.decodeBody(r, raw, forceSnappy)
	if err != nil {
		s.release()
		return nil, err
	}
	return body, nil
}

func (s *Server) decodeBody(r *http.Request, raw []byte, forceSnappy bool) ([]byte, error) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if forceSnappy && enc == "" {
		enc = "snappy"
	}
	var body []byte
	switch enc {
	case "", "identity":
		body = raw
	case "snappy":
		n, err := snappy.DecodedLen(raw)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "bad snappy body: %v", err)
		}
		if int64(n) > s.opts.MaxDecodedBytes {
			return nil, errorf(http.StatusRequestEntityTooLarge, "decompressed body would be %d bytes, more than %d", n, s.opts.MaxDecodedBytes)
		}
		body, err = snappy.Decode(nil, raw)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "bad snappy body: %v", err)
		}
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "bad gzip body: %v", err)
		}
		body, err = io.ReadAll(io.LimitReader(zr, s.opts.MaxDecodedBytes+1))
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "bad gzip body: %v", err)
		}
		if int64(len(body)) > s.opts.MaxDecodedBytes {
			return nil, errorf(http.StatusRequestEntityTooLarge, "decompressed body is more than %d bytes", s.opts.MaxDecodedBytes)
		}
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q (identity, gzip or snappy)", enc)
	}
	s.stats.bytesDecoded.Add(uint64(len(body)))
	return body, nil
}

// write is one write being prepared: resolved points, increments and
// per-point errors.
type write struct {
	batch    engine.Batch
	incs     []incPoint
	accepted int
	rejected int
	errs     []PointError
	series   map[uint64]struct{} // hashes of the distinct series seen
}

type incPoint struct {
	s     *engine.Series
	delta float64
}

func (wr *write) reject(i int, err error) {
	wr.rejected++
	if len(wr.errs) < maxReportedErrors {
		wr.errs = append(wr.errs, PointError{Index: i, Error: err.Error()})
	}
}

// rejectOrAbort handles an error resolving the series of point i: bad
// input (engine.ErrInvalid) and the series budget (engine.ErrSeriesLimit)
// reject the point alone; anything else (the store closing or failed, an
// I/O error) aborts the request with a 5xx, which the writer retries.
func rejectOrAbort(wr *write, i int, err error) error {
	if errors.Is(err, engine.ErrInvalid) || errors.Is(err, engine.ErrSeriesLimit) {
		wr.reject(i, err)
		return nil
	}
	if errors.Is(err, engine.ErrClosed) {
		return errorf(http.StatusServiceUnavailable, "store is closed: server shutting down")
	}
	return fmt.Errorf("resolve series: %w", err)
}

// seriesHash hashes a name and label set independently of the map's order.
func seriesHash(name string, ls map[string]string) uint64 {
	h := xxhash.Sum64String(name)
	for k, v := range ls {
		if v == "" {
			continue
		}
		h += xxhash.Sum64String(k) ^ (xxhash.Sum64String(v) * 0x9E3779B97F4A7C15)
	}
	return h
}

// countSeries notes a series and fails past MaxSeriesPerRequest.
func (s *Server) countSeries(wr *write, h uint64) error {
	if wr.series == nil {
		wr.series = make(map[uint64]struct{})
	}
	wr.series[h] = struct{}{}
	if len(wr.series) > s.opts.MaxSeriesPerRequest {
		return errorf(http.StatusRequestEntityTooLarge, "request has more than %d distinct series", s.opts.MaxSeriesPerRequest)
	}
	return nil
}

func batchIDOf(r *http.Request, body string) (string, error) {
	id := r.Header.Get(BatchIDHeader)
	if body != "" {
		if id != "" && id != body {
			return "", errorf(http.StatusBadRequest, "batch id in the %s header differs from the body's batch_id", BatchIDHeader)
		}
		id = body
	}
	if len(id) > maxBatchIDLen {
		return "", errorf(http.StatusBadRequest, "batch id is longer than %d bytes", maxBatchIDLen)
	}
	return id, nil
}

// answerWrite answers a write request with its IngestResponse (422 when
// every point was rejected), or with its error.
func (s *Server) answerWrite(w http.ResponseWriter, resp *IngestResponse, err error) {
	if err != nil {
		s.fail(w, err)
		return
	}
	status := http.StatusOK
	if resp.Accepted == 0 && resp.Rejected > 0 {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, resp)
}

// handleIngest is POST /em/v1/ingest.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	resp, err := s.ingestJSON(w, r)
	s.answerWrite(w, resp, err)
}

func (s *Server) ingestJSON(w http.ResponseWriter, r *http.Request) (*IngestResponse, error) {
	if s.err != nil {
		return nil, errorf(http.StatusServiceUnavailable, "server cannot accept writes: %v", s.err)
	}
	body, err := s.readBody(w, r, false)
	if err != nil {
		return nil, err
	}
	defer s.release()
	now := s.opts.Now().UnixNano()
	var wr write
	cache := make(map[string]*engine.Series) // name and labels as sent -> series
	var key []byte
	ls := make(map[string]string, 16)
	bodyID, err := parseIngest(body, s.opts.MaxPointsPerRequest, func(i int, p *rawPoint) error {
		if p.err != nil {
			wr.reject(i, p.err)
			return nil
		}
		if !p.hasValue {
			wr.reject(i, errors.New("point has no value"))
			return nil
		}
		key = append(append(append(key[:0], p.name...), 0xff), p.labels...)
		ser := cache[string(key)]
		if ser == nil {
			clear(ls)
			if p.labels != nil {
				if err := labelsInto(p.labels, ls); err != nil {
					wr.reject(i, fmt.Errorf("malformed point: labels: %v", err))
					return nil
				}
			}
			if err := s.countSeries(&wr, seriesHash(string(p.name), ls)); err != nil {
				return err
			}
			var err error
			if ser, err = s.db.Series(string(p.name), ls); err != nil {
				return rejectOrAbort(&wr, i, err)
			}
			cache[string(key)] = ser
		}
		switch {
		case !p.increment:
			t := now
			if p.hasTS {
				t = p.ts
			}
			wr.batch.Add(ser, t, p.value)
		case p.hasTS:
			wr.reject(i, errors.New("an increment takes no timestamp: it is stamped now"))
			return nil
		case math.IsNaN(p.value) || math.IsInf(p.value, 0) || p.value < 0:
			wr.reject(i, fmt.Errorf("increment of %s by %v: a counter increment must be finite and >= 0", ser, p.value))
			return nil
		default:
			wr.incs = append(wr.incs, incPoint{ser, p.value})
		}
		wr.accepted++
		return nil
	})
	var he *httpError
	switch {
	case errors.Is(err, errTooManyPoints):
		return nil, errorf(http.StatusRequestEntityTooLarge, "request has more than %d points", s.opts.MaxPointsPerRequest)
	case errors.As(err, &he):
		return nil, err
	case err != nil:
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	id, err := batchIDOf(r, bodyID)
	if err != nil {
		return nil, err
	}
	return s.commit(r.Context(), &wr, id)
}

// commit writes the accepted points, the increments and the batch's id
// marker in one engine log record, syncs, and remembers the id.
func (s *Server) commit(ctx context.Context, wr *write, id string) (*IngestResponse, error) {
	return s.commitKey(ctx, wr, id != "", batchKey(keyBatchID, []byte(id)))
}

func (s *Server) commitKey(ctx context.Context, wr *write, hasKey bool, key uint64) (*IngestResponse, error) {
	resp := &IngestResponse{Accepted: wr.accepted, Rejected: wr.rejected, Errors: wr.errs}
	s.stats.pointsRejected.Add(uint64(wr.rejected))
	if wr.accepted == 0 {
		return resp, nil
	}
	if hasKey {
		dup, err := s.dedup.begin(ctx, key)
		if err != nil {
			return nil, err
		}
		if dup {
			s.stats.batchesDeduplicated.Add(1)
			return &IngestResponse{Duplicate: true}, nil
		}
	}
	now := s.opts.Now().UnixNano()
	var err error
	if hasKey {
		acked := false
		defer func() { s.dedup.end(key, acked, now) }()
		err = s.appendDurable(wr, hasKey, key, now)
		acked = err == nil
	} else {
		err = s.appendDurable(wr, hasKey, key, now)
	}
	if err != nil {
		return nil, err
	}
	s.stats.pointsAccepted.Add(uint64(wr.accepted))
	s.stats.batchesAccepted.Add(1)
	return resp, nil
}

func (s *Server) appendDurable(wr *write, hasKey bool, key uint64, now int64) error {
	var totals map[uint64]float64
	if len(wr.incs) > 0 {
		// Increments are turned into running totals here, so that they go
		// into the same log record as the rest (see incTotals).
		s.incs.mu.Lock()
		defer s.incs.mu.Unlock()
		totals = make(map[uint64]float64, len(wr.incs))
		for _, in := range wr.incs {
			t, ok := totals[in.s.ID()]
			if !ok {
				var err error
				if t, err = s.incs.totalLocked(s.db, in.s); err != nil {
					return err
				}
			}
			t += in.delta
			totals[in.s.ID()] = t
			wr.batch.Add(in.s, now, t)
		}
	}
	if hasKey {
		m, err := s.marker()
		if err != nil {
			return err
		}
		wr.batch.Add(m, now, math.Float64frombits(key))
	}
	err := s.db.Append(&wr.batch)
	if err == nil {
		err = s.db.Sync()
	}
	if len(wr.incs) > 0 {
		if err != nil {
			clear(s.incs.totals) // reload from the store: some may be written
		} else {
			for id, t := range totals {
				s.incs.totals[id] = t
			}
		}
	}
	if err != nil {
		if errors.Is(err, engine.ErrClosed) {
			return errorf(http.StatusServiceUnavailable, "store is closed: server shutting down")
		}
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// marker returns the series of batch ids (resolved in New; an error is
// tried again by the next write).
func (s *Server) marker() (*engine.Series, error) {
	s.markerMu.Lock()
	defer s.markerMu.Unlock()
	if s.markerSeries == nil {
		ser, err := s.db.Series(BatchSeries, nil)
		if err != nil {
			return nil, fmt.Errorf("batch id series: %w", err)
		}
		s.markerSeries = ser
	}
	return s.markerSeries, nil
}

// incTotals holds the running totals of the counters incremented through
// the server. The server is the only writer of its DB, so the total it
// computed last is the stored one; a counter not yet seen is loaded from
// the store (the value with the greatest timestamp, as DB.Increment does).
type incTotals struct {
	mu     sync.Mutex
	totals map[uint64]float64 // series id -> total
}

func (it *incTotals) totalLocked(db *engine.DB, ser *engine.Series) (float64, error) {
	if t, ok := it.totals[ser.ID()]; ok {
		return t, nil
	}
	ls := ser.Labels()
	ms := make([]query.Matcher, len(ls))
	for i, l := range ls {
		ms[i] = query.Eq(l.Name, l.Value)
	}
	rows, err := db.Query(ser.Name(), ms...).BySeries().AggregateBy(query.Last)
	if err != nil {
		return 0, fmt.Errorf("load counter %s: %w", ser, err)
	}
	total := 0.0
	for _, row := range rows {
		if len(row.Labels) != len(ls)+1 { // BySeries adds __name__
			continue
		}
		if len(row.Values) > 0 && len(row.Values[0]) > 0 && row.Values[0][0] == row.Values[0][0] {
			total = row.Values[0][0]
		}
	}
	it.totals[ser.ID()] = total
	return total, nil
}

// handleRemoteWrite is POST /api/v1/write: Prometheus remote write 1.0
// (protobuf, snappy). A retried request (same samples) is recognized by
// the hash of its body and not written twice.
func (s *Server) handleRemoteWrite(w http.ResponseWriter, r *http.Request) {
	resp, err := s.remoteWrite(w, r)
	if err != nil {
		s.fail(w, err)
		return
	}
	if resp.Rejected > 0 {
		msg := fmt.Sprintf("%d samples rejected (%d accepted)", resp.Rejected, resp.Accepted)
		for _, e := range resp.Errors[:min(len(resp.Errors), 5)] {
			msg += fmt.Sprintf("; series %d: %s", e.Index, e.Error)
		}
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) remoteWrite(w http.ResponseWriter, r *http.Request) (*IngestResponse, error) {
	if s.err != nil {
		return nil, errorf(http.StatusServiceUnavailable, "server cannot accept writes: %v", s.err)
	}
	if ct := r.Header.Get("Content-Type"); strings.Contains(ct, "io.prometheus.write.v2") {
		return nil, errorf(http.StatusUnsupportedMediaType, "remote write 2.0 is not supported: send remote write 1.0 (%s)", ct)
	}
	body, err := s.readBody(w, r, true)
	if err != nil {
		return nil, err
	}
	defer s.release()
	var req prompb.WriteRequest
	if err := req.Unmarshal(body); err != nil {
		return nil, errorf(http.StatusBadRequest, "malformed remote-write protobuf: %v", err)
	}
	if len(req.Timeseries) > s.opts.MaxSeriesPerRequest {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request has %d series, more than %d", len(req.Timeseries), s.opts.MaxSeriesPerRequest)
	}
	n := 0
	for i := range req.Timeseries {
		n += len(req.Timeseries[i].Samples)
	}
	if n > s.opts.MaxPointsPerRequest {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request has %d samples, more than %d", n, s.opts.MaxPointsPerRequest)
	}
	var wr write
	ls := make(map[string]string, 16)
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		if len(ts.Histograms) > 0 {
			wr.reject(i, fmt.Errorf("%d native histogram samples: not supported", len(ts.Histograms)))
		}
		if len(ts.Samples) == 0 {
			continue
		}
		clear(ls)
		name := ""
		for _, l := range ts.Labels {
			if l.Name == "__name__" {
				name = l.Value
			} else {
				ls[l.Name] = l.Value
			}
		}
		ser, err := s.db.Series(name, ls)
		if err != nil {
			for range ts.Samples {
				if err := rejectOrAbort(&wr, i, err); err != nil {
					return nil, err
				}
			}
			continue
		}
		for _, smp := range ts.Samples {
			if value.IsStaleNaN(smp.Value) {
				continue // a staleness marker, not an event
			}
			if smp.Timestamp > math.MaxInt64/int64(time.Millisecond) || smp.Timestamp < math.MinInt64/int64(time.Millisecond) {
				wr.reject(i, fmt.Errorf("timestamp %d ms is out of range", smp.Timestamp))
				continue
			}
			wr.batch.Add(ser, smp.Timestamp*int64(time.Millisecond), smp.Value)
			wr.accepted++
		}
	}
	if id, err := batchIDOf(r, ""); err != nil {
		return nil, err
	} else if id != "" {
		return s.commit(r.Context(), &wr, id)
	}
	return s.commitKey(r.Context(), &wr, true, batchKey(keyRemoteWrite, body))
}

// handleImport is POST /em/v1/import and /api/v1/import/prometheus: the
// Prometheus text format, or OpenMetrics when the Content-Type says
// application/openmetrics-text. Samples without a timestamp are stamped
// with the time of the request.
func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	resp, err := s.importText(w, r)
	s.answerWrite(w, resp, err)
}

func (s *Server) importText(w http.ResponseWriter, r *http.Request) (*IngestResponse, error) {
	if s.err != nil {
		return nil, errorf(http.StatusServiceUnavailable, "server cannot accept writes: %v", s.err)
	}
	body, err := s.readBody(w, r, false)
	if err != nil {
		return nil, err
	}
	defer s.release()
	id, err := batchIDOf(r, "")
	if err != nil {
		return nil, err
	}
	wr, err := s.parseText(body, r.Header.Get("Content-Type"), s.opts.Now().UnixNano())
	if err != nil {
		return nil, err
	}
	return s.commit(r.Context(), wr, id)
}

func (s *Server) parseText(body []byte, contentType string, now int64) (*write, error) {
	var p textparse.Parser
	st := labels.NewSymbolTable()
	if strings.HasPrefix(strings.TrimSpace(strings.ToLower(contentType)), "application/openmetrics-text") {
		p = textparse.NewOpenMetricsParser(body, st)
	} else {
		p = textparse.NewPromParser(body, st, false)
	}
	var wr write
	var lbls labels.Labels
	ls := make(map[string]string, 16)
	for i := 0; ; i++ {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "parse exposition text: %v", err)
		}
		switch e {
		case textparse.EntrySeries:
		case textparse.EntryHistogram:
			return nil, errorf(http.StatusBadRequest, "native histograms are not supported")
		default:
			continue
		}
		if wr.accepted+wr.rejected >= s.opts.MaxPointsPerRequest {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request has more than %d samples", s.opts.MaxPointsPerRequest)
		}
		_, tsp, v := p.Series()
		p.Labels(&lbls)
		clear(ls)
		name := ""
		lbls.Range(func(l labels.Label) {
			if l.Name == "__name__" {
				name = l.Value
			} else {
				ls[l.Name] = l.Value
			}
		})
		if err := s.countSeries(&wr, seriesHash(name, ls)); err != nil {
			return nil, err
		}
		idx := wr.accepted + wr.rejected
		ser, err := s.db.Series(name, ls)
		if err != nil {
			if err := rejectOrAbort(&wr, idx, err); err != nil {
				return nil, err
			}
			continue
		}
		t := now
		if tsp != nil {
			if *tsp > math.MaxInt64/int64(time.Millisecond) || *tsp < math.MinInt64/int64(time.Millisecond) {
				wr.reject(idx, fmt.Errorf("timestamp %d ms is out of range", *tsp))
				continue
			}
			t = *tsp * int64(time.Millisecond)
		}
		wr.batch.Add(ser, t, v)
		wr.accepted++
	}
	return &wr, nil
}
