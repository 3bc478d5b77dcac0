package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/internal/wait"
)

// raftVoters reads the Raft configuration through c: server ID to voter.
func raftVoters(c *api.Client) (map[string]bool, error) {
	cfg, err := c.Operator().RaftGetConfiguration(nil)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, s := range cfg.Servers {
		out[s.ID] = s.Voter
	}
	return out, nil
}

// autopilotGauge reads consul_autopilot_healthy from n's agent.
func autopilotGauge(n *testcluster.Node) (string, error) {
	resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/agent/metrics?format=prometheus")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "consul_autopilot_healthy "); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no consul_autopilot_healthy in the metrics")
}

// TestAutopilotConfigurationCAS stores a configuration through the API,
// reads it back in Consul's shape and checks that a stale check-and-set
// loses.
func TestAutopilotConfigurationCAS(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1})
	op := c.Servers[0].API().Operator()
	cfg, err := op.AutopilotGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	// testcluster.FastServer turns cleanup off and shortens the
	// stabilization; the rest are Consul's defaults.
	if cfg.CleanupDeadServers || cfg.LastContactThreshold.Duration() != 200*time.Millisecond || cfg.MaxTrailingLogs != 250 ||
		cfg.ServerStabilizationTime.Duration() != time.Second || cfg.ModifyIndex != 0 {
		t.Fatalf("default configuration = %+v, want the agent's until one is stored", cfg)
	}
	cfg.MaxTrailingLogs = 99
	cfg.ServerStabilizationTime = api.NewReadableDuration(3 * time.Second)
	if err := op.AutopilotSetConfiguration(cfg, nil); err != nil {
		t.Fatal(err)
	}
	got, err := op.AutopilotGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxTrailingLogs != 99 || got.ServerStabilizationTime.Duration() != 3*time.Second || got.ModifyIndex == 0 {
		t.Fatalf("stored configuration = %+v", got)
	}
	stale := *got
	stale.ModifyIndex = got.ModifyIndex - 1
	if ok, err := op.AutopilotCASConfiguration(&stale, nil); err != nil || ok {
		t.Fatalf("CAS with a stale index = %v, %v; want false", ok, err)
	}
	got.MaxTrailingLogs = 7
	if ok, err := op.AutopilotCASConfiguration(got, nil); err != nil || !ok {
		t.Fatalf("CAS with the current index = %v, %v; want true", ok, err)
	}
	health, err := op.AutopilotServerHealth(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(health.Servers) != 1 || !health.Servers[0].Leader {
		t.Fatalf("health = %+v, want the one leading server", health)
	}
}

// TestAutopilotRemovesDeadServerAndPromotesReplacement kills a server of
// three (no leave): autopilot removes it from Raft once the LAN pool says
// it failed and it has been unhealthy for threshold + stabilization, the
// health endpoint reports it unhealthy meanwhile, and a replacement joins
// as a non-voter and is promoted to voter.
func TestAutopilotRemovesDeadServerAndPromotesReplacement(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	leader := c.WaitLeader(10 * time.Second)
	client := leader.API()
	op := client.Operator()
	cfg, err := op.AutopilotGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CleanupDeadServers = true
	cfg.LastContactThreshold = api.NewReadableDuration(200 * time.Millisecond)
	cfg.ServerStabilizationTime = api.NewReadableDuration(time.Second)
	if err := op.AutopilotSetConfiguration(cfg, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 15*time.Second, func() error {
		h, err := op.AutopilotServerHealth(nil)
		if err != nil {
			return err
		}
		if !h.Healthy || len(h.Servers) != 3 || h.FailureTolerance != 1 {
			return fmt.Errorf("health = %+v, want 3 healthy servers, tolerance 1", h)
		}
		if g, err := autopilotGauge(leader); err != nil || g != "1" {
			return fmt.Errorf("consul_autopilot_healthy = %q, %v; want 1", g, err)
		}
		return nil
	})

	victim := c.Followers(leader)[0]
	victimID := victim.Agent().Server().ID()
	killed := time.Now()
	victim.Kill()
	testcluster.Eventually(t, 15*time.Second, func() error {
		h, err := op.AutopilotServerHealth(nil)
		if err != nil {
			return err
		}
		for _, s := range h.Servers {
			if s.ID == victimID && !s.Healthy && !h.Healthy {
				if g, err := autopilotGauge(leader); err != nil || g != "0" {
					return fmt.Errorf("consul_autopilot_healthy = %q, %v; want 0", g, err)
				}
				return nil
			}
		}
		return fmt.Errorf("health = %+v, want %s unhealthy", h, victimID)
	})
	var failedAt time.Time
	testcluster.Eventually(t, 30*time.Second, func() error {
		if failedAt.IsZero() {
			members, err := client.Agent().Members(false)
			if err != nil {
				return err
			}
			for _, m := range members {
				if m.Name == victim.Name && m.Status == 4 { // serf's failed
					failedAt = time.Now()
				}
			}
		}
		voters, err := raftVoters(client)
		if err != nil {
			return err
		}
		if _, ok := voters[victimID]; ok {
			return fmt.Errorf("%s still in the raft configuration %v", victimID, voters)
		}
		return nil
	})
	removed := time.Now()
	t.Logf("dead server removed %s after the kill (%s after the LAN pool marked it failed); threshold + stabilization = 1.2s",
		removed.Sub(killed).Round(10*time.Millisecond), removed.Sub(failedAt).Round(10*time.Millisecond))
	took := removed.Sub(killed)
	wait.Figure(t, took <= 1200*time.Millisecond+2*time.Second, "dead server removed %s after the kill, want within threshold + stabilization + 2s = 3.2s", took)

	repl := c.AddServer()
	replID := repl.Agent().Server().ID()
	sawNonVoter := false
	testcluster.Eventually(t, 30*time.Second, func() error {
		voters, err := raftVoters(client)
		if err != nil {
			return err
		}
		if voter, ok := voters[replID]; ok && !voter {
			sawNonVoter = true
		}
		if !voters[replID] || len(voters) != 3 {
			return fmt.Errorf("raft configuration %v, want the replacement as the third voter", voters)
		}
		return nil
	})
	if !sawNonVoter {
		t.Errorf("the replacement was never a non-voter: it must join as one and be promoted after 1s of health")
	}
	testcluster.Eventually(t, 15*time.Second, func() error {
		h, err := op.AutopilotServerHealth(nil)
		if err != nil {
			return err
		}
		if !h.Healthy || len(h.Servers) != 3 {
			return fmt.Errorf("health = %+v, want 3 healthy servers", h)
		}
		st, err := op.AutopilotState(nil)
		if err != nil {
			return err
		}
		if len(st.Voters) != 3 || st.Leader == "" {
			return fmt.Errorf("state = %+v, want 3 voters and a leader", st)
		}
		return nil
	})
}
