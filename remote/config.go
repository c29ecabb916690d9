package remote

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Shape says what the sender exports for each point.
type Shape int

const (
	// Raw exports each point as one sample (milliseconds; the last point of
	// a series in one millisecond wins). For gauge-like data written in
	// order.
	Raw Shape = iota
	// Aggregated exports, per series and fixed window, the count, sum,
	// cumulative buckets and exact quantiles of its points (Config.Aggregation).
	Aggregated
)

func (s Shape) String() string {
	switch s {
	case Raw:
		return "raw"
	case Aggregated:
		return "aggregated"
	}
	return fmt.Sprintf("Shape(%d)", int(s))
}

// Aggregation configures the Aggregated shape.
type Aggregation struct {
	// Window is the width of the fixed windows [k·Window, (k+1)·Window)
	// (default 10s; a whole number of milliseconds).
	Window time.Duration
	// Grace is how long after a window's end (in event time: the greatest
	// timestamp seen) its late points are still included (default 0). Later
	// ones are counted (late points) and not exported.
	Grace time.Duration
	// Buckets are the upper bounds of the histogram buckets, ascending,
	// finite; +Inf is always added. Default: none (only +Inf).
	Buckets []float64
	// Quantiles are exported exactly over each window's points (each in
	// [0, 1]). Default: none.
	Quantiles []float64
	// IdleClose: when no point arrives for this long (default: Window +
	// Grace, at least 1s), the event-time watermark moves up to the wall
	// clock, so the last windows close when writing stops.
	IdleClose time.Duration
}

// Config configures a Sender. The zero value of every field means its
// default; URL is required.
type Config struct {
	// URL of the receiver's remote-write endpoint, e.g.
	// http://mimir:8080/api/v1/push.
	URL string
	// Headers are added to every request (e.g. X-Scope-OrgID for Mimir).
	Headers map[string]string
	// BasicAuth, when Username is set, authenticates every request.
	BasicAuth struct{ Username, Password string }
	// BearerToken, when set, is sent as "Authorization: Bearer <token>".
	BearerToken string
	// Timeout of one request (default 30s).
	Timeout time.Duration
	// Shards is the number of parallel senders (default 4). A series always
	// goes through the same shard, so its samples arrive in order.
	Shards int
	// BatchSize is the most samples in one request (default 2000).
	BatchSize int
	// BatchWait is the longest a shard waits to fill a batch (default
	// 50ms). Raw: also how long a series' last point is held back, once the
	// sender has caught up with the log, for a later point of the same
	// millisecond to replace it.
	BatchWait time.Duration
	// QueueCapacity bounds the samples held in memory between the log and
	// the receiver (default 100000). When full, the sender stops reading
	// the log (backpressure onto the feed, whose cursor holds the log):
	// nothing is dropped.
	QueueCapacity int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries (defaults 50ms and 5s). A Retry-After header is honoured, up
	// to one minute.
	MinBackoff, MaxBackoff time.Duration
	// Selectors choose the exported series, in Prometheus syntax
	// (`{__name__=~"http_.*", env="prod"}`, `up`); a series matching any of
	// them is exported. Empty: every series.
	Selectors []string
	// ExternalLabels are added to every exported series (a series' own
	// label of the same name wins).
	ExternalLabels map[string]string
	// Shape of the export (default Raw), and Aggregation for Aggregated.
	Shape       Shape
	Aggregation Aggregation
	// Feed is the name of the engine feed holding the sender's cursor
	// (default "remote"). Two senders of one DB need different names.
	Feed string
	// CommitEvery is how often the cursor is made durable (default 1s);
	// each commit flushes the store once.
	CommitEvery time.Duration
	// CloseTimeout bounds how long Close waits for queued samples to be
	// acknowledged (default 10s); what is left is sent again after the
	// next start.
	CloseTimeout time.Duration
	// Client sends the requests (default: a client of its own).
	Client *http.Client
}

// Defaults.
const (
	defaultTimeout       = 30 * time.Second
	defaultShards        = 4
	defaultBatchSize     = 2000
	defaultBatchWait     = 50 * time.Millisecond
	defaultQueueCapacity = 100_000
	defaultMinBackoff    = 50 * time.Millisecond
	defaultMaxBackoff    = 5 * time.Second
	defaultWindow        = 10 * time.Second
	defaultFeed          = "remote"
	defaultCommitEvery   = time.Second
	defaultCloseTimeout  = 10 * time.Second
)

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	if c.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("remote: config: URL %q is not an http(s) URL", c.URL)
	}
	switch {
	case c.Timeout < 0, c.BatchWait < 0, c.MinBackoff < 0, c.MaxBackoff < 0, c.CommitEvery < 0, c.CloseTimeout < 0:
		return errors.New("remote: config: negative duration")
	case c.Shards < 0 || c.Shards > 1024:
		return fmt.Errorf("remote: config: Shards %d outside [1, 1024]", c.Shards)
	case c.BatchSize < 0:
		return errors.New("remote: config: BatchSize is negative")
	case c.QueueCapacity < 0:
		return errors.New("remote: config: QueueCapacity is negative")
	case c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff:
		return errors.New("remote: config: MinBackoff is above MaxBackoff")
	case c.Shape != Raw && c.Shape != Aggregated:
		return fmt.Errorf("remote: config: unknown shape %d", int(c.Shape))
	}
	if c.Shape == Aggregated {
		a := c.Aggregation
		if a.Window < 0 || a.Window%time.Millisecond != 0 {
			return fmt.Errorf("remote: config: window %v is not a positive whole number of milliseconds", a.Window)
		}
		if a.Grace < 0 || a.IdleClose < 0 {
			return errors.New("remote: config: negative Grace or IdleClose")
		}
		for i, b := range a.Buckets {
			if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b <= a.Buckets[i-1]) {
				return fmt.Errorf("remote: config: buckets must be finite and ascending: %v", a.Buckets)
			}
		}
		for _, q := range a.Quantiles {
			if !(q >= 0 && q <= 1) {
				return fmt.Errorf("remote: config: quantile %v outside [0, 1]", q)
			}
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Timeout, defaultTimeout)
	def(&c.BatchWait, defaultBatchWait)
	def(&c.MinBackoff, defaultMinBackoff)
	def(&c.MaxBackoff, defaultMaxBackoff)
	def(&c.CommitEvery, defaultCommitEvery)
	def(&c.CloseTimeout, defaultCloseTimeout)
	if c.MinBackoff > c.MaxBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Shards == 0 {
		c.Shards = defaultShards
	}
	if c.BatchSize == 0 {
		c.BatchSize = defaultBatchSize
	}
	if c.QueueCapacity == 0 {
		c.QueueCapacity = defaultQueueCapacity
	}
	c.QueueCapacity = max(c.QueueCapacity, c.Shards)
	if c.Feed == "" {
		c.Feed = defaultFeed
	}
	a := &c.Aggregation
	def(&a.Window, defaultWindow)
	if a.IdleClose == 0 {
		a.IdleClose = max(a.Window+a.Grace, time.Second)
	}
	a.Buckets = slices.Clone(a.Buckets)
	a.Quantiles = slices.Clone(a.Quantiles)
	return c
}
