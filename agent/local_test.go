package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/lan"
)

// localAgent starts a single-server agent with a short anti-entropy
// interval and returns it with a Consul API client.
func localAgent(t *testing.T, cfg *configs.Config, opts agent.Options) (*agent.Agent, *api.Client) {
	t.Helper()
	if cfg == nil {
		cfg = testcluster.AgentConfig(t, "node1")
	}
	cfg.Server, cfg.Bootstrap = true, true
	opts.TuneLAN = func(c *lan.Config) { c.Timings = lan.FastTimings() }
	opts.TuneServer = testcluster.FastServer
	if opts.SyncInterval == 0 {
		opts.SyncInterval = 200 * time.Millisecond
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(a.Shutdown)
	acfg := api.DefaultConfig()
	acfg.Address = a.HTTPAddr()
	client, err := api.NewClient(acfg)
	if err != nil {
		t.Fatalf("api.NewClient: %v", err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		leader, err := client.Status().Leader()
		if err != nil || leader == "" {
			return fmt.Errorf("no leader yet (%q, %v)", leader, err)
		}
		return nil
	})
	return a, client
}

// healthyIDs lists the service IDs Health().Service answers, sorted.
func healthyIDs(c *api.Client, service, tag string, passing bool, q *api.QueryOptions) ([]string, error) {
	entries, _, err := c.Health().Service(service, tag, passing, q)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Service.ID)
	}
	sort.Strings(ids)
	return ids, nil
}

// waitHealthy waits until Health().Service answers exactly want.
func waitHealthy(t *testing.T, c *api.Client, service, tag string, passing bool, q *api.QueryOptions, want ...string) {
	t.Helper()
	sort.Strings(want)
	testcluster.Eventually(t, 10*time.Second, func() error {
		got, err := healthyIDs(c, service, tag, passing, q)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("Health().Service(%q, tag %q, passing %v) = %v, want %v", service, tag, passing, got, want)
		}
		return nil
	})
}

func TestLocalRegisterHealthAndDeregister(t *testing.T) {
	_, c := localAgent(t, nil, agent.Options{})

	var failing atomic.Bool
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(backend.Close)

	regs := []*api.AgentServiceRegistration{
		{ID: "web1", Name: "web", Tags: []string{"v1"}, Port: 8080, Check: &api.AgentServiceCheck{
			HTTP: backend.URL, Interval: "100ms",
		}},
		{ID: "web2", Name: "web", Tags: []string{"v2"}, Port: 8081, Check: &api.AgentServiceCheck{TTL: "30s"}},
	}
	for _, r := range regs {
		if err := c.Agent().ServiceRegister(r); err != nil {
			t.Fatalf("ServiceRegister(%s): %v", r.ID, err)
		}
	}

	svcs, err := c.Agent().Services()
	if err != nil {
		t.Fatalf("Agent().Services(): %v", err)
	}
	if len(svcs) != 2 || svcs["web1"] == nil || svcs["web1"].Service != "web" || svcs["web1"].Port != 8080 {
		t.Fatalf("Agent().Services() = %v, want web1 and web2", svcs)
	}
	if w := svcs["web2"].Weights; w.Passing != 1 || w.Warning != 1 {
		t.Errorf("web2 weights = %+v, want {1 1}", w)
	}
	one, _, err := c.Agent().Service("web1", nil)
	if err != nil || one.ID != "web1" || !slices.Equal(one.Tags, []string{"v1"}) {
		t.Fatalf("Agent().Service(web1) = %+v, %v; want web1 tagged v1", one, err)
	}
	checks, err := c.Agent().Checks()
	if err != nil {
		t.Fatalf("Agent().Checks(): %v", err)
	}
	if ch := checks["service:web2"]; ch == nil || ch.ServiceID != "web2" || ch.Status != api.HealthCritical {
		t.Fatalf("Agent().Checks()[service:web2] = %+v, want a critical check of web2", ch)
	}

	// The TTL instance starts critical and is left out of ?passing.
	waitHealthy(t, c, "web", "", true, nil, "web1")
	waitHealthy(t, c, "web", "", false, nil, "web1", "web2")
	waitHealthy(t, c, "web", "v2", false, nil, "web2")

	// A blocking query wakes promptly when the TTL check passes.
	_, meta, err := c.Health().Service("web", "", true, nil)
	if err != nil {
		t.Fatalf("Health().Service: %v", err)
	}
	type result struct {
		ids []string
		at  time.Time
		err error
	}
	done := make(chan result, 1)
	go func() {
		ids, err := healthyIDs(c, "web", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 10 * time.Second})
		done <- result{ids, time.Now(), err}
	}()
	select {
	case r := <-done:
		t.Fatalf("blocking query returned before any change: %v, %v", r.ids, r.err)
	default:
	}
	passedAt := time.Now()
	if err := c.Agent().PassTTL("service:web2", "fine"); err != nil {
		t.Fatalf("PassTTL: %v", err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("blocking Health().Service: %v", r.err)
	}
	if !slices.Equal(r.ids, []string{"web1", "web2"}) {
		t.Errorf("blocking Health().Service = %v, want [web1 web2]", r.ids)
	}
	d := r.at.Sub(passedAt)
	wait.Figure(t, d <= 100*time.Millisecond, "blocking query woke %v after the TTL update, want within 100ms", d)

	// The same result again is not written again.
	checkIndex := func() uint64 {
		t.Helper()
		hcs, _, err := c.Health().Checks("web", nil)
		if err != nil {
			t.Fatalf("Health().Checks: %v", err)
		}
		for _, h := range hcs {
			if h.CheckID == "service:web2" {
				return h.ModifyIndex
			}
		}
		t.Fatalf("Health().Checks(web) lacks service:web2: %v", hcs)
		return 0
	}
	before := checkIndex()
	if err := c.Agent().PassTTL("service:web2", "fine"); err != nil {
		t.Fatalf("PassTTL again: %v", err)
	}
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "marker"}); err != nil {
		t.Fatalf("register marker: %v", err)
	}
	waitHealthy(t, c, "marker", "", false, nil, "marker")
	if after := checkIndex(); after != before {
		t.Errorf("an unchanged TTL result moved the check's ModifyIndex from %d to %d", before, after)
	}

	// The HTTP check follows the backend.
	failing.Store(true)
	waitHealthy(t, c, "web", "", true, nil, "web2")
	failing.Store(false)
	waitHealthy(t, c, "web", "", true, nil, "web1", "web2")

	if err := c.Agent().ServiceDeregister("web1"); err != nil {
		t.Fatalf("ServiceDeregister: %v", err)
	}
	waitHealthy(t, c, "web", "", false, nil, "web2")
	if err := c.Agent().ServiceDeregister("web1"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("ServiceDeregister of an unknown ID = %v, want a 404", err)
	}
}

func TestLocalNodeMetaFilter(t *testing.T) {
	_, c := localAgent(t, nil, agent.Options{})
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "db-local", Name: "db"}); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	_, err := c.Catalog().Register(&api.CatalogRegistration{
		Node: "ext", Address: "10.0.0.9", NodeMeta: map[string]string{"rack": "r1"},
		Service: &api.AgentService{ID: "db-ext", Service: "db"},
	}, nil)
	if err != nil {
		t.Fatalf("Catalog().Register: %v", err)
	}
	waitHealthy(t, c, "db", "", false, nil, "db-ext", "db-local")
	waitHealthy(t, c, "db", "", false, &api.QueryOptions{NodeMeta: map[string]string{"rack": "r1"}}, "db-ext")
	waitHealthy(t, c, "db", "", false, &api.QueryOptions{NodeMeta: map[string]string{"rack": "r2"}})
}

func TestLocalAntiEntropyRepairsTheCatalog(t *testing.T) {
	a, c := localAgent(t, nil, agent.Options{SyncInterval: 200 * time.Millisecond})
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "api1", Name: "api", Check: &api.AgentServiceCheck{TTL: "1m", Status: api.HealthPassing}}); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	waitHealthy(t, c, "api", "", true, nil, "api1")

	// Deleted behind the agent's back: it comes back with its check.
	if _, err := c.Catalog().Deregister(&api.CatalogDeregistration{Node: a.NodeName(), ServiceID: "api1"}, nil); err != nil {
		t.Fatalf("Catalog().Deregister: %v", err)
	}
	waitHealthy(t, c, "api", "", true, nil, "api1")

	// Added behind its back: removed, and serfHealth is kept.
	_, err := c.Catalog().Register(&api.CatalogRegistration{
		Node: a.NodeName(), Address: "127.0.0.1", SkipNodeUpdate: true,
		Service: &api.AgentService{ID: "rogue", Service: "rogue"},
		Check:   &api.AgentCheck{CheckID: "rogue-check", Name: "rogue", Status: api.HealthPassing},
	}, nil)
	if err != nil {
		t.Fatalf("Catalog().Register: %v", err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		node, _, err := c.Catalog().Node(a.NodeName(), nil)
		if err != nil {
			return err
		}
		if _, ok := node.Services["rogue"]; ok {
			return fmt.Errorf("rogue service still on %s", a.NodeName())
		}
		hcs, _, err := c.Health().Node(a.NodeName(), nil)
		if err != nil {
			return err
		}
		var ids []string
		for _, h := range hcs {
			ids = append(ids, h.CheckID)
		}
		sort.Strings(ids)
		if want := []string{"serfHealth", "service:api1"}; !slices.Equal(ids, want) {
			return fmt.Errorf("checks of %s = %v, want %v", a.NodeName(), ids, want)
		}
		return nil
	})
}

func TestLocalMaintenanceMode(t *testing.T) {
	_, c := localAgent(t, nil, agent.Options{})
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "web", Check: &api.AgentServiceCheck{TTL: "1m", Status: api.HealthPassing}}); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	waitHealthy(t, c, "web", "", true, nil, "web")

	if err := c.Agent().EnableServiceMaintenance("web", "deploying"); err != nil {
		t.Fatalf("EnableServiceMaintenance: %v", err)
	}
	waitHealthy(t, c, "web", "", true, nil)
	checks, err := c.Agent().Checks()
	if err != nil {
		t.Fatalf("Agent().Checks(): %v", err)
	}
	if mc := checks["_service_maintenance:web"]; mc == nil || mc.Status != api.HealthCritical || mc.Notes != "deploying" {
		t.Errorf("maintenance check = %+v, want critical with notes %q", mc, "deploying")
	}
	if err := c.Agent().DisableServiceMaintenance("web"); err != nil {
		t.Fatalf("DisableServiceMaintenance: %v", err)
	}
	waitHealthy(t, c, "web", "", true, nil, "web")

	if err := c.Agent().EnableNodeMaintenance("kernel upgrade"); err != nil {
		t.Fatalf("EnableNodeMaintenance: %v", err)
	}
	waitHealthy(t, c, "web", "", true, nil)
	if err := c.Agent().DisableNodeMaintenance(); err != nil {
		t.Fatalf("DisableNodeMaintenance: %v", err)
	}
	waitHealthy(t, c, "web", "", true, nil, "web")

	if err := c.Agent().EnableServiceMaintenance("nope", ""); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("EnableServiceMaintenance(nope) = %v, want a 404", err)
	}
}

func TestLocalDeregisterCriticalServiceAfter(t *testing.T) {
	_, c := localAgent(t, nil, agent.Options{})
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "flaky", Check: &api.AgentServiceCheck{
		TTL: "10m", DeregisterCriticalServiceAfter: "300ms",
	}})
	if err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "steady", Check: &api.AgentServiceCheck{
		TTL: "10m", DeregisterCriticalServiceAfter: "300ms", Status: api.HealthPassing,
	}}); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		svcs, err := c.Agent().Services()
		if err != nil {
			return err
		}
		if _, ok := svcs["flaky"]; ok {
			return fmt.Errorf("flaky still registered: %v", svcs)
		}
		if _, ok := svcs["steady"]; !ok {
			return fmt.Errorf("steady was reaped too: %v", svcs)
		}
		return nil
	})
	waitHealthy(t, c, "flaky", "", false, nil)
	waitHealthy(t, c, "steady", "", false, nil, "steady")
}

func TestLocalConfigServicesAndReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "services.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("services:\n  - name: api\n    port: 9000\n    tags: [blue]\n")
	args := []string{"-dev", "-config-dir", dir}
	loaded, err := configs.Load(args, nil, nil)
	if err != nil {
		t.Fatalf("configs.Load: %v", err)
	}
	cfg := testcluster.AgentConfig(t, "node1")
	cfg.Services, cfg.Checks = loaded.Services, loaded.Checks
	_, c := localAgent(t, cfg, agent.Options{ConfigArgs: args, ConfigEnv: []string{}})

	waitHealthy(t, c, "api", "blue", false, nil, "api")
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "byapi"}); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	write("services:\n  - name: db\n    port: 5432\n")
	if err := c.Agent().Reload(); err != nil {
		t.Fatalf("Agent().Reload(): %v", err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		svcs, _, err := c.Catalog().Services(nil)
		if err != nil {
			return err
		}
		var names []string
		for n := range svcs {
			names = append(names, n)
		}
		sort.Strings(names)
		if want := []string{"byapi", "consul", "db"}; !slices.Equal(names, want) {
			return fmt.Errorf("Catalog().Services() = %v, want %v (consul is the server's own)", names, want)
		}
		return nil
	})
}

func TestLocalServicesPersistAcrossRestart(t *testing.T) {
	cfg := testcluster.AgentConfig(t, "node1")
	first := *cfg
	a, c := localAgent(t, &first, agent.Options{})
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "kept", Port: 7, Check: &api.AgentServiceCheck{TTL: "1m"}}); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	if err := c.Agent().CheckRegister(&api.AgentCheckRegistration{Name: "disk", AgentServiceCheck: api.AgentServiceCheck{TTL: "1m"}}); err != nil {
		t.Fatalf("CheckRegister: %v", err)
	}
	a.Shutdown()

	second := *cfg
	_, c2 := localAgent(t, &second, agent.Options{})
	svcs, err := c2.Agent().Services()
	if err != nil {
		t.Fatalf("Agent().Services(): %v", err)
	}
	if s := svcs["kept"]; s == nil || s.Port != 7 {
		t.Errorf("after restart Agent().Services() = %v, want kept on port 7", svcs)
	}
	checks, err := c2.Agent().Checks()
	if err != nil {
		t.Fatalf("Agent().Checks(): %v", err)
	}
	for _, id := range []string{"service:kept", "disk"} {
		if checks[id] == nil {
			t.Errorf("after restart Agent().Checks() lacks %q: %v", id, checks)
		}
	}
}

func TestLocalRegisterOnClientOfThreeServers(t *testing.T) {
	cl := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1})
	client := cl.Clients[0].API()
	err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "web-c1", Name: "web", Tags: []string{"edge"}, Check: &api.AgentServiceCheck{TTL: "1m"},
	})
	if err != nil {
		t.Fatalf("ServiceRegister on the client: %v", err)
	}
	onServer := cl.Servers[1].API()
	waitHealthy(t, onServer, "web", "", false, nil, "web-c1")
	waitHealthy(t, onServer, "web", "", true, nil)
	if err := client.Agent().PassTTL("service:web-c1", "ok"); err != nil {
		t.Fatalf("PassTTL: %v", err)
	}
	waitHealthy(t, onServer, "web", "edge", true, nil, "web-c1")
	entries, _, err := onServer.Health().Service("web", "", true, nil)
	if err != nil || len(entries) != 1 || entries[0].Node.Node != "client1" {
		t.Fatalf("Health().Service(web) = %v, %v; want the instance on client1", entries, err)
	}
	if err := client.Agent().ServiceDeregister("web-c1"); err != nil {
		t.Fatalf("ServiceDeregister: %v", err)
	}
	waitHealthy(t, onServer, "web", "", false, nil)
}
