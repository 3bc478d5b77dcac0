//go:build containers

package containers

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// webPort is the port every test instance of the web service registers.
const webPort = 8080

// failoverTimeout bounds how long a datacenter that lost its leader takes to
// elect another and serve writes again, at Raft's default timings.
const failoverTimeout = 45 * time.Second

// inARow is how many consecutive successes make an answer stable.
const inARow = 10

// webTTL is the TTL of the web instances' checks: longer than any run, so
// that a check changes state only when a test sets it.
const webTTL = "1h"

// registerWeb registers a "web" service on the client agent at the agent's
// own address, through /v1/agent/service/register, with a TTL check
// (webCheckID) that starts passing.
func registerWeb(t testing.TB, client *agent) {
	t.Helper()
	reg := &api.AgentServiceRegistration{
		ID:      "web-" + client.node,
		Name:    "web",
		Address: client.ip,
		Port:    webPort,
		Check: &api.AgentServiceCheck{
			CheckID: webCheckID(client),
			TTL:     webTTL,
			Status:  api.HealthPassing,
		},
	}
	if err := client.api(t, requestTimeout).Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register web on %s: %v", client, err)
	}
}

// webCheckID is the ID of the TTL check of client's web instance: Consul's
// "service:<service ID>", given explicitly.
func webCheckID(client *agent) string { return "service:web-" + client.node }

// webIn checks that the health endpoint of via answers, for datacenter dc
// ("" for via's own), exactly one web instance: the one client registered.
func webIn(t testing.TB, via *agent, dc string, client *agent) error {
	entries, _, err := via.api(t, requestTimeout).Health().Service("web", "", false, &api.QueryOptions{Datacenter: dc})
	if err != nil {
		return fmt.Errorf("health web dc=%q via %s: %w", dc, via, err)
	}
	if len(entries) != 1 {
		return fmt.Errorf("health web dc=%q via %s = %d instances, want 1", dc, via, len(entries))
	}
	e := entries[0]
	if e.Node.Node != client.node || e.Service.Address != client.ip || e.Service.Port != webPort {
		return fmt.Errorf("health web dc=%q via %s = node %q at %s:%d, want %s at %s:%d",
			dc, via, e.Node.Node, e.Service.Address, e.Service.Port, client.node, client.ip, webPort)
	}
	if e.Node.Datacenter != "" && e.Node.Datacenter != client.dc {
		return fmt.Errorf("health web dc=%q via %s: node in datacenter %q, want %q", dc, via, e.Node.Datacenter, client.dc)
	}
	return nil
}

// TestDatacenter is scenario 1, one datacenter of three servers and a
// client: the servers elect a leader, a service registered on the client
// resolves over DNS, and the datacenter keeps serving reads and writes
// through the crash of its leader, which then rejoins. Then, with writers
// busy, the leader is SIGKILLed and restarted, and afterwards every server
// at once: every write that was acknowledged is still there.
func TestDatacenter(t *testing.T) {
	c := newCluster(t, clusterSpec{datacenters: []string{"dc1"}, servers: 3, clients: 1})
	dc1 := c.dc("dc1")
	client := dc1.clients[0]
	var killed *agent
	var lastKey, lastValue string
	var acked []string

	steps(t,
		step{"leader", func(t *testing.T) {
			leader := dc1.leader(t, formTimeout, dc1.servers)
			t.Logf("leader: %s", leader)
			eventually(t, formTimeout, "three voters in the Raft configuration", func() error {
				return voters(t, client, dc1.servers)
			})
		}},
		step{"register and resolve", func(t *testing.T) {
			registerWeb(t, client)
			eventually(t, 30*time.Second, "web in the catalog and over DNS", func() error {
				if err := webIn(t, client, "", client); err != nil {
					return err
				}
				return resolves(client.dnsAddr(), "web.service.consul", client.ip)
			})
		}},
		step{"kill the leader", func(t *testing.T) {
			killed = dc1.leader(t, formTimeout, dc1.servers)
			killed.kill(t)
			t.Logf("killed %s", killed)
			survivors := slices.DeleteFunc(slices.Clone(dc1.servers), func(s *agent) bool { return s == killed })
			n := 0
			took := stable(t, failoverTimeout, inARow, "writes, reads and DNS with a server dead", func() error {
				n++
				lastKey, lastValue = fmt.Sprintf("containers/dc1/%d", n), fmt.Sprintf("v%d", n)
				if err := writeRead(t, client, lastKey, lastValue); err != nil {
					return err
				}
				if err := webIn(t, client, "", client); err != nil {
					return err
				}
				return resolves(client.dnsAddr(), "web.service.consul", client.ip)
			})
			t.Logf("reads and writes stable %v after the kill", took.Round(time.Millisecond))
			leader := dc1.leader(t, failoverTimeout, survivors)
			if leader == killed {
				t.Fatalf("leader is still %s, which is dead", killed)
			}
			t.Logf("new leader: %s", leader)
		}},
		step{"restart it", func(t *testing.T) {
			killed.start(t)
			took := eventually(t, formTimeout, killed.String()+" rejoins", func() error {
				members, err := client.api(t, requestTimeout).Agent().Members(false)
				if err != nil {
					return fmt.Errorf("members: %w", err)
				}
				if alive := aliveNames(members); !slices.Contains(alive, killed.node) {
					return fmt.Errorf("%s not alive among %v", killed, alive)
				}
				if err := voters(t, client, dc1.servers); err != nil {
					return err
				}
				// Its own copy of the data caught up: a stale read is
				// answered by the server asked.
				kv, _, err := killed.api(t, requestTimeout).KV().Get(lastKey, &api.QueryOptions{AllowStale: true})
				if err != nil {
					return errors.Join(fmt.Errorf("stale get %s on %s: %w", lastKey, killed, err), killed.exited())
				}
				if kv == nil || string(kv.Value) != lastValue {
					return fmt.Errorf("stale get %s on %s = %v, want %q", lastKey, killed, kvValue(kv), lastValue)
				}
				return nil
			})
			t.Logf("%s rejoined %v after its restart", killed, took.Round(time.Millisecond))
			c.waitDatacenter(t, dc1, formTimeout)
			if err := writeRead(t, killed, "containers/dc1/after-restart", "ok"); err != nil {
				t.Fatal(err)
			}
		}},
		step{"acknowledged writes survive a SIGKILLed leader", func(t *testing.T) {
			kv := client.api(t, requestTimeout).KV()
			writers := testcluster.StartWriters(t, 8, func(w, i int) (string, error) {
				key := fmt.Sprintf("durable/%d/%d", w, i)
				_, err := kv.Put(&api.KVPair{Key: key, Value: []byte(key)}, nil)
				return key, err
			})
			writers.WaitAcked(t, 300, failoverTimeout)
			leader := dc1.leader(t, formTimeout, dc1.servers)
			leader.kill(t)
			before := writers.Count()
			t.Logf("killed the leader %s after %d acknowledged writes", leader, before)
			writers.WaitAcked(t, before+300, failoverTimeout) // the writes go on under a new leader
			leader.start(t)
			acked = writers.Stop()
			c.waitDatacenter(t, dc1, formTimeout)
			allThere(t, client, acked)
			t.Logf("all %d acknowledged writes there after the leader's restart", len(acked))
		}},
		step{"and after every server was SIGKILLed", func(t *testing.T) {
			for _, s := range dc1.servers {
				s.kill(t)
			}
			for _, s := range dc1.servers {
				s.start(t)
			}
			c.waitDatacenter(t, dc1, formTimeout)
			allThere(t, client, acked)
		}},
	)
}

// allThere waits until a consistent read through via lists every key of
// acked, each with itself as its value.
func allThere(t testing.TB, via *agent, acked []string) {
	t.Helper()
	eventually(t, failoverTimeout, fmt.Sprintf("all %d acknowledged writes readable", len(acked)), func() error {
		return testcluster.KeysAcked(via.api(t, requestTimeout).KV(), "durable/", acked)
	})
}

// voters checks that the Raft configuration, as via's servers report it,
// has exactly the given servers, all voters.
func voters(t testing.TB, via *agent, servers []*agent) error {
	cfg, err := via.api(t, requestTimeout).Operator().RaftGetConfiguration(nil)
	if err != nil {
		return fmt.Errorf("raft configuration via %s: %w", via, err)
	}
	var got, want []string
	for _, s := range cfg.Servers {
		if !s.Voter {
			return fmt.Errorf("raft server %s (%s) is not a voter", s.Node, s.Address)
		}
		got = append(got, s.Address)
	}
	for _, s := range servers {
		want = append(want, fmt.Sprintf("%s:%d", s.ip, serverPort))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("raft voters = %v, want %v", got, want)
	}
	return nil
}

// writeRead puts key=value through via and reads it back (a consistent
// read, through the leader).
func writeRead(t testing.TB, via *agent, key, value string) error {
	kv := via.api(t, requestTimeout).KV()
	if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
		return fmt.Errorf("put %s via %s: %w", key, via, err)
	}
	got, _, err := kv.Get(key, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		return fmt.Errorf("get %s via %s: %w", key, via, err)
	}
	if got == nil || string(got.Value) != value {
		return fmt.Errorf("get %s via %s = %v, want %q", key, via, kvValue(got), value)
	}
	return nil
}

// kvValue renders a KV pair's value for a failure message.
func kvValue(kv *api.KVPair) string {
	if kv == nil {
		return "not found"
	}
	return fmt.Sprintf("%q", kv.Value)
}
