package engine

import (
	"sync/atomic"
	"time"
)

// clock stamps writes with the wall time in Unix ns. time.Now reads two
// clocks (wall and monotonic); on the hot path this reads only the
// monotonic one and adds it to a wall-clock base, which the background
// goroutine refreshes every second so that wall-clock steps (NTP) show up
// within a second. Between refreshes, stamps are monotonic.
type clock struct {
	user func() time.Time // Options.Now, if the user set one
	base atomic.Pointer[clockBase]
}

type clockBase struct {
	mono time.Time // carries a monotonic reading
	wall int64     // mono's wall time, Unix ns
}

func newClock(user func() time.Time) *clock {
	c := &clock{user: user}
	c.resync()
	return c
}

func (c *clock) resync() {
	t := time.Now()
	c.base.Store(&clockBase{mono: t, wall: t.UnixNano()})
}

// nowNanos returns the current time in Unix ns.
func (c *clock) nowNanos() int64 {
	if c.user != nil {
		return c.user().UnixNano()
	}
	b := c.base.Load()
	return b.wall + int64(time.Since(b.mono))
}

// now returns the current time.
func (c *clock) now() time.Time {
	if c.user != nil {
		return c.user()
	}
	return time.Unix(0, c.nowNanos())
}
