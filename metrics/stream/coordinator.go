package stream

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Coordinator connects several streams to several sinks, routes
// observations to streams by name, and (after Start) closes time windows
// on a timer so that they are emitted even when observations stop.
type Coordinator struct {
	mu      sync.Mutex
	streams map[string]*Stream
	stop    chan struct{}
	done    chan struct{}
	now     func() time.Time
	errs    []error
}

// NewCoordinator returns an empty coordinator; now is its clock (nil means
// time.Now).
func NewCoordinator(now func() time.Time) *Coordinator {
	if now == nil {
		now = time.Now
	}
	return &Coordinator{streams: map[string]*Stream{}, now: now}
}

// Add registers s and connects sinks to it. A second stream of the same
// name is an error.
func (c *Coordinator) Add(s *Stream, sinks ...Sink) error {
	if s == nil {
		return fmt.Errorf("%w: nil stream", ErrInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.streams[s.name]; ok {
		return fmt.Errorf("%w: coordinator: stream %q already added", ErrInvalid, s.name)
	}
	c.streams[s.name] = s
	s.Connect(sinks...)
	return nil
}

func (c *Coordinator) stream(name string) (*Stream, error) {
	c.mu.Lock()
	s := c.streams[name]
	c.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("%w: coordinator: no stream %q", ErrInvalid, name)
	}
	return s, nil
}

// Send sends v, stamped now, to the stream name.
func (c *Coordinator) Send(name string, v float64, tags map[string]string) error {
	s, err := c.stream(name)
	if err != nil {
		return err
	}
	return s.SendAt(c.now(), v, tags)
}

// SendAt sends v at event time t to the stream name.
func (c *Coordinator) SendAt(name string, t time.Time, v float64, tags map[string]string) error {
	s, err := c.stream(name)
	if err != nil {
		return err
	}
	return s.SendAt(t, v, tags)
}

// Tick closes, in every time-windowed stream, the windows that ended
// Lateness or more before now. Start calls it periodically.
func (c *Coordinator) Tick() error {
	c.mu.Lock()
	ss := make([]*Stream, 0, len(c.streams))
	for _, s := range c.streams {
		ss = append(ss, s)
	}
	c.mu.Unlock()
	now := c.now()
	var errs []error
	for _, s := range ss {
		if err := s.FlushBefore(now.Add(-time.Duration(s.lateness))); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Start runs Tick every interval in a goroutine until Close. Errors of
// sinks are kept for Close.
func (c *Coordinator) Start(every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("%w: coordinator: tick interval %v must be positive", ErrInvalid, every)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != nil {
		return fmt.Errorf("%w: coordinator already started", ErrInvalid)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	c.stop, c.done = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := c.Tick(); err != nil {
					c.mu.Lock()
					if len(c.errs) < 100 {
						c.errs = append(c.errs, err)
					}
					c.mu.Unlock()
				}
			}
		}
	}()
	return nil
}

// Close stops the timer and flushes every stream. It returns the sinks'
// errors seen by the timer and the flush.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	stop, done := c.stop, c.done
	c.stop = nil
	c.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	c.mu.Lock()
	errs := c.errs
	c.errs = nil
	ss := make([]*Stream, 0, len(c.streams))
	for _, s := range c.streams {
		ss = append(ss, s)
	}
	c.mu.Unlock()
	for _, s := range ss {
		if err := s.Flush(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
