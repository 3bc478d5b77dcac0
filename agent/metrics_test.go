package agent_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestMetricsConsulNamesAndCardinality drives a mixed load (catalog,
// health, KV, txn, sessions, DNS, a 404) through one server agent, then
// scrapes it: the series have Consul's names, there are fewer than 800 of
// them (Consul's dashboards read them; an agent that exported every
// endpoint's buckets had 6,100), and the JSON has Consul's dotted names.
func TestMetricsConsulNamesAndCardinality(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	n := c.WaitLeader(10 * time.Second)
	client := n.API()
	for i := range 20 {
		svc := fmt.Sprintf("web-%d", i%5)
		if _, err := client.Catalog().Register(&api.CatalogRegistration{Node: fmt.Sprintf("n%d", i), Address: "10.0.0.1",
			Service: &api.AgentService{Service: svc, Port: 80}}, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := client.Health().Service(svc, "", true, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := client.KV().Put(&api.KVPair{Key: fmt.Sprintf("k/%d", i), Value: []byte("v")}, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := client.KV().Get(fmt.Sprintf("k/%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := client.Txn().Txn(api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "t", Value: []byte("v")}}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Session().Create(&api.SessionEntry{}, nil); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/no/such/endpoint"); err == nil {
		resp.Body.Close()
	}
	m := new(dns.Msg)
	m.SetQuestion("web-1.service.consul.", dns.TypeA)
	if _, _, err := new(dns.Client).Exchange(m, n.Agent().DNSAddr()); err != nil {
		t.Fatal(err)
	}

	var series int
	testcluster.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/agent/metrics?format=prometheus")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var text strings.Builder
		series = 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
				series++
				text.WriteString(line + "\n")
			}
		}
		for _, want := range []string{
			`consul_api_http_count{method="PUT",path="v1.kv._"}`,
			`consul_api_http{method="GET",path="v1.health.service._",quantile="0.99"}`,
			"consul_kvs_apply_count 20",
			"consul_txn_apply_count 1",
			"consul_catalog_register_count ",
			"consul_session_apply_count 1",
			"consul_raft_apply ",
			"consul_raft_commitTime",
			"consul_serf_member_join",
			"consul_dns_domain_query_count 1",
			"consul_state_nodes 21",
			"consul_rpc_request ",
		} {
			if !strings.Contains(text.String(), want) {
				return fmt.Errorf("prometheus metrics lack %q", want)
			}
		}
		return nil
	})
	t.Logf("%d series after the mixed load", series)
	if series >= 800 {
		t.Errorf("%d series, want fewer than 800", series)
	}

	testcluster.Eventually(t, 15*time.Second, func() error {
		resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/agent/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var summary struct {
			Timestamp string
			Gauges    []struct{ Name string }
			Counters  []struct{ Name string }
			Samples   []struct {
				Name  string
				Count int
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&summary); err != nil {
			return err
		}
		names := map[string]bool{}
		for _, g := range summary.Gauges {
			names[g.Name] = true
			// Consul puts the host in gauge names unless disable_hostname.
			if _, rest, ok := strings.Cut(strings.TrimPrefix(g.Name, "consul."), "."); ok && rest == "runtime.alloc_bytes" {
				names["consul.runtime.alloc_bytes"] = true
			}
		}
		for _, s := range summary.Counters {
			names[s.Name] = true
		}
		for _, s := range summary.Samples {
			names[s.Name] = true
		}
		for _, want := range []string{"consul.runtime.alloc_bytes", "consul.api.http", "consul.kvs.apply", "consul.dns.domain_query", "consul.state.nodes", "consul.rpc.request"} {
			if !names[want] {
				return fmt.Errorf("JSON metrics lack %s", want)
			}
		}
		return nil
	})
}
