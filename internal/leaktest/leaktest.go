package leaktest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Wait is how long Main keeps looking for leaks before it reports them:
// some goroutines end a little after the Shutdown that stopped them
// (memberlist's probe in flight ends within a few probe intervals, quic-go
// keeps a closed connection's state for three probe timeouts).
const Wait = 10 * time.Second

// outliving are the goroutines that outlive their owner by design, and so
// are not leaks of the package under test.
var outliving = []goleak.Option{
	// go-metrics, which raft and serf report to, starts one package-level
	// sink goroutine per process that nothing stops, and the agent's
	// bridge one that samples the runtime (consul.runtime.*) each second.
	goleak.IgnoreAnyFunction("github.com/hashicorp/go-metrics.(*Metrics).collectStats"),
	goleak.IgnoreTopFunction("github.com/hashicorp/go-metrics.(*InmemSink).run"),
	goleak.IgnoreTopFunction("github.com/armon/go-metrics.(*InmemSink).run"),
	// raft never answers the future of an entry that was still queued
	// for the FSM when it shut down; the server has stopped waiting (its
	// apply returns ErrShutdown), but the goroutine parked on the future
	// stays (server/apply.go, await).
	goleak.IgnoreAnyFunction("github.com/hashicorp/raft.(*deferError).Error"),
}

// Main runs the tests of m and exits; when they pass, it fails the run if
// goroutines other than the outliving ones (and opts) are still running
// after Wait.
func Main(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := find(append(opts, outliving...)); err != nil {
			fmt.Fprintf(os.Stderr, "leaktest: goroutines outlived the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// find retries goleak.Find until it finds nothing or Wait has passed.
func find(opts []goleak.Option) error {
	deadline := time.Now().Add(Wait)
	for {
		err := goleak.Find(opts...) // itself retries for a few hundred ms
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}
