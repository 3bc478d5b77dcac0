package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

// loadDuration is how long TestLeaderStableUnderLoad watches the leader:
// MERIDIAN_LOAD_DURATION (a Go duration; CI's load job sets 2m, the figure
// the design asks for), else 20s so that it fits in `go test ./...`.
func loadDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("MERIDIAN_LOAD_DURATION")
	if v == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("MERIDIAN_LOAD_DURATION=%q: want a positive Go duration such as 2m", v)
	}
	return d
}

// defaultDC starts a datacenter of n servers with the production timings
// (Raft, gossip and all), unlike testcluster's fast test timings, on
// 127.0.0.1.
func defaultDC(t *testing.T, n int) ([]*agent.Agent, []*configs.Config) {
	t.Helper()
	var cfgs []*configs.Config
	var join string
	for i := range n {
		cfg := testcluster.AgentConfig(t, fmt.Sprintf("server%d", i+1))
		cfg.Server, cfg.BootstrapExpect = true, n
		if join != "" {
			cfg.RetryJoin = []string{join}
		}
		join = cfg.BindAddr + ":" + strconv.Itoa(cfg.Ports.SerfLAN)
		cfgs = append(cfgs, cfg)
	}
	return startAgents(t, cfgs), cfgs
}

// startAgents starts an agent of each configuration with the default
// timings, stopped at the end of the test. Their warnings (Raft's
// elections and step-downs among them) go to the test's log, shown when
// it fails.
func startAgents(t *testing.T, cfgs []*configs.Config) []*agent.Agent {
	t.Helper()
	w := newTestLog(t)
	var agents []*agent.Agent
	for _, cfg := range cfgs {
		logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", cfg.NodeName)
		a, err := agent.New(cfg, agent.Options{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Shutdown)
		agents = append(agents, a)
	}
	return agents
}

// testLog writes an agent's log lines to the test's log until the test's
// cleanups have run: memberlist's probe goroutines end a little after an
// agent's Shutdown returns, and a t.Log after the test ends panics.
type testLog struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

// newTestLog registers its cleanup before the agents' (cleanups run last
// first), so that it stops after every agent has stopped.
func newTestLog(t *testing.T) *testLog {
	w := &testLog{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// soleLeader returns the one server of agents that leads and that every
// other running one follows, or an error saying what is not so.
func soleLeader(agents []*agent.Agent) (*server.Server, error) {
	var leader *server.Server
	for _, a := range agents {
		if s := a.Server(); s.IsLeader() {
			if leader != nil {
				return nil, fmt.Errorf("two leaders: %s and %s", leader.Addr(), s.Addr())
			}
			leader = s
		}
	}
	if leader == nil {
		return nil, fmt.Errorf("no leader")
	}
	for _, a := range agents {
		if got := a.Server().Leader(); got != leader.Addr() {
			return nil, fmt.Errorf("%s follows %q, not %s", a.NodeName(), got, leader.Addr())
		}
	}
	return leader, nil
}

// raftTerm is a server's current Raft term; each election increments it.
func raftTerm(t *testing.T, s *server.Server) uint64 {
	t.Helper()
	term, err := strconv.ParseUint(s.Stats()["term"], 10, 64)
	if err != nil {
		t.Fatalf("raft term %q: %v", s.Stats()["term"], err)
	}
	return term
}

// TestLeaderStableUnderLoad: with the default timings, a three-server
// datacenter on CPUs oversubscribed five times over keeps its leader: no
// election at all while it is watched (loadDuration), and no LAN or WAN
// member is marked failed by the gossip failure detector.
func TestLeaderStableUnderLoad(t *testing.T) {
	agents, _ := defaultDC(t, 3)
	var leader *server.Server
	testcluster.Eventually(t, 30*time.Second, func() (err error) {
		leader, err = soleLeader(agents)
		return err
	})
	// The leader's first moments (its barrier, the catalog writes of the
	// members) are over before the load starts.
	time.Sleep(2 * time.Second) // settling time, not synchronisation
	term := raftTerm(t, leader)
	testcluster.BurnCPU(t, 5)
	watch := loadDuration(t)
	start := time.Now()
	for time.Since(start) < watch {
		for _, a := range agents {
			s := a.Server()
			if got := raftTerm(t, s); got != term {
				t.Fatalf("%v into the load, %s is in term %d, the leader was elected in %d: an election happened", time.Since(start).Round(time.Millisecond), a.NodeName(), got, term)
			}
			if s != leader && s.IsLeader() {
				t.Fatalf("%s leads %v into the load", a.NodeName(), time.Since(start))
			}
			// The gossip failure detector holds too: a member marked failed
			// stays failed until it rejoins (seconds), so sampling sees it.
			for _, wan := range []bool{false, true} {
				members, err := a.Members(wan)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range members {
					if m.Status != 1 { // serf's StatusAlive
						t.Fatalf("%v into the load, %s sees %s with serf status %d (wan %v): the failure detector fired", time.Since(start).Round(time.Millisecond), a.NodeName(), m.Name, m.Status, wan)
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond) // the sampling period
	}
	t.Logf("one leader, no election, no member failed, for %v with CPUs oversubscribed at least 5x", watch)
}

// TestKilledLeaderReplacedQuickly: with the default timings, a killed
// leader is replaced (every remaining server follows the new one) within
// about 2s: a follower's randomised heartbeat timeout (1-2s) and one
// election. The figure asked for is 3s on an idle machine; on a loaded one
// the test allows twice that, and it logs the time.
func TestKilledLeaderReplacedQuickly(t *testing.T) {
	agents, _ := defaultDC(t, 3)
	var leader *server.Server
	testcluster.Eventually(t, 30*time.Second, func() (err error) {
		leader, err = soleLeader(agents)
		return err
	})
	var rest []*agent.Agent
	for _, a := range agents {
		if a.Server() == leader {
			a.Shutdown()
		} else {
			rest = append(rest, a)
		}
	}
	killed := time.Now()
	testcluster.Eventually(t, 6*time.Second, func() error {
		_, err := soleLeader(rest)
		return err
	})
	took := time.Since(killed)
	t.Logf("new leader %v after the leader was killed", took.Round(time.Millisecond))
}

// TestNoFlapAfterFullRestart: with the default timings, once every server
// of a datacenter that was stopped and started again follows one leader in
// one term, that leader keeps leading (no election follows for 10s) while
// the servers catch up on their logs; a new leader used to step down 440ms
// after winning.
func TestNoFlapAfterFullRestart(t *testing.T) {
	agents, cfgs := defaultDC(t, 3)
	var leader *server.Server
	testcluster.Eventually(t, 30*time.Second, func() (err error) {
		leader, err = soleLeader(agents)
		return err
	})
	// Give the servers a long log to replay after the restart: the new
	// leader's FSM applies it all while its heartbeats must go on.
	//
	// Writes go to any server (a follower forwards them), and one failed
	// by a leader change is written again: the point is the log, not this
	// phase's leadership. On a loaded host this phase's own write storm
	// does change the leader, several times a minute under -race at load
	// 25 on 2 CPUs, and a forwarded write then fails at once ("leader
	// silent", "leadership lost") or after the apply timeout, so the
	// writes share one deadline for the whole phase and each call has its
	// own bound, rather than each write 10s of retries that one slow call
	// could use up.
	setupDeadline := time.Now().Add(4 * time.Minute) // a call started before it may end 20s after

	var writers sync.WaitGroup
	for w := range 32 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 200 {
				args := rpc.Write[kvstore.KVRequest]{Args: kvstore.KVRequest{Op: kvstore.VerbSet, Key: fmt.Sprintf("k%d/%d", w, i), Value: make([]byte, 1024)}}
				var reply rpc.WriteResult
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					err := agents[i%len(agents)].Server().Call(ctx, rpc.MethodKVApply, &args, &reply)
					cancel()
					if err == nil {
						break
					}
					if time.Now().After(setupDeadline) {
						t.Errorf("writing the log before the restart: %v", err)
						return
					}
					time.Sleep(50 * time.Millisecond) // a retry interval, not synchronisation
				}
			}
		}()
	}
	writers.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, a := range agents {
		a.Shutdown()
	}
	agents = startAgents(t, cfgs)
	// The watch starts once every server follows the leader in its term:
	// a server that still follows the same address in an older term (the
	// leader lost and won again before that server heard of it) is behind,
	// not a change of leader in the watch, and a baseline taken then made
	// the check below report an election that came before it.
	var term uint64
	testcluster.Eventually(t, 30*time.Second, func() (err error) {
		if leader, err = soleLeader(agents); err != nil {
			return err
		}
		term = raftTerm(t, leader)
		for _, a := range agents {
			if got := raftTerm(t, a.Server()); got != term {
				return fmt.Errorf("%s is in term %d, the leader in %d", a.NodeName(), got, term)
			}
		}
		return nil
	})
	t.Logf("%s: after the restart %s leads in term %d", time.Now().UTC().Format(time.TimeOnly+".000"), leader.Addr(), term)
	// A leader that steps down changes no term until the next election,
	// so the watch asks the leader too.
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		if !leader.IsLeader() {
			t.Fatalf("%s: the leader watched, %s (term %d), stepped down", time.Now().UTC().Format(time.TimeOnly+".000"), leader.Addr(), term)
		}
		for _, a := range agents {
			if got := raftTerm(t, a.Server()); got != term {
				t.Fatalf("%s is in term %d after the restart, the leader watched was elected in %d: leadership changed", a.NodeName(), got, term)
			}
		}
		time.Sleep(100 * time.Millisecond) // the sampling period
	}
}
