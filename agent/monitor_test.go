package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/wan"
)

// syncBuffer is the agent's own log output, read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLoggingAgent starts a one-server agent logging at info to out, its
// level in level, reloadable from the YAML file it returns.
func startLoggingAgent(t *testing.T, out *syncBuffer, level *slog.LevelVar) (*agent.Agent, *api.Client, string) {
	t.Helper()
	cfg := testcluster.AgentConfig(t, "mon1")
	cfg.Server, cfg.Bootstrap = true, true
	file := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(file, []byte("log_level: info\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, agent.Options{
		Logger:     slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})),
		LogLevel:   level,
		ConfigArgs: []string{"-config-file", file, "-data-dir", t.TempDir()},
		TuneLAN:    func(c *lan.Config) { c.Timings = lan.FastTimings() },
		TuneWAN:    func(c *wan.Config) { c.Timings = wan.FastTimings() },
		TuneServer: testcluster.FastServer,
	})
	if err != nil {
		t.Fatalf("configure: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(a.Shutdown)
	c := api.DefaultConfig()
	c.Address = a.HTTPAddr()
	client, err := api.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	return a, client, file
}

// waitLine reads lines until one contains want.
func waitLine(t *testing.T, lines <-chan string, want string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("monitor stream ended before a line with %q", want)
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-deadline:
			t.Fatalf("no monitor line with %q within 10s", want)
		}
	}
}

// TestMonitor streams an agent's log at debug while the agent logs at
// info: the monitor gets the recent lines first, then a debug line logged
// after it started, which the agent's own output does not get; in JSON
// with logjson. A bad level is a 400.
func TestMonitor(t *testing.T) {
	var out syncBuffer
	level := new(slog.LevelVar)
	a, client, _ := startLoggingAgent(t, &out, level)

	stop := make(chan struct{})
	defer close(stop)
	lines, err := client.Agent().Monitor("debug", stop, nil)
	if err != nil {
		t.Fatalf("Agent().Monitor(debug): %v", err)
	}
	waitLine(t, lines, "agent started") // from the ring, logged before
	if _, err := client.Agent().Self(); err != nil {
		t.Fatal(err)
	}
	got := waitLine(t, lines, "url=/v1/agent/self")
	if !strings.Contains(got, "level=DEBUG") {
		t.Errorf("monitor line %q is not at debug", got)
	}
	if strings.Contains(out.String(), "/v1/agent/self") {
		t.Errorf("the agent's own info-level output got the debug line")
	}
	if level.Level() != slog.LevelInfo {
		t.Errorf("agent's level is %v after a debug monitor, want INFO", level.Level())
	}

	jlines, err := client.Agent().MonitorJSON("debug", stop, nil)
	if err != nil {
		t.Fatalf("Agent().MonitorJSON(debug): %v", err)
	}
	if _, err := client.Catalog().Datacenters(); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(waitLine(t, jlines, "/v1/catalog/datacenters")), &rec); err != nil || rec["msg"] != "request finished" {
		t.Errorf("JSON monitor line = %v (%v), want a request record", rec, err)
	}

	resp, err := http.Get(fmt.Sprintf("http://%s/v1/agent/monitor?loglevel=loud", a.HTTPAddr()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("monitor?loglevel=loud = %d, want 400", resp.StatusCode)
	}
}

// TestReloadLogLevel changes log_level in the config file and reloads: the
// agent's own output then carries debug lines.
func TestReloadLogLevel(t *testing.T) {
	var out syncBuffer
	level := new(slog.LevelVar)
	_, client, file := startLoggingAgent(t, &out, level)
	if err := os.WriteFile(file, []byte("log_level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := client.Agent().Reload(); err != nil {
		t.Fatalf("Agent().Reload(): %v", err)
	}
	if level.Level() != slog.LevelDebug {
		t.Fatalf("level after reload = %v, want DEBUG", level.Level())
	}
	if _, err := client.Agent().Self(); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(out.String(), "url=/v1/agent/self") {
			return fmt.Errorf("the agent's output has no debug line after reloading at debug")
		}
		return nil
	})
}
