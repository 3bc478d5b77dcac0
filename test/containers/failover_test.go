//go:build containers

package containers

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// failoverConfig is the config file of every agent of TestFederation's
// cluster (README.md's "Failover"): a service with no healthy instance in
// the agent's datacenter is answered from the nearest other datacenter that
// has one, and a failed-over DNS answer says where it came from.
const failoverConfig = `# Written by the container suite (test/containers): issue 7's failover.
failover:
  "*": {nearest: 1}
dns_config:
  failover_txt: true
`

// switchWithin bounds how long after dc1's web instances change state the
// answers of dc1's client follow, both ways: the issue's "within one check
// interval", taken as 10s, the interval of the web check in
// configs/examples (and of most checks in Consul's documentation). A TTL
// check's new state is the agent's at once, so what this
// measures is the agent syncing the check to its servers and its health
// reads and DNS views seeing the change.
const switchWithin = 10 * time.Second

// switchPollEvery is how often a switch is polled while it is timed: a
// local HTTP read and DNS query each, cheap enough to time the switch to a
// few tens of milliseconds rather than to retryEvery.
const switchPollEvery = 20 * time.Millisecond

// The marks of an answer served by another datacenter under the failover
// policy.
const (
	headerFailoverDC  = "X-Meridian-Failover-Datacenter"
	headerFailovers   = "X-Meridian-Failovers"
	failoverTXTPrefix = "failover-datacenter="
)

// failoverScenario is scenario 5 (issue 7), run on TestFederation's cluster
// once it is whole again. Every agent has failoverConfig and each
// datacenter's client a web instance with a passing TTL check. dc1's client
// answers web from dc1 while its instance passes, from dc2 (and says so)
// once every dc1 instance is critical, and from dc1 again once they pass.
func failoverScenario(t *testing.T, c *cluster) {
	dc1, dc2 := c.dc("dc1"), c.dc("dc2")
	via, remote := dc1.clients[0], dc2.clients[0]
	setWeb := func(t *testing.T, status string) time.Time {
		t.Helper()
		for _, client := range dc1.clients {
			a := client.api(t, requestTimeout).Agent()
			var err error
			if status == api.HealthCritical {
				err = a.FailTTL(webCheckID(client), "failed by the container suite") // PUT /v1/agent/check/fail/<id>
			} else {
				err = a.PassTTL(webCheckID(client), "passed by the container suite") // PUT /v1/agent/check/pass/<id>
			}
			if err != nil {
				t.Fatalf("set %s of %s %s: %v", webCheckID(client), client, status, err)
			}
		}
		t.Logf("set the web check of every dc1 client (%d) %s", len(dc1.clients), status)
		return time.Now() // every dc1 instance has its new state
	}
	steps(t,
		step{"dc1 answers while healthy", func(t *testing.T) {
			c.waitDatacenter(t, dc1, formTimeout)
			c.waitDatacenter(t, dc2, formTimeout)
			c.waitWAN(t, wanTimeout)
			stable(t, crossTimeout, inARow, via.String()+" answers web from dc1, unmarked", func() error {
				return all(webFrom(via, via))
			})
		}},
		step{"dc1 critical: dc2 answers", func(t *testing.T) {
			failed := setWeb(t, api.HealthCritical)
			timeChecks(t, failed, switchWithin, switchPollEvery, "answers of "+via.String()+" switched to dc2", "the failure", webFrom(via, remote))
			stable(t, switchWithin, inARow, via.String()+" answers web from dc2 while dc1's is critical", func() error {
				return all(webFrom(via, remote))
			})
		}},
		step{"dc1 passing again: dc1 answers", func(t *testing.T) {
			passed := setWeb(t, api.HealthPassing)
			timeChecks(t, passed, switchWithin, switchPollEvery, "answers of "+via.String()+" back to dc1", "the check passed again", webFrom(via, via))
			stable(t, switchWithin, inARow, via.String()+" answers web from dc1 again", func() error {
				return all(webFrom(via, via))
			})
		}},
	)
}

// all runs the checks in order and returns the first error.
func all(checks []check) error {
	for _, ch := range checks {
		if err := ch.fn(); err != nil {
			return err
		}
	}
	return nil
}

// webFrom checks that via answers web with exactly the instance of client
// from, both over HTTP (/v1/health/service/web?passing) and DNS
// (web.service.consul), with no datacenter named: when from is in via's
// datacenter, the answers carry no failover mark; when it is in another,
// they carry that datacenter's (the headers, the TXT record), reached at
// the first attempt (nearest: 1).
func webFrom(via, from *agent) []check {
	return []check{
		{"HTTP", func() error { return healthPassingFrom(via, from) }},
		{"DNS", func() error { return resolvesFrom(via, from) }},
	}
}

// healthPassingFrom is webFrom's HTTP check. It reads the endpoint with a
// plain HTTP client, since the api client does not show the headers.
func healthPassingFrom(via, from *agent) error {
	url := "http://" + via.httpAddr() + "/v1/health/service/web?passing"
	resp, err := httpClient(requestTimeout).Get(url)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: read the body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s = %d %q", url, resp.StatusCode, body)
	}
	var entries []*api.ServiceEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return fmt.Errorf("GET %s: %w: %q", url, err, body)
	}
	var wantDC, wantN []string
	if from.dc != via.dc {
		wantDC, wantN = []string{from.dc}, []string{"1"}
	}
	gotDC, gotN := resp.Header.Values(headerFailoverDC), resp.Header.Values(headerFailovers)
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s.%s at %s:%d", e.Node.Node, e.Node.Datacenter, e.Service.Address, e.Service.Port))
	}
	if len(entries) != 1 || entries[0].Service.Address != from.ip || entries[0].Service.Port != webPort ||
		(entries[0].Node.Datacenter != "" && entries[0].Node.Datacenter != from.dc) ||
		!slices.Equal(gotDC, wantDC) || !slices.Equal(gotN, wantN) {
		return fmt.Errorf("GET %s = %v with %s %q, %s %q; want %s's instance at %s:%d with %s %q, %s %q",
			url, got, headerFailoverDC, gotDC, headerFailovers, gotN,
			from, from.ip, webPort, headerFailoverDC, wantDC, headerFailovers, wantN)
	}
	return nil
}

// resolvesFrom is webFrom's DNS check.
func resolvesFrom(via, from *agent) error {
	l, err := lookupA(via.dnsAddr(), "web.service.consul", requestTimeout)
	if err != nil {
		return err
	}
	var wantTXT []string
	if from.dc != via.dc {
		wantTXT = []string{failoverTXTPrefix + from.dc}
	}
	if l.rcode != dns.RcodeSuccess || !slices.Equal(l.ips, []string{from.ip}) || !slices.Equal(l.txt, wantTXT) {
		return fmt.Errorf("dns web.service.consul A @%s = %v, want NOERROR [%s] with additional TXT %q", via.dnsAddr(), l, from.ip, wantTXT)
	}
	return nil
}
