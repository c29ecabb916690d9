package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
)

// DefaultAddr is the address `eventmetrics serve` listens on: the loopback
// interface only.
const DefaultAddr = "127.0.0.1:9470"

// Options configure a Server. The zero value of every field means its
// default.
type Options struct {
	// BearerToken, when set, is required of every request as
	// "Authorization: Bearer TOKEN" (401 otherwise). Default: no auth.
	BearerToken string
	// CORSOrigins are the origins allowed to call the API from a browser
	// ("*" for any). Default: none (no CORS headers are sent).
	CORSOrigins []string

	// MaxBodyBytes bounds a request body as sent (default 16 MiB; 413 past it).
	MaxBodyBytes int64
	// MaxDecodedBytes bounds a request body after decompression (default
	// 64 MiB), checked before decompressing where the format states the
	// size (snappy) and while decompressing otherwise (gzip).
	MaxDecodedBytes int64
	// MaxPointsPerRequest bounds the points of one write (default 500,000;
	// at most 1,048,575 so that a batch is one log record).
	MaxPointsPerRequest int
	// MaxSeriesPerRequest bounds the distinct series of one write (default
	// 50,000): a bound on how many series one request can create.
	MaxSeriesPerRequest int
	// MaxHeaderBytes bounds the request headers (default 64 KiB; 431 past it).
	MaxHeaderBytes int
	// MaxConcurrentWrites bounds the writes decoded and written at once
	// (default 8): with MaxDecodedBytes it bounds the memory of decoding.
	// Others wait. A body is read before its request takes a slot, so a
	// slow sender holds none.
	MaxConcurrentWrites int
	// MaxQueryPoints bounds the points a "points" query returns (default
	// 10,000,000).
	MaxQueryPoints int
	// MaxConcurrentQueries bounds the queries run at once (default 4):
	// exact percentiles and point listings hold what they select. Others
	// wait.
	MaxConcurrentQueries int

	// ReadHeaderTimeout (default 10s), ReadTimeout (the whole request,
	// body included; default 60s), WriteTimeout (default 120s) and
	// IdleTimeout (default 120s) are those of http.Server.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration

	// DedupWindow is how long the ids of acknowledged batches are
	// remembered (default 1h); DedupMax bounds how many (default 1,000,000,
	// about 40 MB). A writer must not retry a batch after DedupWindow
	// (package client gives up after 10 minutes by default).
	DedupWindow time.Duration
	DedupMax    int

	// Logger receives the server's log (default: slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validate reports the first invalid field.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	switch {
	case o.MaxBodyBytes < 0, o.MaxDecodedBytes < 0, o.MaxPointsPerRequest < 0, o.MaxSeriesPerRequest < 0,
		o.MaxHeaderBytes < 0, o.MaxConcurrentWrites < 0, o.MaxQueryPoints < 0, o.MaxConcurrentQueries < 0, o.DedupMax < 0:
		return errors.New("server: options: a limit is negative")
	case o.MaxPointsPerRequest > maxPointsPerRecord:
		return fmt.Errorf("server: options: MaxPointsPerRequest %d is above %d", o.MaxPointsPerRequest, maxPointsPerRecord)
	case o.ReadHeaderTimeout < 0, o.ReadTimeout < 0, o.WriteTimeout < 0, o.IdleTimeout < 0, o.DedupWindow < 0:
		return errors.New("server: options: a duration is negative")
	}
	return nil
}

// maxPointsPerRecord keeps a batch and its id marker in one engine log
// record (engine.Append writes up to 2^20 points per record).
const maxPointsPerRecord = 1<<20 - 1

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	def := func(p *int64, v int64) {
		if *p == 0 {
			*p = v
		}
	}
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&r.MaxBodyBytes, 16<<20)
	def(&r.MaxDecodedBytes, 64<<20)
	defInt(&r.MaxPointsPerRequest, 500_000)
	defInt(&r.MaxSeriesPerRequest, 50_000)
	defInt(&r.MaxHeaderBytes, 64<<10)
	defInt(&r.MaxConcurrentWrites, 8)
	defInt(&r.MaxQueryPoints, 10_000_000)
	defInt(&r.MaxConcurrentQueries, 4)
	defInt(&r.DedupMax, 1_000_000)
	defDur(&r.ReadHeaderTimeout, 10*time.Second)
	defDur(&r.ReadTimeout, 60*time.Second)
	defDur(&r.WriteTimeout, 120*time.Second)
	defDur(&r.IdleTimeout, 120*time.Second)
	defDur(&r.DedupWindow, time.Hour)
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

// Stats are the server's counters since New. The integrator exposes them
// on /metrics through the instrumentation package.
type Stats struct {
	Requests            uint64 `json:"requests"`             // requests answered
	ClientErrors        uint64 `json:"client_errors"`        // answers with a 4xx status
	ServerErrors        uint64 `json:"server_errors"`        // answers with a 5xx status
	PointsAccepted      uint64 `json:"points_accepted"`      // points written (acknowledged)
	PointsRejected      uint64 `json:"points_rejected"`      // points refused (invalid, reported per point)
	BatchesAccepted     uint64 `json:"batches_accepted"`     // write requests acknowledged
	BatchesDeduplicated uint64 `json:"batches_deduplicated"` // retried batches recognized and not written again
	BytesReceived       uint64 `json:"bytes_received"`       // request body bytes as sent
	BytesDecoded        uint64 `json:"bytes_decoded"`        // request body bytes after decompression
	InFlight            int64  `json:"in_flight"`            // requests being served now
	DedupKeys           int    `json:"dedup_keys"`           // batch ids remembered now
}

// Server serves the HTTP API over one engine.DB (see the package doc). It
// is an http.Handler; Serve runs it on a listener with the limits of
// Options.
type Server struct {
	db      *engine.DB
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	dedup   *dedup
	writes  chan struct{} // semaphore of MaxConcurrentWrites
	queries chan struct{} // semaphore of MaxConcurrentQueries
	incs    incTotals
	err     error // from loading the batch ids: writes fail with it

	markerMu     sync.Mutex
	markerSeries *engine.Series // guarded by markerMu

	stats struct {
		requests, clientErrors, serverErrors atomic.Uint64
		pointsAccepted, pointsRejected       atomic.Uint64
		batchesAccepted, batchesDeduplicated atomic.Uint64
		bytesReceived, bytesDecoded          atomic.Uint64
		inFlight                             atomic.Int64
	}

	mu struct {
		sync.Mutex
		srv      *http.Server
		shutdown bool
	}
}

// New returns a server over db. It reads the batch ids acknowledged within
// Options.DedupWindow from db; if that fails, Err reports it, Serve returns
// it and writes are refused (503). Invalid options are reported the same
// way. The server does not own db: the caller closes it after Shutdown.
func New(db *engine.DB, opts Options) *Server {
	s := &Server{db: db, opts: opts.withDefaults()}
	s.log = s.opts.Logger
	s.err = opts.Validate()
	s.dedup = newDedup(s.opts.DedupWindow, s.opts.DedupMax)
	s.writes = make(chan struct{}, s.opts.MaxConcurrentWrites)
	s.queries = make(chan struct{}, s.opts.MaxConcurrentQueries)
	s.incs.totals = make(map[uint64]float64)
	if s.err == nil {
		// The batch-id series is created first, so that a series budget
		// (engine.Options.MaxSeries) filled by other series cannot lock
		// it out later.
		if _, err := s.marker(); err != nil {
			s.err = fmt.Errorf("server: %w", err)
		} else if n, err := s.dedup.load(db, s.opts.Now()); err != nil {
			s.err = err
		} else if n > 0 {
			s.log.Info("eventmetrics server: remembered batch ids", "count", n)
		}
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

// Err reports why the server cannot accept writes (nil when it can).
func (s *Server) Err() error { return s.err }

// Handle mounts h at pattern (a Go 1.22 http.ServeMux pattern, methods
// allowed: "GET /api/v1/query", "/"), behind the same auth, CORS and
// accounting as the server's own routes. More specific patterns win, so
// "/" for a dashboard does not shadow the API.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.stats.inFlight.Add(1)
	defer s.stats.inFlight.Add(-1)
	rw := &statusWriter{ResponseWriter: w}
	defer s.count(rw)
	if len(s.opts.CORSOrigins) > 0 && s.cors(rw, r) {
		return
	}
	if s.opts.BearerToken != "" && !s.authorized(r) {
		rw.Header().Set("WWW-Authenticate", `Bearer realm="eventmetrics"`)
		writeError(rw, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	s.mux.ServeHTTP(rw, r)
}

func (s *Server) count(rw *statusWriter) {
	s.stats.requests.Add(1)
	switch {
	case rw.status >= 500:
		s.stats.serverErrors.Add(1)
	case rw.status >= 400:
		s.stats.clientErrors.Add(1)
	}
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.BearerToken)) == 1
}

// cors sets the CORS headers for an allowed origin and answers preflight
// requests (it reports true when it answered).
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	if !slices.Contains(s.opts.CORSOrigins, "*") && !slices.Contains(s.opts.CORSOrigins, origin) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, "+BatchIDHeader)
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:            s.stats.requests.Load(),
		ClientErrors:        s.stats.clientErrors.Load(),
		ServerErrors:        s.stats.serverErrors.Load(),
		PointsAccepted:      s.stats.pointsAccepted.Load(),
		PointsRejected:      s.stats.pointsRejected.Load(),
		BatchesAccepted:     s.stats.batchesAccepted.Load(),
		BatchesDeduplicated: s.stats.batchesDeduplicated.Load(),
		BytesReceived:       s.stats.bytesReceived.Load(),
		BytesDecoded:        s.stats.bytesDecoded.Load(),
		InFlight:            s.stats.inFlight.Load(),
		DedupKeys:           s.dedup.size(),
	}
}

// Serve accepts connections on ln until Shutdown, with the timeouts and
// header limit of Options. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if s.err != nil {
		ln.Close()
		return s.err
	}
	s.mu.Lock()
	if s.mu.shutdown {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	if s.mu.srv != nil {
		s.mu.Unlock()
		ln.Close()
		return errors.New("server: Serve called twice")
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.srv = srv
	s.mu.Unlock()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ListenAndServe listens on addr (DefaultAddr when empty) and serves.
func (s *Server) ListenAndServe(addr string) error {
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return s.Serve(ln)
}

// Shutdown stops accepting connections, waits for the requests in flight
// to finish (until ctx is done), then syncs the store. Every write
// acknowledged before is durable; the caller then closes the DB.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.mu.shutdown = true
	srv := s.mu.srv
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
	}
	if serr := s.db.Sync(); serr != nil && !errors.Is(serr, engine.ErrClosed) {
		err = errors.Join(err, fmt.Errorf("server: sync: %w", serr))
	}
	return err
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
