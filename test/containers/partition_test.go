//go:build containers

package containers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// cutFrom drops every packet between c and each IP of ips, both ways, with
// iptables in c's network namespace (entered from the host with nsenter:
// the image has nothing but the binary). Unlike a network disconnect it
// cuts only those paths, so the test still reaches c's HTTP API. It skips
// t when the host cannot do it (no nsenter or iptables, or an engine on
// another host). The cut lasts until heal is called or until owns ends
// (owns is t, or the test of which t is a step).
func (c *container) cutFrom(t, owns testing.TB, ips ...string) (heal func()) {
	t.Helper()
	for _, tool := range []string{"nsenter", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("cannot cut single paths here: %s not found on the host (%v)", tool, err)
		}
	}
	pid, err := docker(context.Background(), "inspect", "--format", "{{.State.Pid}}", c.name)
	if err != nil || pid == "" || pid == "0" {
		t.Fatalf("pid of %s: %q, %v", c.name, pid, err)
	}
	rules := func(op string) error {
		for _, ip := range ips {
			for _, rule := range [][]string{{"INPUT", "-s", ip}, {"OUTPUT", "-d", ip}} {
				args := append([]string{"-t", pid, "-n", "iptables", "-w", op}, append(rule, "-j", "DROP")...)
				if out, err := exec.Command("nsenter", args...).CombinedOutput(); err != nil {
					return fmt.Errorf("nsenter %s: %w: %s", strings.Join(args, " "), err, out)
				}
			}
		}
		return nil
	}
	if err := rules("-A"); err != nil {
		t.Skipf("cannot cut single paths here (the engine on another host, or no iptables in the kernel?): %v", err)
	}
	healed := false
	heal = func() {
		if healed {
			return
		}
		healed = true
		if err := rules("-D"); err != nil {
			owns.Errorf("heal %s: %v", c.name, err)
		}
	}
	owns.Cleanup(heal)
	return heal
}

// TestPartitionLeader cuts the leader of a 3-server DC off from both
// followers with real packet drops, while writers go on through the
// followers: the majority elects a new leader, the cut-off server refuses
// writes and consistent reads without hanging and serves stale reads that
// say no leader is known; after the heal it follows the new leader, what
// it took while cut is gone, and every acknowledged write is there.
func TestPartitionLeader(t *testing.T) {
	c := newCluster(t, clusterSpec{datacenters: []string{"dc1"}, servers: 3})
	dc1 := c.dc("dc1")
	whole := t
	var (
		old      *agent
		majority []*agent
		writers  *testcluster.Writers
		heal     func()
		cutAt    time.Time
	)
	steps(t,
		step{"writers through the followers", func(t *testing.T) {
			old = dc1.leader(t, formTimeout, dc1.servers)
			majority = slices.DeleteFunc(slices.Clone(dc1.servers), func(s *agent) bool { return s == old })
			// The writers outlive this step: they stop with the test.
			writers = testcluster.StartWriters(whole, 4, func(w, i int) (string, error) {
				key := fmt.Sprintf("partition/%d/%d", w, i)
				_, err := majority[w%2].api(whole, requestTimeout).KV().Put(&api.KVPair{Key: key, Value: []byte(key)}, nil)
				return key, err
			})
			writers.WaitAcked(t, 100, failoverTimeout)
		}},
		step{"cut the leader off", func(t *testing.T) {
			// The cut outlives this step: the heal step undoes it (or the test's end).
			heal = old.cutFrom(t, whole, majority[0].ip, majority[1].ip)
			cutAt = time.Now()
			t.Logf("cut %s off from %s and %s", old, majority[0], majority[1])
			took := eventually(t, failoverTimeout, "a leader on the majority side", func() error {
				for _, s := range majority {
					got, err := s.api(t, requestTimeout).Status().Leader()
					if err != nil {
						return errors.Join(fmt.Errorf("leader as %s sees it: %w", s, err), s.exited())
					}
					if got == "" || got == net.JoinHostPort(old.ip, strconv.Itoa(serverPort)) {
						return fmt.Errorf("%s sees leader %q, want one of the majority", s, got)
					}
				}
				return nil
			})
			leader := dc1.leader(t, failoverTimeout, majority)
			t.Logf("new leader %s %v after the cut", leader, took.Round(time.Millisecond))
			took = eventually(t, failoverTimeout, "a write and a read through the new leader", func() error {
				return writeRead(t, leader, "partition/probe", "after the cut")
			})
			t.Logf("writes answered %v after the cut", time.Since(cutAt).Round(time.Millisecond))
			before := writers.Count()
			writers.WaitAcked(t, before+100, failoverTimeout) // the writes go on under the new leader
		}},
		step{"the cut-off server refuses and says it is stale", func(t *testing.T) {
			kv := old.api(t, requestTimeout).KV()
			start := time.Now()
			_, err := kv.Put(&api.KVPair{Key: "partition/minority", Value: []byte("x")}, nil)
			took := time.Since(start)
			t.Logf("write on the cut-off server: %v after %v", err, took.Round(time.Millisecond))
			if err == nil || took > 3*time.Second {
				t.Errorf("write on the cut-off server = %v after %v, want an error within 3s", err, took)
			}
			start = time.Now()
			_, _, err = kv.Get("partition/0/0", &api.QueryOptions{RequireConsistent: true})
			took = time.Since(start)
			t.Logf("consistent read on the cut-off server: %v after %v", err, took.Round(time.Millisecond))
			if err == nil || took > 3*time.Second {
				t.Errorf("consistent read on the cut-off server = %v after %v, want an error within 3s", err, took)
			}
			pair, meta, err := kv.Get("partition/0/0", &api.QueryOptions{AllowStale: true})
			if err != nil || pair == nil || meta.KnownLeader {
				t.Errorf("stale read on the cut-off server = %v, known leader %v, %v; want the value and no known leader", pair, meta != nil && meta.KnownLeader, err)
			}
		}},
		step{"heal: one leader, nothing lost, nothing from the minority", func(t *testing.T) {
			heal()
			healed := time.Now()
			c.waitDatacenter(t, dc1, formTimeout)
			t.Logf("datacenter whole again %v after the heal", time.Since(healed).Round(time.Millisecond))
			acked := writers.Stop()
			via := majority[0].api(t, requestTimeout).KV()
			eventually(t, failoverTimeout, fmt.Sprintf("all %d acknowledged writes readable", len(acked)), func() error {
				return testcluster.KeysAcked(via, "partition/", acked)
			})
			// The cut-off server's own copy holds the new leader's log,
			// not the entry it took while cut.
			eventually(t, failoverTimeout, old.String()+" caught up", func() error {
				kv := old.api(t, requestTimeout).KV()
				last := acked[len(acked)-1]
				pair, _, err := kv.Get(last, &api.QueryOptions{AllowStale: true})
				if err != nil || pair == nil {
					return errors.Join(fmt.Errorf("stale get %s on %s = %v, %v", last, old, pair, err), old.exited())
				}
				if minority, _, err := kv.Get("partition/minority", &api.QueryOptions{AllowStale: true}); err != nil || minority != nil {
					return fmt.Errorf("the write %s took while cut off = %v, %v; want it discarded", old, minority, err)
				}
				return nil
			})
			t.Logf("all %d acknowledged writes there", len(acked))
		}},
	)
}
