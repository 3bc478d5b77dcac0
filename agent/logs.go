package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/meridian/meridian/rpc"
)

// LogLevel parses a log_level as Consul spells them (trace, debug, info,
// warn, error); trace is debug here, and anything else is info.
func LogLevel(s string) slog.Level {
	l, _ := parseLevel(s)
	return l
}

// parseLevel reads a level name; false (and info) for an unknown one.
func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "trace", "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error", "err":
		return slog.LevelError, true
	}
	return slog.LevelInfo, false
}

// logRingSize is how many of the latest records the agent keeps for a
// monitor that connects (what its own handler let through).
const logRingSize = 512

// monitorBuffer is how many records a monitor may lag behind before the
// newest are dropped for it.
const monitorBuffer = 1024

// logCore is the state the agent's log handlers share: the ring of recent
// records and the monitors.
type logCore struct {
	mu   sync.Mutex
	ring []logEntry
	next int
	subs map[*logSub]struct{}
	// minSub is the lowest level any monitor wants, or above every level
	// when there is none: records below both it and the agent's own level
	// cost nothing.
	minSub atomic.Int64
}

// logEntry is one record with the attributes and groups of the handler
// that logged it.
type logEntry struct {
	rec slog.Record
	ops []logOp
}

// logOp is a WithAttrs or WithGroup, replayed on a monitor's formatter.
type logOp struct {
	group string
	attrs []slog.Attr
}

type logSub struct {
	level slog.Level
	ch    chan logEntry
}

// logHub is the agent's slog.Handler: records go to the handler the agent
// was given (at its level), into the ring, and to every monitor at the
// monitor's own level, so `meridian monitor -log-level debug` sees debug
// lines while the agent's own output stays at info.
type logHub struct {
	inner slog.Handler
	core  *logCore
	ops   []logOp
}

func newLogHub(inner slog.Handler) *logHub {
	c := &logCore{ring: make([]logEntry, 0, logRingSize), subs: map[*logSub]struct{}{}}
	c.minSub.Store(int64(slog.LevelError) + 1000)
	return &logHub{inner: inner, core: c}
}

func (h *logHub) Enabled(ctx context.Context, l slog.Level) bool {
	return int64(l) >= h.core.minSub.Load() || h.inner.Enabled(ctx, l)
}

func (h *logHub) Handle(ctx context.Context, r slog.Record) error {
	var err error
	own := h.inner.Enabled(ctx, r.Level)
	if own {
		err = h.inner.Handle(ctx, r)
	}
	c := h.core
	c.mu.Lock()
	defer c.mu.Unlock()
	if !own && len(c.subs) == 0 {
		return err
	}
	e := logEntry{rec: r.Clone(), ops: h.ops}
	if own {
		if len(c.ring) < logRingSize {
			c.ring = append(c.ring, e)
		} else {
			c.ring[c.next] = e
			c.next = (c.next + 1) % logRingSize
		}
	}
	for s := range c.subs {
		if r.Level >= s.level {
			select {
			case s.ch <- e:
			default: // the monitor lags: it misses this line
			}
		}
	}
	return err
}

func (h *logHub) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHub{inner: h.inner.WithAttrs(attrs), core: h.core, ops: append(h.ops[:len(h.ops):len(h.ops)], logOp{attrs: attrs})}
}

func (h *logHub) WithGroup(name string) slog.Handler {
	return &logHub{inner: h.inner.WithGroup(name), core: h.core, ops: append(h.ops[:len(h.ops):len(h.ops)], logOp{group: name})}
}

// subscribe adds a monitor at level and hands it the ring's records at or
// above it, oldest first, then the live ones.
func (c *logCore) subscribe(level slog.Level) *logSub {
	s := &logSub{level: level, ch: make(chan logEntry, monitorBuffer+logRingSize)}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.ring {
		e := c.ring[(c.next+i)%len(c.ring)]
		if e.rec.Level >= level {
			s.ch <- e
		}
	}
	c.subs[s] = struct{}{}
	c.setMinLocked()
	return s
}

func (c *logCore) unsubscribe(s *logSub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.subs, s)
	c.setMinLocked()
}

func (c *logCore) setMinLocked() {
	low := int64(slog.LevelError) + 1000
	for s := range c.subs {
		low = min(low, int64(s.level))
	}
	c.minSub.Store(low)
}

// Monitor streams the agent's log as lines of text (or JSON with asJSON)
// at level and above: first what the agent kept of its recent log, then
// live, until ctx ends, when the channel closes. The agent's own log level
// does not change.
func (a *Agent) Monitor(ctx context.Context, level string, asJSON bool) (<-chan []byte, error) {
	l, ok := parseLevel(level)
	if !ok && level != "" {
		return nil, fmt.Errorf("%w: log level %q: want trace, debug, info, warn or error", rpc.ErrBadRequest, level)
	}
	sub := a.logs.subscribe(l)
	out := make(chan []byte, 16)
	go func() {
		defer close(out)
		defer a.logs.unsubscribe(sub)
		var buf bytes.Buffer
		for {
			select {
			case <-ctx.Done():
				return
			case <-a.ctx.Done():
				return
			case e := <-sub.ch:
				buf.Reset()
				var h slog.Handler
				opts := &slog.HandlerOptions{Level: slog.LevelDebug}
				if asJSON {
					h = slog.NewJSONHandler(&buf, opts)
				} else {
					h = slog.NewTextHandler(&buf, opts)
				}
				for _, op := range e.ops {
					if op.group != "" {
						h = h.WithGroup(op.group)
					} else {
						h = h.WithAttrs(op.attrs)
					}
				}
				if h.Handle(ctx, e.rec) != nil {
					continue
				}
				select {
				case out <- bytes.Clone(buf.Bytes()):
				case <-ctx.Done():
					return
				case <-a.ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
