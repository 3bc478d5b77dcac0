package agent_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/lan"
)

// TestStartBoundedByContext: a start_join whose addresses accept TCP and
// never answer (each attempt lasts the gossip TCP timeout, 2s here) is cut
// short by Start's ctx after the attempt in progress, not after all of
// them, and the agent it began is stopped again.
func TestStartBoundedByContext(t *testing.T) {
	var addrs []string
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		addrs = append(addrs, ln.Addr().String())
	}
	cfg := testcluster.AgentConfig(t, "starter")
	cfg.StartJoin = addrs
	a, err := agent.New(cfg, agent.Options{TuneLAN: func(c *lan.Config) { c.Timings = lan.FastTimings() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = a.Start(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start with a ctx that ended during start_join = %v, want context.DeadlineExceeded", err)
	}
	// One attempt (2s) in progress when ctx ended, not all five (10s).
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Start returned %v after its ctx ended", took)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("the agent whose start failed is not shut down")
	}
}
