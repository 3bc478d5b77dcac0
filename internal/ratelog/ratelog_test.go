package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLoggerLimitsAndCounts(t *testing.T) {
	var buf bytes.Buffer
	// The interval is long enough for 1000 lines under -race on a loaded
	// machine: at 50ms they outlasted it (1 of 10 runs beside a burner).
	const every = 500 * time.Millisecond
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), every)
	start := time.Now()
	for range 1000 {
		l.Warn("bad packet", "peer", "x")
	}
	if n := strings.Count(buf.String(), "bad packet"); n != 1 && time.Since(start) < every {
		t.Fatalf("1000 lines in one interval wrote %d, want 1:\n%s", n, buf.String())
	} else if n != 1 {
		t.Fatalf("1000 lines took %s, longer than the %s interval: cannot tell", time.Since(start), every)
	}
	time.Sleep(every + 10*time.Millisecond) // let the interval pass: that is what is tested
	l.Warn("bad packet", "peer", "x")
	if n := strings.Count(buf.String(), "bad packet"); n != 2 || !strings.Contains(buf.String(), "suppressed=999") {
		t.Fatalf("the line after the interval: got\n%s\nwant a second line counting 999 suppressed", buf.String())
	}
}

func TestSlogSharesTheLimit(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour)
	l.Warn("from yamux")
	s := l.Slog().With("peer", "x")
	for range 10 {
		s.Warn("from yamux")
	}
	if strings.Count(buf.String(), "from yamux") != 1 {
		t.Errorf("lines through Slog passed within the interval of Warn's:\n%s", buf.String())
	}
}

func TestMessagesAreLimitedApart(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour)
	for range 10 {
		l.Warn("dropped silent connection")
		l.Warn("dropped unknown first byte")
	}
	if a, b := strings.Count(buf.String(), "silent"), strings.Count(buf.String(), "unknown"); a != 1 || b != 1 {
		t.Errorf("two messages written 10 times each gave %d and %d lines, want 1 each:\n%s", a, b, buf.String())
	}
}
