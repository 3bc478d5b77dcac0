package agent_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/agent/checks"
)

// TestCheckIntervalFloor checks that an interval under checks.MinInterval
// (1s, Consul's) is raised to it with a warning naming the check, so a
// check of 1ns or 1ms cannot burn the agent's CPU or hammer its target.
func TestCheckIntervalFloor(t *testing.T) {
	if checks.MinInterval != time.Second {
		t.Errorf("checks.MinInterval = %s, want Consul's 1s", checks.MinInterval)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, c := localAgent(t, nil, agent.Options{Logger: logger})
	for _, interval := range []string{"1ns", "1ms"} {
		t.Run(interval, func(t *testing.T) {
			var hits atomic.Int64
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
			t.Cleanup(target.Close)
			id := "fast-" + interval
			if err := c.Agent().CheckRegister(&api.AgentCheckRegistration{ID: id, Name: id,
				AgentServiceCheck: api.AgentServiceCheck{HTTP: target.URL, Interval: interval}}); err != nil {
				t.Fatalf("CheckRegister: %v", err)
			}
			const watch = 3 * time.Second
			time.Sleep(watch) // counting probes over a fixed span is the measurement
			if err := c.Agent().CheckDeregister(id); err != nil {
				t.Fatalf("CheckDeregister: %v", err)
			}
			// At 1/s, a span of 3s holds at most 4 probes (one at each end).
			if n := hits.Load(); n > 4 {
				t.Errorf("check with Interval %s probed its target %d times in %s, want at most 4 (1s floor)", interval, n, watch)
			}
			if !strings.Contains(logs.String(), "check="+id) || !strings.Contains(logs.String(), "minimum") {
				t.Errorf("no warning naming check %s and the minimum; logs:\n%s", id, logs.String())
			}
		})
	}
}
