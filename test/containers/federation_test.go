//go:build containers

package containers

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// The bounds of the federation scenarios.
const (
	// wanTimeout bounds how long the servers of two datacenters take to
	// find each other over WAN gossip, joins retried every second.
	wanTimeout = 60 * time.Second
	// crossTimeout bounds how long a request for another datacenter takes
	// to be answered once the WAN pool is whole.
	crossTimeout = 20 * time.Second
	// failFastWithin is how long one lookup for a cut-off datacenter may
	// take to fail.
	failFastWithin = 3 * time.Second
	// detectWithin bounds how long after the cut lookups for the cut-off
	// datacenter take to start failing fast. Each request waits at most
	// federation.timeout (2s) for a link to a reachable server; WAN gossip
	// (memberlist's WAN profile: 5s probes, suspicion over tens of seconds)
	// declares the servers failed in about 30s, which is the slowest way a
	// server can learn of the cut.
	detectWithin = 45 * time.Second
	// healWithin is how long after the cut heals lookups for the datacenter
	// take to be answered again, with no one stepping in.
	healWithin = 10 * time.Second
	// localWithin is how long a lookup of the local datacenter may take at
	// any time, cut or not.
	localWithin = time.Second
	// probeTimeout bounds one probe during the cut: longer than
	// failFastWithin, so a slow failure is measured rather than cut short.
	probeTimeout = 10 * time.Second
	// failFastInARow is how many probes in a row must fail fast.
	failFastInARow = 5
)

// TestFederation is scenarios 2 to 5 in one cluster of two datacenters, dc1
// and dc2, of three servers and one client each, the servers also on a WAN
// network: queries for dc2 from dc1 (HTTP, DNS, KV), through the crash of a
// dc2 server, and through dc2's servers being cut off the WAN and joining it
// again; then failover (failoverScenario): with every dc1 instance of web
// critical, dc1's client answers web from dc2 until they pass again. Every
// agent loads failoverConfig; it changes nothing until a local service has
// no healthy instance.
func TestFederation(t *testing.T) {
	c := newCluster(t, clusterSpec{datacenters: []string{"dc1", "dc2"}, servers: 3, clients: 1, federate: true, config: failoverConfig})
	dc1, dc2 := c.dc("dc1"), c.dc("dc2")
	c1, c2 := dc1.clients[0], dc2.clients[0]
	for _, client := range []*agent{c1, c2} {
		registerWeb(t, client)
		eventually(t, crossTimeout, "web registered in "+client.dc, func() error {
			if err := webIn(t, client, "", client); err != nil {
				return err
			}
			return resolves(client.dnsAddr(), "web.service.consul", client.ip)
		})
	}
	kvKey, kvWant := "containers/federation/dc2-only", "written from dc1 into dc2 by run "+suite.run

	steps(t,
		step{"two datacenters", func(t *testing.T) {
			t.Run("WAN members", func(t *testing.T) {
				took := eventually(t, wanTimeout, "dc1's servers list every server of both datacenters alive", func() error {
					for _, s := range dc1.servers {
						members, err := s.api(t, requestTimeout).Agent().Members(true)
						if err != nil {
							return fmt.Errorf("WAN members as %s sees them: %w", s, err)
						}
						if alive := aliveNames(members); len(members) != len(c.servers()) || !slices.Equal(alive, c.wanNames()) {
							return fmt.Errorf("%s: %d WAN members, alive %v, want exactly %v", s, len(members), alive, c.wanNames())
						}
					}
					return nil
				})
				t.Logf("WAN pool whole %v after the servers were up", took.Round(time.Millisecond))
				c.waitWAN(t, wanTimeout) // dc2's view too
			})
			t.Run("datacenters", func(t *testing.T) {
				eventually(t, crossTimeout, "/v1/catalog/datacenters via "+c1.String(), func() error {
					dcs, err := c1.api(t, requestTimeout).Catalog().Datacenters()
					if err != nil {
						return fmt.Errorf("datacenters via %s: %w", c1, err)
					}
					if got := slices.Sorted(slices.Values(dcs)); !slices.Equal(got, []string{"dc1", "dc2"}) {
						return fmt.Errorf("datacenters via %s = %v, want dc1 and dc2", c1, dcs)
					}
					return nil
				})
			})
			t.Run("health in dc2", func(t *testing.T) {
				eventually(t, crossTimeout, "/v1/health/service/web?dc=dc2 via "+c1.String(), func() error {
					return webIn(t, c1, "dc2", c2)
				})
			})
			t.Run("DNS in dc2", func(t *testing.T) {
				eventually(t, crossTimeout, "web.service.dc2.consul via "+c1.String(), func() error {
					return resolves(c1.dnsAddr(), "web.service.dc2.consul", c2.ip)
				})
			})
			t.Run("KV in dc2 only", func(t *testing.T) {
				eventually(t, crossTimeout, "put ?dc=dc2 via "+c1.String(), func() error {
					_, err := c1.api(t, requestTimeout).KV().Put(&api.KVPair{Key: kvKey, Value: []byte(kvWant)}, &api.WriteOptions{Datacenter: "dc2"})
					return err
				})
				for _, tc := range []struct {
					via  *agent
					dc   string
					want bool
				}{
					{c2, "", true},
					{c1, "dc2", true},
					{c1, "", false},
					{c2, "dc1", false},
				} {
					kv, _, err := tc.via.api(t, requestTimeout).KV().Get(kvKey, &api.QueryOptions{Datacenter: tc.dc, RequireConsistent: true})
					if err != nil {
						t.Errorf("get %s dc=%q via %s: %v", kvKey, tc.dc, tc.via, err)
						continue
					}
					switch {
					case tc.want && (kv == nil || string(kv.Value) != kvWant):
						t.Errorf("get %s dc=%q via %s = %v, want %q", kvKey, tc.dc, tc.via, kvValue(kv), kvWant)
					case !tc.want && kv != nil:
						t.Errorf("get %s dc=%q via %s = %v, want not found", kvKey, tc.dc, tc.via, kvValue(kv))
					}
				}
			})
		}},
		step{"kill a dc2 server", func(t *testing.T) {
			victim := dc2.leader(t, formTimeout, dc2.servers)
			victim.kill(t)
			t.Logf("killed %s, dc2's leader", victim)
			took := stable(t, failoverTimeout, inARow, "dc2 answers dc1 with "+victim.String()+" dead", func() error {
				return crossDC(t, c1, c2, kvKey, kvWant)
			})
			t.Logf("dc2 answered dc1 %d times in a row %v after the kill", inARow, took.Round(time.Millisecond))
			victim.start(t)
			c.waitDatacenter(t, dc2, formTimeout)
			c.waitWAN(t, wanTimeout)
		}},
		step{"cut dc2 off the WAN", func(t *testing.T) {
			stable(t, crossTimeout, 3, "dc2 answers dc1 before the cut", func() error {
				return crossDC(t, c1, c2, kvKey, kvWant)
			})
			for _, s := range dc2.servers {
				s.disconnect(t, c.wan)
			}
			cut := time.Now()
			t.Logf("disconnected dc2's servers from %s", c.wan)

			localNow(t, c1, "at the cut")

			detected := waitFailFast(t, c1, cut)
			t.Logf("dc2 lookups failed fast (5xx, SERVFAIL, each under %v) from %v after the cut", failFastWithin, detected.Sub(cut).Round(time.Millisecond))

			localNow(t, c1, "while dc2 is cut off")

			for _, s := range dc2.servers {
				s.connect(t, c.wan)
			}
			t.Logf("reconnected dc2's servers to %s", c.wan)
			timeRecovery(t, time.Now(), crossDCChecks(t, c1, c2, kvKey, kvWant))
			stable(t, crossTimeout, inARow, "dc2 answers dc1 after the heal", func() error {
				return crossDC(t, c1, c2, kvKey, kvWant)
			})
		}},
		step{"fail over to dc2", func(t *testing.T) { failoverScenario(t, c) }},
	)
}

// check is one way of asking an agent something.
type check struct {
	name string
	fn   func() error
}

// crossDCChecks check, from client via of dc1, that dc2 answers: its web
// instance (registered by dc2's client) over HTTP and DNS, and the key only
// dc2 has (a consistent read, so through dc2's leader).
func crossDCChecks(t testing.TB, via, dc2Client *agent, key, want string) []check {
	return []check{
		{"HTTP health", func() error { return webIn(t, via, "dc2", dc2Client) }},
		{"DNS", func() error { return resolves(via.dnsAddr(), "web.service.dc2.consul", dc2Client.ip) }},
		{"KV", func() error {
			kv, _, err := via.api(t, requestTimeout).KV().Get(key, &api.QueryOptions{Datacenter: "dc2"})
			if err != nil {
				return fmt.Errorf("get %s dc=dc2 via %s: %w", key, via, err)
			}
			if kv == nil || string(kv.Value) != want {
				return fmt.Errorf("get %s dc=dc2 via %s = %v, want %q", key, via, kvValue(kv), want)
			}
			return nil
		}},
	}
}

// crossDC runs every check of crossDCChecks and returns the first error.
func crossDC(t testing.TB, via, dc2Client *agent, key, want string) error {
	return all(crossDCChecks(t, via, dc2Client, key, want))
}

// cutOff checks that one lookup for dc2 from via fails fast both ways: the
// health endpoint with a 5xx status and DNS with SERVFAIL, each within
// failFastWithin.
func cutOff(t testing.TB, via *agent) error {
	start := time.Now()
	_, _, err := via.api(t, probeTimeout).Health().Service("web", "", false, &api.QueryOptions{Datacenter: "dc2"})
	took := time.Since(start).Round(time.Millisecond)
	var se api.StatusError
	switch {
	case err == nil:
		return fmt.Errorf("health web dc=dc2 via %s answered 200 in %v, want a 5xx", via, took)
	case !errors.As(err, &se):
		return fmt.Errorf("health web dc=dc2 via %s: no answer: %w (after %v)", via, err, took)
	case se.Code < 500:
		return fmt.Errorf("health web dc=dc2 via %s = %d %q in %v, want a 5xx", via, se.Code, se.Body, took)
	case took > failFastWithin:
		return fmt.Errorf("health web dc=dc2 via %s = %d after %v, want within %v", via, se.Code, took, failFastWithin)
	}
	l, err := lookupA(via.dnsAddr(), "web.service.dc2.consul", probeTimeout)
	switch {
	case err != nil:
		return err
	case l.rcode != dns.RcodeServerFailure:
		return fmt.Errorf("dns web.service.dc2.consul A @%s = %v, want SERVFAIL", via, l)
	case l.took > failFastWithin:
		return fmt.Errorf("dns web.service.dc2.consul A @%s = %v, want within %v", via, l, failFastWithin)
	}
	return nil
}

// waitFailFast waits until lookups for dc2 from via fail fast
// failFastInARow times in a row (cutOff), detectWithin after cut at most,
// and returns when the first of those lookups started.
func waitFailFast(t testing.TB, via *agent, cut time.Time) time.Time {
	t.Helper()
	var first time.Time
	inRow := false
	stable(t, detectWithin-time.Since(cut), failFastInARow, "dc2 lookups from dc1 fail fast while cut off", func() error {
		at := time.Now()
		if err := cutOff(t, via); err != nil {
			inRow = false
			return err
		}
		if !inRow {
			first, inRow = at, true
		}
		return nil
	})
	return first
}

// timeRecovery runs each check until it succeeds, logs how long after
// since each took to, and fails t if one took longer than healWithin
// (timeChecks).
func timeRecovery(t testing.TB, since time.Time, checks []check) {
	t.Helper()
	timeChecks(t, since, healWithin, retryEvery, "for dc2 from dc1 recovered", "the reconnection", checks)
}

// timeChecks runs each check until it succeeds, a round of attempts every
// every, logs how long after since (the moment of event) each took to, and
// fails t if one took longer than within. It waits up to three times within, so that a slow
// change is measured rather than only found late. A check's time is when
// its first successful attempt ended; the log also gives when its last
// failed attempt started, which brackets the change.
func timeChecks(t testing.TB, since time.Time, within, every time.Duration, what, event string, checks []check) {
	t.Helper()
	done := make(map[string]time.Duration)
	notYet := make(map[string]time.Duration) // start of the last failed attempt
	lastErr := make(map[string]error)
	for len(done) < len(checks) && time.Since(since) < 3*within {
		for _, ch := range checks {
			if _, ok := done[ch.name]; ok {
				continue
			}
			at := time.Since(since)
			if lastErr[ch.name] = ch.fn(); lastErr[ch.name] == nil {
				done[ch.name] = time.Since(since)
			} else {
				notYet[ch.name] = at
			}
		}
		if len(done) < len(checks) {
			time.Sleep(every) // a retry interval, not synchronisation: the checks decide
		}
	}
	for _, ch := range checks {
		took, ok := done[ch.name]
		bracket := "right away"
		if before, failed := notYet[ch.name]; failed {
			bracket = fmt.Sprintf("not yet at %v", before.Round(time.Millisecond))
		}
		switch {
		case !ok:
			t.Errorf("%s %s: not %v after %s (limit %v): %v", ch.name, what, 3*within, event, within, lastErr[ch.name])
		case took > within:
			t.Errorf("%s %s %v after %s (%s), want within %v", ch.name, what, took.Round(time.Millisecond), event, bracket, within)
		default:
			t.Logf("%s %s %v after %s (%s; limit %v)", ch.name, what, took.Round(time.Millisecond), event, bracket, within)
		}
	}
	if len(done) < len(checks) {
		t.FailNow()
	}
}

// localNow checks that via answers for its own datacenter at once: a few
// lookups over HTTP and DNS in a row, each right the first time and within
// localWithin.
func localNow(t testing.TB, via *agent, when string) {
	t.Helper()
	for range 3 {
		start := time.Now()
		if err := webIn(t, via, "", via); err != nil {
			t.Fatalf("%s: local lookup: %v", when, err)
		}
		if took := time.Since(start); took > localWithin {
			t.Fatalf("%s: local health lookup via %s took %v, want within %v", when, via, took.Round(time.Millisecond), localWithin)
		}
		start = time.Now()
		if err := resolves(via.dnsAddr(), "web.service.consul", via.ip); err != nil {
			t.Fatalf("%s: local DNS lookup: %v", when, err)
		}
		if took := time.Since(start); took > localWithin {
			t.Fatalf("%s: local DNS lookup via %s took %v, want within %v", when, via, took.Round(time.Millisecond), localWithin)
		}
	}
}
