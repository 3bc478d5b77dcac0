package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Logger writes at most one line per message per interval to its
// slog.Logger (messages are fixed strings, details are attributes, so a
// message names a kind of event); the next line of a message says how many
// were left out ("suppressed").
type Logger struct {
	log  *slog.Logger
	lims *limiters
}

// New returns a Logger writing each message to log at most once per every.
func New(log *slog.Logger, every time.Duration) *Logger {
	return &Logger{log: log, lims: &limiters{every: every, by: make(map[string]*limiter)}}
}

// Warn logs msg at warning level unless a line was logged within the
// interval.
func (l *Logger) Warn(msg string, args ...any) { l.Log(slog.LevelWarn, msg, args...) }

// Log logs msg at level unless a line was logged within the interval.
func (l *Logger) Log(level slog.Level, msg string, args ...any) {
	ok, n := l.lims.get(msg).allow()
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.log.Log(context.Background(), level, msg, args...)
}

// Slog returns a *slog.Logger whose lines share l's limit, for code that
// takes one (the yamux sessions of a listener).
func (l *Logger) Slog() *slog.Logger {
	return slog.New(&handler{h: l.log.Handler(), lims: l.lims})
}

// maxMessages bounds the messages limited apart; any others share one
// limit.
const maxMessages = 64

// limiters holds a limiter per message.
type limiters struct {
	every time.Duration

	mu    sync.Mutex
	by    map[string]*limiter
	other *limiter
}

func (ls *limiters) get(msg string) *limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.by[msg]; ok {
		return l
	}
	if len(ls.by) >= maxMessages {
		if ls.other == nil {
			ls.other = &limiter{every: ls.every}
		}
		return ls.other
	}
	l := &limiter{every: ls.every}
	ls.by[msg] = l
	return l
}

// limiter lets one event through per interval and counts the others.
type limiter struct {
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether an event may pass now and, if so, how many were
// held back since the last one that passed.
func (l *limiter) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	l.last = now
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

// handler is a slog.Handler that passes records through the limiter of
// their message.
type handler struct {
	h    slog.Handler
	lims *limiters
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.h.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	ok, n := h.lims.get(r.Message).allow()
	if !ok {
		return nil
	}
	if n > 0 {
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return h.h.Handle(ctx, r)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &handler{h: h.h.WithAttrs(attrs), lims: h.lims}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{h: h.h.WithGroup(name), lims: h.lims}
}
