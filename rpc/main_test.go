package rpc

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine they started (a
// session's, a stream's, a QUIC link's) is still running after the last
// one: every part has a known end.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := findLeaks(5 * time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// findLeaks retries goleak.Find until it finds nothing or timeout passes.
// quic-go keeps a closed link's state for three probe timeouts (RFC 9000
// section 10.2), up to about a second after the slowest test's links, so
// its transport goroutines end a little after the last test.
func findLeaks(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := goleak.Find() // itself retries for a few hundred ms
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}
