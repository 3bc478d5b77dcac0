package agent_test

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestAgentHealthServiceEndpoints: /v1/agent/health/service/id/:id and
// /name/:name answer a local instance's aggregate as Consul's do, in the
// status code (200, 429, 503) and, with ?format=text, the body, through
// consul/api's AgentHealthServiceByID and ByName.
func TestAgentHealthServiceEndpoints(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	n := c.WaitLeader(10 * time.Second)
	agent := n.API().Agent()
	for _, id := range []string{"web-1", "web-2"} {
		if err := agent.ServiceRegister(&api.AgentServiceRegistration{ID: id, Name: "web", Port: 80,
			Check: &api.AgentServiceCheck{CheckID: id + "-ttl", TTL: "1m", Status: api.HealthPassing}}); err != nil {
			t.Fatal(err)
		}
	}
	text := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + n.HTTPAddr() + path + "?format=text")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, step := range []struct {
		name         string
		do           func() error
		id1, byName  string
		code1, codeN int
	}{
		{"both passing", func() error { return nil }, api.HealthPassing, api.HealthPassing, 200, 200},
		{"web-2 warning", func() error { return agent.UpdateTTL("web-2-ttl", "slow", api.HealthWarning) }, api.HealthPassing, api.HealthWarning, 200, 429},
		{"web-1 critical", func() error { return agent.UpdateTTL("web-1-ttl", "down", api.HealthCritical) }, api.HealthCritical, api.HealthCritical, 503, 503},
		{"web-1 in maintenance", func() error {
			if err := agent.UpdateTTL("web-1-ttl", "", api.HealthPassing); err != nil {
				return err
			}
			return agent.EnableServiceMaintenance("web-1", "deploy")
		}, api.HealthMaint, api.HealthMaint, 503, 503},
	} {
		t.Run(step.name, func(t *testing.T) {
			if err := step.do(); err != nil {
				t.Fatal(err)
			}
			// consul/api reads the status from the code (503 is critical,
			// maintenance included); the body has the aggregate.
			status, info, err := agent.AgentHealthServiceByID("web-1")
			if err != nil || status != fromCode(step.code1) || info == nil || info.AggregatedStatus != step.id1 || info.Service.ID != "web-1" || len(info.Checks) == 0 {
				t.Errorf("AgentHealthServiceByID(web-1) = %q, %+v, %v; want %q (%s) with the service and its checks", status, info, err, fromCode(step.code1), step.id1)
			}
			status, infos, err := agent.AgentHealthServiceByName("web")
			if err != nil || status != fromCode(step.codeN) || len(infos) != 2 {
				t.Errorf("AgentHealthServiceByName(web) = %q, %d instances, %v; want %q and 2", status, len(infos), err, fromCode(step.codeN))
			}
			if code, body := text("/v1/agent/health/service/id/web-1"); code != step.code1 || body != step.id1 {
				t.Errorf("id/web-1?format=text = %d %q, want %d %q", code, body, step.code1, step.id1)
			}
			if code, body := text("/v1/agent/health/service/name/web"); code != step.codeN || body != step.byName {
				t.Errorf("name/web?format=text = %d %q, want %d %q", code, body, step.codeN, step.byName)
			}
		})
	}
	if code, _ := text("/v1/agent/health/service/id/nope"); code != http.StatusNotFound {
		t.Errorf("an unknown ID = %d, want 404", code)
	}
	if status, info, err := agent.AgentHealthServiceByName("nope"); err != nil || status != api.HealthCritical || info != nil {
		t.Errorf("AgentHealthServiceByName(nope) = %q, %v, %v; want critical and nothing, as consul/api reads a 404", status, info, err)
	}
}

func fromCode(code int) string {
	switch code {
	case http.StatusOK:
		return api.HealthPassing
	case http.StatusTooManyRequests:
		return api.HealthWarning
	}
	return api.HealthCritical
}

// TestAgentSelfDebugConfigAndCoord: /v1/agent/self has Consul's
// DebugConfig address fields and the agent's Coord, as tools read them
// through consul/api's Agent().Self().
func TestAgentSelfDebugConfigAndCoord(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	n := c.WaitLeader(10 * time.Second)
	self, err := n.API().Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	dbg, coord := self["DebugConfig"], self["Coord"]
	lan, _ := dbg["SerfAdvertiseAddrLAN"].(string)
	if want := "tcp://" + n.LANAddr(); lan != want {
		t.Errorf("DebugConfig.SerfAdvertiseAddrLAN = %q, want %q", lan, want)
	}
	if dbg["AdvertiseAddrLAN"] != "127.0.0.1" || dbg["ServerMode"] != true || dbg["Datacenter"] != "dc1" {
		t.Errorf("DebugConfig = %v, want AdvertiseAddrLAN 127.0.0.1, ServerMode, dc1", dbg)
	}
	if vec, ok := coord["Vec"].([]any); !ok || len(vec) == 0 {
		t.Errorf("Coord = %v, want a vector", coord)
	}
	if self["Config"]["PrimaryDatacenter"] != "dc1" {
		t.Errorf("Config.PrimaryDatacenter = %v, want dc1", self["Config"]["PrimaryDatacenter"])
	}
}

// TestAgentServiceContentHashBlocks: /v1/agent/service/:id has Consul's
// ContentHash and Datacenter, and with ?hash= of the current hash blocks
// until the service changes (consul/api's WaitHash), or the wait passes.
func TestAgentServiceContentHashBlocks(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	n := c.WaitLeader(10 * time.Second)
	agent := n.API().Agent()
	reg := &api.AgentServiceRegistration{ID: "web", Name: "web", Port: 80}
	if err := agent.ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
	svc, meta, err := agent.Service("web", nil)
	if err != nil || svc.ContentHash == "" || meta.LastContentHash != svc.ContentHash || svc.Datacenter != "dc1" {
		t.Fatalf("Service(web) = %+v, %+v, %v; want a ContentHash, the same in the header, and dc1", svc, meta, err)
	}
	first := svc.ContentHash

	start := time.Now()
	svc, _, err = agent.Service("web", &api.QueryOptions{WaitHash: first, WaitTime: 300 * time.Millisecond})
	if took := time.Since(start); err != nil || svc.ContentHash != first || took < 250*time.Millisecond {
		t.Errorf("an unchanged service answered after %v with %v, %v; want the same hash after the 300ms wait", took, svc, err)
	}

	got := make(chan *api.AgentService, 1)
	go func() {
		s, _, err := agent.Service("web", &api.QueryOptions{WaitHash: first, WaitTime: 30 * time.Second})
		if err != nil {
			t.Error(err)
		}
		got <- s
	}()
	reg.Port = 81
	// Re-register until the blocked read answers: the read may not be
	// parked yet when the first change lands, and then answers it anyway.
	testcluster.Eventually(t, 10*time.Second, func() error {
		select {
		case s := <-got:
			if s == nil || s.Port != 81 || s.ContentHash == first {
				t.Errorf("the blocked read answered %+v, want port 81 and a new hash", s)
			}
			return nil
		case <-time.After(200 * time.Millisecond):
			if err := agent.ServiceRegister(reg); err != nil {
				return err
			}
			return errors.New("the blocked read has not answered the change yet")
		}
	})
}
