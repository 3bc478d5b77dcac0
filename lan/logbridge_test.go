package lan

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/ratelog"
)

// TestLogBridgeLimitsPeerLines checks that memberlist's complaints about
// one peer's input ("... from=ADDR"), which a stranger can provoke with
// every packet, are written once per interval, while other warnings are
// all written.
func TestLogBridgeLimitsPeerLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	b := &logBridge{log: log, conflicts: newConflicts("me"), drops: ratelog.New(log, time.Hour)}
	for i := range 100 {
		fmt.Fprintf(b, "[ERR] memberlist: Failed to decode ping request: junk from=10.0.0.%d:8301\n", i)
		fmt.Fprintf(b, "[WARN] memberlist: Refuting a suspect message %d\n", i)
	}
	if n := strings.Count(buf.String(), "Failed to decode"); n != 1 {
		t.Errorf("100 lines about bad packets wrote %d, want 1", n)
	}
	if n := strings.Count(buf.String(), "Refuting"); n != 100 {
		t.Errorf("100 other warnings wrote %d, want all 100", n)
	}
}
