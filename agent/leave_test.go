package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/server"
)

// TestLeaderLeavesTwoServers has the leader of a two-server datacenter leave
// gracefully: the other server must lead alone within seconds, keep leading
// and take writes. The agents run with production gossip and Raft timings,
// as the operator who found the bug ran them: there the leaving leader's
// WAN leave took its seconds before the LAN leave, and the next leader,
// still seeing it alive, added it back as a voter. Run it with -count=20 for
// the figure of issue 14.
func TestLeaderLeavesTwoServers(t *testing.T) {
	var servers [2]*agent.Agent
	var join string
	for i := range servers {
		cfg := testcluster.AgentConfig(t, fmt.Sprintf("server%d", i+1))
		cfg.Server = true
		cfg.BootstrapExpect = 2
		if join != "" {
			cfg.RetryJoin = []string{join}
		}
		a, err := agent.New(cfg, agent.Options{})
		if err != nil {
			t.Fatalf("configure %s: %v", cfg.NodeName, err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatalf("start %s: %v", cfg.NodeName, err)
		}
		t.Cleanup(a.Shutdown)
		servers[i], join = a, a.LANAddr()
	}
	var leader, remaining *agent.Agent
	testcluster.Eventually(t, 30*time.Second, func() error {
		for i, a := range servers {
			if a.Server().IsLeader() && servers[1-i].Server().Leader() == a.Server().Addr() {
				leader, remaining = a, servers[1-i]
				return nil
			}
		}
		return fmt.Errorf("no leader both servers know")
	})
	apiCfg := api.DefaultConfig()
	apiCfg.Address = remaining.HTTPAddr()
	client, err := api.NewClient(apiCfg)
	if err != nil {
		t.Fatalf("consul api client: %v", err)
	}

	start := time.Now()
	left := make(chan error, 1)
	go func() { left <- leader.Leave(t.Context()) }()
	testcluster.Eventually(t, 10*time.Second, func() error {
		if !remaining.Server().IsLeader() {
			return fmt.Errorf("the remaining server does not lead %v after the leader began to leave", time.Since(start).Round(time.Millisecond))
		}
		return nil
	})
	t.Logf("the remaining server leads %v after the leader began to leave", time.Since(start).Round(time.Millisecond))
	if err := <-left; err != nil {
		t.Fatalf("leader's Leave: %v", err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if !remaining.Server().IsLeader() {
			return fmt.Errorf("the remaining server does not lead %v after the leader began to leave", time.Since(start).Round(time.Millisecond))
		}
		peers, err := client.Status().Peers()
		if err != nil {
			return err
		}
		if len(peers) != 1 || peers[0] != remaining.Server().Addr() {
			return fmt.Errorf("Status().Peers() = %v, want only %s", peers, remaining.Server().Addr())
		}
		return nil
	})
	t.Logf("the remaining server is the only voter %v after the leader began to leave", time.Since(start).Round(time.Millisecond))
	// A leader with a dead voter beside it steps down within its lease:
	// it must still lead well past that, and take writes.
	lease := server.DefaultConfig().LeaderLeaseTimeout
	hold := time.Now().Add(10 * lease)
	for time.Now().Before(hold) {
		if !remaining.Server().IsLeader() {
			t.Fatalf("the remaining server lost leadership after leading alone")
		}
		time.Sleep(lease / 10) // the interval of a check that must stay true, not synchronisation
	}
	if _, err := client.KV().Put(&api.KVPair{Key: "after-leave", Value: []byte("x")}, nil); err != nil {
		t.Fatalf("write after the leader left: %v", err)
	}
}

// TestPrunedServerLeavesRaft is issue 12's case: a server forced out of the
// LAN pool with -prune (so no member record is left to say anything about
// it), then leaving itself, must not stay in the Raft configuration as a
// voter nobody knows by name; the leader removes it once it has been missing
// from the pool for AbsentServerGrace.
func TestPrunedServerLeavesRaft(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, TuneServer: func(c *server.Config) {
		c.AbsentServerGrace = 500 * time.Millisecond
	}})
	leader := c.WaitLeader(10 * time.Second)
	gone := c.Followers(leader)[0]
	client := leader.API()
	if err := client.Agent().ForceLeaveOpts(gone.Name, api.ForceLeaveOpts{Prune: true}); err != nil {
		t.Fatalf("ForceLeaveOpts(%s, prune): %v", gone.Name, err)
	}
	testcluster.Eventually(t, 15*time.Second, func() error {
		members, err := client.Agent().Members(false)
		if err != nil {
			return err
		}
		for _, m := range members {
			if m.Name == gone.Name {
				return fmt.Errorf("member %s still in the pool (status %d)", m.Name, m.Status)
			}
		}
		return nil
	})
	gone.Leave()
	testcluster.Eventually(t, 15*time.Second, func() error {
		cfg, err := client.Operator().RaftGetConfiguration(nil)
		if err != nil {
			return err
		}
		for _, s := range cfg.Servers {
			if s.Node == "" || s.Node == gone.Name {
				return fmt.Errorf("raft configuration keeps server %s (node %q)", s.Address, s.Node)
			}
		}
		if len(cfg.Servers) != 2 {
			return fmt.Errorf("raft configuration has %d servers, want 2", len(cfg.Servers))
		}
		return nil
	})
	if _, err := client.KV().Put(&api.KVPair{Key: "after-prune", Value: []byte("x")}, nil); err != nil {
		t.Fatalf("write after the pruned server was removed: %v", err)
	}
}
