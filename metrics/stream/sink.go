package stream

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
)

// Sink receives the aggregates of closed windows. Write must not keep els
// (or its elements' Tags maps beyond reading them) after it returns.
type Sink interface {
	Write(els []Element) error
}

// SinkFunc adapts a function to Sink (the callback sink).
type SinkFunc func(els []Element) error

// Write calls f.
func (f SinkFunc) Write(els []Element) error { return f(els) }

// EngineSink writes each element to db as a point of the series named by
// the element's name and labeled with its tags, at the element's time.
func EngineSink(db *engine.DB) Sink { return &engineSink{db: db} }

type engineSink struct {
	db *engine.DB
	mu sync.Mutex
	b  engine.Batch
}

func (e *engineSink) Write(els []Element) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.b.Reset()
	for _, el := range els {
		s, err := e.db.Series(el.Name, el.Tags)
		if err != nil {
			return fmt.Errorf("engine sink: %w", err)
		}
		e.b.Add(s, el.Time, el.Value)
	}
	err := e.db.Append(&e.b)
	e.b.Reset()
	if err != nil {
		return fmt.Errorf("engine sink: %w", err)
	}
	return nil
}

// WriterSink writes one line per element to w:
//
//	2026-05-01T10:00:00Z latency.p99{route="/api"} 0.25
//
// (time in RFC 3339 with nanoseconds, UTC; tags sorted, values quoted as
// Go strings).
func WriterSink(w io.Writer) Sink { return &writerSink{w: w} }

type writerSink struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (ws *writerSink) Write(els []Element) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	b := ws.buf[:0]
	for _, el := range els {
		b = time.Unix(0, el.Time).UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, ' ')
		b = append(b, el.Name...)
		if len(el.Tags) > 0 {
			b = append(b, '{')
			for i, k := range slices.Sorted(maps.Keys(el.Tags)) {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, k...)
				b = append(b, '=')
				b = strconv.AppendQuote(b, el.Tags[k])
			}
			b = append(b, '}')
		}
		b = append(b, ' ')
		b = strconv.AppendFloat(b, el.Value, 'g', -1, 64)
		b = append(b, '\n')
	}
	ws.buf = b
	bw := bufio.NewWriter(ws.w)
	if _, err := bw.Write(b); err != nil {
		return fmt.Errorf("writer sink: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writer sink: %w", err)
	}
	return nil
}
