package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
)

// Request limits. They bound the memory and time one request may take and the
// size of what the page has to draw; a request past a limit is answered with
// 400 (or 422 when only the stored data is too large) and a message naming
// the limit.
const (
	// MaxQueryBytes bounds the query string of one request (414 past it).
	MaxQueryBytes = 16 << 10
	// MaxMatchers bounds the label matchers of one request.
	MaxMatchers = 16
	// DefaultPoints and MaxPoints are the default and the largest number of
	// points returned per series by /dashboard/api/points (after
	// downsampling).
	DefaultPoints = 1000
	MaxPoints     = 10000
	// DefaultSeries and MaxSeries are the default and the largest number of
	// series drawn by /dashboard/api/points.
	DefaultSeries = 8
	MaxSeries     = 50
	// MaxRawPoints bounds the stored points of one series that
	// /dashboard/api/points reads to downsample (8 bytes of timestamp and 8
	// of value each): past it the request is refused with 422 and asked for
	// a shorter range.
	MaxRawPoints = 4 << 20
	// MaxPercentilePoints bounds the points exact windowed percentiles hold
	// in memory (8 bytes each) when no rollups are read.
	MaxPercentilePoints = 16 << 20
	// DefaultWindows is the number of windows an automatic step aims at;
	// MaxWindows bounds the windows of any request.
	DefaultWindows = 120
	MaxWindows     = 2000
	// MaxGroups bounds the rows (groups) of a windowed request with "by".
	MaxGroups = 20
	// MaxBounds bounds the bucket bounds of a histogram.
	MaxBounds = 200
	// MaxLabelValues bounds the values listed per label.
	MaxLabelValues = 500
	// MaxLabels bounds the label names listed per request.
	MaxLabels = 200
	// RollupRange: with rollups=auto, windowed requests over a range at
	// least this long read rollups of cold data (query.UseRollups).
	RollupRange = 6 * time.Hour
)

// The page and its assets. README.md and update.sh are left out: they are
// for people building the assets, not for browsers.
//
//go:embed assets/index.html assets/app.js assets/app.css assets/uPlot.iife.min.js assets/uPlot.min.css assets/LICENSE.uPlot
var assetFS embed.FS

// Handler serves the dashboard. It is safe for concurrent use.
type Handler struct {
	db     *engine.DB
	mux    *http.ServeMux
	assets http.Handler
	// sem bounds the API requests that query the store at once: one per
	// CPU, so that a burst of page loads queues instead of thrashing.
	sem chan struct{}
}

// New returns the dashboard over db: the page at "/", its assets under
// "/dashboard/assets/" and its JSON API under "/dashboard/api/". The page
// uses relative URLs, so the handler can also be mounted under a prefix with
// http.StripPrefix. db must stay open while the handler serves.
func New(db *engine.DB) http.Handler {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h := &Handler{
		db:     db,
		mux:    http.NewServeMux(),
		assets: http.StripPrefix("/dashboard/assets/", http.FileServerFS(sub)),
		sem:    make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
	}
	h.mux.HandleFunc("/{$}", h.index)
	h.mux.HandleFunc("/dashboard/assets/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		h.assets.ServeHTTP(w, r)
	})
	h.mux.HandleFunc("/dashboard/api/metrics", h.api(h.metrics))
	h.mux.HandleFunc("/dashboard/api/labels", h.api(h.labels))
	h.mux.HandleFunc("/dashboard/api/points", h.api(h.points))
	h.mux.HandleFunc("/dashboard/api/aggregates", h.api(h.aggregates))
	h.mux.HandleFunc("/dashboard/api/percentiles", h.api(h.percentiles))
	h.mux.HandleFunc("/dashboard/api/histogram", h.api(h.histogram))
	h.mux.HandleFunc("/dashboard/api/cardinality", h.api(h.cardinality))
	h.mux.HandleFunc("/dashboard/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "unknown dashboard API endpoint %q", r.URL.Path)
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed: the dashboard is read-only (GET, HEAD)", r.Method)
		return
	}
	if len(r.URL.RawQuery) > MaxQueryBytes {
		writeError(w, http.StatusRequestURITooLong, "query string of %d bytes is over the limit of %d", len(r.URL.RawQuery), MaxQueryBytes)
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	page, err := assetFS.ReadFile("assets/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "index page: %v", err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-cache")
	// Everything the page loads comes from this handler: no request leaves
	// for another origin.
	hd.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(page)
}

// apiFunc answers one API request with a value to encode as JSON, or an
// error (an *apiError for the client's mistakes).
type apiFunc func(r *http.Request) (any, error)

// apiError is an error with its HTTP status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) error {
	return &apiError{status: http.StatusUnprocessableEntity, msg: fmt.Sprintf(format, args...)}
}

func (h *Handler) api(fn apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h.acquire(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, "request canceled while waiting for a query slot: %v", err)
			return
		}
		v, err := fn(r)
		<-h.sem
		if err != nil {
			var ae *apiError
			switch {
			case errors.As(err, &ae):
				writeError(w, ae.status, "%s", ae.msg)
			case errors.Is(err, engine.ErrClosed):
				writeError(w, http.StatusServiceUnavailable, "store is closed")
			default:
				writeError(w, http.StatusInternalServerError, "%v", err)
			}
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func (h *Handler) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	writeJSON(w, status, errorBody{Error: strings.TrimSpace(msg), Status: status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "encode response: " + err.Error(), Status: status})
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
