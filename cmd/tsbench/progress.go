package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress draws a live progress bar with the current rate on w while a
// phase runs, reading the work done from a counter the workers bump (so
// that the hot loops never touch the bar). A nil *progress draws nothing.
type progress struct {
	bar  *progressbar.ProgressBar
	done *atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

// startProgress starts a bar for total points when enabled.
func startProgress(enabled bool, w io.Writer, desc string, total int64, done *atomic.Int64) *progress {
	if !enabled {
		return nil
	}
	p := &progress{
		bar: progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(fmt.Sprintf("%-9s", desc)),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("points"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetRenderBlankState(true), // starts the clock now: honest rates
		),
		done: done,
		stop: make(chan struct{}),
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				_ = p.bar.Set64(p.done.Load())
			}
		}
	}()
	return p
}

// finish removes the bar.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	_ = p.bar.Set64(p.done.Load())
	_ = p.bar.Finish()
	_ = p.bar.Clear()
}
