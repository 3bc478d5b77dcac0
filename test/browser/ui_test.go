package browser

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// faultProxy stands between the browser and the agent so that a test can
// make the API answer an error status, or not answer at all.
type faultProxy struct {
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	down  bool
	codes map[string]int // path prefix -> status to answer
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	down := p.down
	code, prefix := 0, ""
	for pre, c := range p.codes {
		if strings.HasPrefix(r.URL.Path, pre) {
			code, prefix = c, pre
		}
	}
	p.mu.Unlock()
	if down {
		// Drop the connection without an answer, as a dead agent would.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	if code != 0 {
		http.Error(w, fmt.Sprintf("injected %d for %s", code, prefix), code)
		return
	}
	p.proxy.ServeHTTP(w, r)
}

func (p *faultProxy) set(down bool, codes map[string]int) {
	p.mu.Lock()
	p.down, p.codes = down, codes
	p.mu.Unlock()
}

// withUI turns on the UI of every agent and gives dc1 a failover policy.
func withUI(c *configs.Config) {
	c.UI = true
	c.UIConfig.Enabled = true
	if c.Datacenter == "dc1" {
		c.Failover = map[string]configs.FailoverPolicy{"*": {Nearest: 1}}
	}
}

func register(t *testing.T, c *api.Client, reg *api.AgentServiceRegistration) {
	t.Helper()
	if err := c.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register %s: %v", reg.ID, err)
	}
}

func ttl(status string) *api.AgentServiceCheck {
	return &api.AgentServiceCheck{TTL: "10m", Status: status}
}

// TestUI drives the UI of dc1's dev agent, federated with dc2, through
// every page: services and their health, a check failing on an open page,
// failover, KV create / edit / CAS conflict / delete, the datacenter
// selector, the federation map, members, nodes, error answers, a lost
// connection, and dc2 cut off.
func TestUI(t *testing.T) {
	chromiumPath(t)
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true, Datacenter: "dc1", Configure: withUI})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true, Datacenter: "dc2", Configure: withUI})
	testcluster.Federate(t, dc1, dc2)
	c1, c2 := dc1.Servers[0].API(), dc2.Servers[0].API()

	register(t, c1, &api.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 8080, Tags: []string{"v1", "primary"}, Meta: map[string]string{"team": "edge"}, Check: ttl("passing")})
	register(t, c1, &api.AgentServiceRegistration{ID: "web-2", Name: "web", Port: 8081, Tags: []string{"v1"}, Check: ttl("passing")})
	register(t, c1, &api.AgentServiceRegistration{ID: "db-1", Name: "db", Port: 5432, Check: ttl("warning")})
	register(t, c1, &api.AgentServiceRegistration{ID: "odd", Name: "pay ments-ü", Port: 1, Check: ttl("passing")})
	register(t, c1, &api.AgentServiceRegistration{ID: "nochecks", Name: "plain", Port: 2})
	// billing has no healthy instance in dc1: ?passing reads fail over to dc2.
	register(t, c1, &api.AgentServiceRegistration{ID: "billing-1", Name: "billing", Port: 9000, Check: ttl("critical")})
	register(t, c2, &api.AgentServiceRegistration{ID: "billing-2", Name: "billing", Port: 9000, Check: ttl("passing")})
	register(t, c2, &api.AgentServiceRegistration{ID: "only-dc2", Name: "only-dc2", Port: 7000, Check: ttl("passing")})
	testcluster.Eventually(t, 10*time.Second, func() error {
		nodes, _, err := c2.Health().Service("billing", "", true, nil)
		if err != nil || len(nodes) != 1 {
			return fmt.Errorf("billing in dc2: %d healthy, %v", len(nodes), err)
		}
		return nil
	})

	target, _ := url.Parse("http://" + dc1.Servers[0].HTTPAddr())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a browser that navigates away cancels its requests
	fp := &faultProxy{proxy: rp}
	srv := httptest.NewServer(fp)
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv.URL+"/ui/")
	shots := t.TempDir()
	t.Logf("screenshots in %s", shots)

	t.Run("services", func(t *testing.T) {
		b.t = t
		b.open("#/services")
		b.waitJS(10*time.Second, "services listed", `document.querySelectorAll('tr[data-service]').length === 6`) // five, and the server's consul service
		b.screenshot(shots, "services")
		// Every module came through the import map, named by its hash.
		b.waitJS(time.Second, "modules by hash", `performance.getEntriesByType('resource').some((e) => /\/ui\/api\.js\?v=[0-9a-f]{16}$/.test(e.name))`)
		row := b.text(`tr[data-service="web"]`)
		for _, want := range []string{"web", "2", "passing", "v1", "primary"} {
			if !strings.Contains(row, want) {
				t.Errorf("services row of web = %q, want it to contain %q", row, want)
			}
		}
		// Critical first: billing is the only one with a critical check.
		first, _ := eval[string](b, `document.querySelector('tr[data-service]').dataset.service`)
		if first != "billing" {
			t.Errorf("first service = %q, want billing (critical first)", first)
		}
		if row := b.text(`tr[data-service="db"]`); !strings.Contains(row, "warning") {
			t.Errorf("services row of db = %q, want warning", row)
		}
		b.waitJS(5*time.Second, "a service without checks counted", `document.querySelector('tr[data-service="plain"]').innerText.includes('1')`)
		b.must("filter", chromedp.SendKeys(chromedp.CSS("#filter"), "pay"))
		b.waitJS(5*time.Second, "filter", `document.querySelectorAll('tr[data-service]').length === 1 && !!document.querySelector('tr[data-service="pay ments-ü"]')`)
		if !strings.Contains(b.location(), "filter=pay") {
			t.Errorf("location after filtering = %s, want filter=pay in it (shareable)", b.location())
		}
		b.narrow(shots, "services")
	})

	t.Run("keyboard", func(t *testing.T) {
		b.t = t
		b.open("#/services")
		b.waitJS(10*time.Second, "services", `document.querySelectorAll('tr[data-service]').length === 6`)
		// A new page has focus on its content: Tab reaches the filter,
		// typing filters, Tab reaches the service, Enter opens it.
		b.waitJS(2*time.Second, "main focused", `document.activeElement.id === 'main'`)
		b.must("tab to filter", chromedp.KeyEvent(kb.Tab))
		b.waitJS(2*time.Second, "filter focused", `document.activeElement.id === 'filter'`)
		b.must("type", chromedp.KeyEvent("web"), chromedp.KeyEvent(kb.Tab))
		b.waitJS(2*time.Second, "web link focused", `document.activeElement.closest('tr')?.dataset.service === 'web'`)
		b.must("enter", chromedp.KeyEvent(kb.Enter))
		b.waitJS(5*time.Second, "enter opens the service", `location.hash === '#/services/web' && !!document.querySelector('[data-instance="web-1"]')`)
		// The skip link moves focus to the content and stays on the page.
		b.must("skip link", chromedp.Focus(chromedp.CSS("#skip")), chromedp.KeyEvent(kb.Enter))
		b.waitJS(2*time.Second, "skip link", `document.activeElement.id === 'main' && location.hash === '#/services/web'`)
	})

	t.Run("odd service name", func(t *testing.T) {
		b.t = t
		b.open("#/services/" + url.PathEscape("pay ments-ü"))
		b.waitJS(10*time.Second, "odd name detail", `!!document.querySelector('[data-instance="odd"][data-status="passing"]')`)
	})

	t.Run("check turns critical on an open page", func(t *testing.T) {
		b.t = t
		b.open("#/services/web")
		b.waitJS(10*time.Second, "instances shown", `document.querySelectorAll('[data-instance][data-status="passing"]').length === 2`)
		detail := b.text("main")
		for _, want := range []string{"web-1", "8080", "team", "edge", "primary"} {
			if !strings.Contains(detail, want) {
				t.Errorf("service page = %q, want it to contain %q", detail, want)
			}
		}
		b.screenshot(shots, "service")
		b.narrow(shots, "service")
		start := time.Now()
		if err := c1.Agent().FailTTL("service:web-1", "disk full"); err != nil {
			t.Fatalf("fail TTL: %v", err)
		}
		b.waitJS(2*time.Second, "web-1 critical within 2s", `!!document.querySelector('[data-instance="web-1"][data-status="critical"]')`)
		t.Logf("a check turning critical reached the open page in %v", time.Since(start))
		if s := b.text(`[data-instance="web-1"]`); !strings.Contains(s, "disk full") {
			t.Errorf("web-1 = %q, want its check output", s)
		}
		if err := c1.Agent().PassTTL("service:web-1", ""); err != nil {
			t.Fatalf("pass TTL: %v", err)
		}
	})

	t.Run("failover", func(t *testing.T) {
		b.t = t
		if _, _, err := c1.PreparedQuery().Create(&api.PreparedQueryDefinition{Name: "billing-q", Service: api.ServiceQuery{Service: "billing", OnlyPassing: true, Failover: api.QueryFailoverOptions{NearestN: 1}}}, nil); err != nil {
			t.Fatalf("create prepared query: %v", err)
		}
		b.open("#/services/billing")
		b.waitJS(10*time.Second, "failover state", `(document.querySelector('#failover-state') || {}).innerText?.includes('answered from dc2 (local has no healthy instance)')`)
		b.waitJS(10*time.Second, "prepared query failover", `(document.querySelector('[data-query="billing-q"]') || {}).innerText?.includes('answered from dc2 (local has no healthy instance)')`)
		b.screenshot(shots, "failover")
	})

	t.Run("nodes", func(t *testing.T) {
		b.t = t
		b.open("#/nodes")
		node := dc1.Servers[0].Name
		b.waitJS(10*time.Second, "node listed", fmt.Sprintf(`(document.querySelector('tr[data-node=%q]') || {}).innerText?.includes('passing')`, node))
		b.screenshot(shots, "nodes")
		b.narrow(shots, "nodes")
		b.must("open node", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-node=%q] a`, node))))
		b.waitJS(10*time.Second, "node detail", `document.querySelector('main').innerText.includes('web-1') && document.querySelector('main').innerText.includes('Serf Health Status')`)
		b.screenshot(shots, "node")
	})

	t.Run("members", func(t *testing.T) {
		b.t = t
		b.open("#/members")
		b.waitJS(10*time.Second, "LAN member", fmt.Sprintf(`(document.querySelector('tr[data-member=%q]') || {}).innerText?.includes('alive')`, dc1.Servers[0].Name))
		b.open("#/members?pool=wan")
		b.waitJS(10*time.Second, "WAN members", `document.querySelectorAll('tr[data-member]').length === 2 && document.querySelector('main').innerText.includes('dc2')`)
		b.screenshot(shots, "members")
	})

	t.Run("kv", func(t *testing.T) {
		b.t = t
		kv := c1.KV()
		key := "ui test/ä b/key one"
		b.open("#/kv/")
		b.waitJS(10*time.Second, "kv page", `!!document.querySelector('#create')`)
		b.must("create", chromedp.SendKeys(chromedp.CSS("#new-key"), key), chromedp.SendKeys(chromedp.CSS("#new-value"), `{"a":[1,2]}`), chromedp.Click(chromedp.CSS("#create-btn")))
		b.waitJS(10*time.Second, "key page shows JSON", `(document.querySelector('#kv-value') || {}).dataset?.kind === 'json'`)
		if v := b.text("#kv-value"); !strings.Contains(v, "\"a\": [\n    1,") {
			t.Errorf("JSON value shown as %q, want it pretty-printed", v)
		}
		p, _, err := kv.Get(key, nil)
		if err != nil || p == nil || string(p.Value) != `{"a":[1,2]}` {
			t.Fatalf("kv get %q = %+v, %v, want what the UI created", key, p, err)
		}
		b.screenshot(shots, "kv-key")
		b.narrow(shots, "kv-key")

		// Creating it again is refused: cas=0.
		b.open("#/kv/")
		b.must("create again", chromedp.WaitVisible(chromedp.CSS("#create")), chromedp.SendKeys(chromedp.CSS("#new-key"), key), chromedp.Click(chromedp.CSS("#create-btn")))
		b.waitJS(10*time.Second, "create refused", `document.querySelector('#create-msg').innerText.includes('already exists')`)

		// Edit.
		b.open("#/kv/" + strings.Join(escSegments(key), "/"))
		b.waitJS(10*time.Second, "editor", `!!document.querySelector('#edit-value')`)
		b.must("edit", chromedp.Evaluate[chromedp.Void](`document.querySelector('#edit-value').select()`), chromedp.SendKeys(chromedp.CSS("#edit-value"), "v2"), chromedp.Click(chromedp.CSS("#save")))
		testcluster.Eventually(t, 5*time.Second, func() error {
			p, _, err := kv.Get(key, nil)
			if err != nil || p == nil || string(p.Value) != "v2" {
				return fmt.Errorf("kv get %q = %+v, %v, want v2", key, p, err)
			}
			return nil
		})
		b.waitJS(5*time.Second, "page follows the save", `document.querySelector('#kv-value').innerText === 'v2'`)

		// A concurrent edit: the user types, someone else writes, the save
		// is refused and the other write stays.
		b.must("type", chromedp.SendKeys(chromedp.CSS("#edit-value"), " mine"))
		if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte("theirs")}, nil); err != nil {
			t.Fatal(err)
		}
		b.waitJS(5*time.Second, "page notes the change", `!!document.querySelector('.changed')`)
		b.must("save", chromedp.Click(chromedp.CSS("#save")))
		b.waitJS(5*time.Second, "CAS conflict", `!!document.querySelector('#cas-conflict')`)
		b.screenshot(shots, "kv-conflict")
		if p, _, _ := kv.Get(key, nil); p == nil || string(p.Value) != "theirs" {
			t.Errorf("after a refused save the key = %+v, want theirs kept", p)
		}

		// Delete the key, confirming.
		b.must("delete", chromedp.Click(chromedp.CSS("#delete")))
		b.must("confirm", chromedp.WaitVisible(chromedp.CSS("#confirm-yes")), chromedp.Click(chromedp.CSS("#confirm-yes")))
		testcluster.Eventually(t, 5*time.Second, func() error {
			if p, _, err := kv.Get(key, nil); err != nil || p != nil {
				return fmt.Errorf("kv get %q = %+v, %v, want deleted", key, p, err)
			}
			return nil
		})

		// A 512 KiB binary value shows as base64.
		blob := make([]byte, 512*1024)
		_, _ = rand.Read(blob)
		blob[0] = 0xff
		if _, err := kv.Put(&api.KVPair{Key: "ui test/bin/blob", Value: blob}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(&api.KVPair{Key: "ui test/bin/other key ✓", Value: []byte("text")}, nil); err != nil {
			t.Fatal(err)
		}
		b.open("#/kv/" + strings.Join(escSegments("ui test/bin/blob"), "/"))
		b.waitJS(10*time.Second, "binary as base64", `(document.querySelector('#kv-value') || {}).dataset?.kind === 'base64'`)
		if v := b.text("#kv-value"); !strings.HasPrefix(v, base64.StdEncoding.EncodeToString(blob[:30])) {
			t.Errorf("binary value shown as %.50q, want its base64", v)
		}

		// Browse the folder and delete it whole.
		b.open("#/kv/" + strings.Join(escSegments("ui test/"), "/"))
		b.waitJS(10*time.Second, "folder lists bin/", `!!document.querySelector('tr[data-key="ui test/bin/"]')`)
		b.must("into folder", chromedp.Click(chromedp.CSS(`tr[data-key="ui test/bin/"] a`)))
		b.waitJS(10*time.Second, "folder lists both", `document.querySelectorAll('tr[data-key]').length === 2`)
		b.screenshot(shots, "kv-folder")
		// Escape cancels the confirmation: nothing is deleted.
		b.must("delete folder", chromedp.Click(chromedp.CSS("#delete-folder")))
		b.must("escape", chromedp.WaitVisible(chromedp.CSS("#confirm-yes")), chromedp.KeyEvent(kb.Escape))
		b.waitJS(5*time.Second, "dialog gone", `!document.querySelector('dialog')`)
		if keys, _, err := kv.Keys("ui test/bin/", "", nil); err != nil || len(keys) != 2 {
			t.Fatalf("after Escape the keys under ui test/bin/ = %q, %v, want both", keys, err)
		}
		b.must("delete folder", chromedp.Click(chromedp.CSS("#delete-folder")))
		b.must("confirm", chromedp.WaitVisible(chromedp.CSS("#confirm-yes")), chromedp.Click(chromedp.CSS("#confirm-yes")))
		testcluster.Eventually(t, 5*time.Second, func() error {
			keys, _, err := kv.Keys("ui test/bin/", "", nil)
			if err != nil || len(keys) != 0 {
				return fmt.Errorf("keys under ui test/bin/ = %q, %v, want none", keys, err)
			}
			return nil
		})
	})

	t.Run("errors", func(t *testing.T) {
		b.t = t
		fp.set(false, map[string]int{"/v1/kv/": 403, "/v1/catalog/nodes": 500})
		b.open("#/kv/")
		b.waitJS(10*time.Second, "403 shown", `document.querySelector('main .error')?.innerText.includes('permission denied (403')`)
		b.open("#/nodes")
		b.waitJS(10*time.Second, "500 shown", `document.querySelector('main .error')?.innerText.includes('500')`)
		b.screenshot(shots, "error-500")
		fp.set(false, nil)
		b.open("#/services?dc=nowhere")
		b.waitJS(10*time.Second, "unknown dc", `document.querySelector('main .error')?.innerText.toLowerCase().includes('no path to datacenter')`)
	})

	t.Run("lost connection", func(t *testing.T) {
		b.t = t
		b.open("#/services")
		b.waitJS(10*time.Second, "services", `document.querySelectorAll('tr[data-service]').length === 6`)
		fp.set(true, nil)
		// The blocking query waiting now is cut when it next reconnects;
		// make the agent answer it by changing the catalog.
		register(t, c1, &api.AgentServiceRegistration{ID: "late", Name: "late", Port: 3})
		b.waitJS(40*time.Second, "banner", `!document.querySelector('#banner').hidden && document.querySelector('#banner').innerText.includes('Lost the connection')`)
		b.screenshot(shots, "lost-connection")
		fp.set(false, nil)
		b.waitJS(15*time.Second, "resumed", `document.querySelector('#banner').hidden && !!document.querySelector('tr[data-service="late"]')`)
	})

	t.Run("datacenter selector", func(t *testing.T) {
		b.t = t
		b.open("#/services")
		b.waitJS(10*time.Second, "dc2 in the selector", `!!document.querySelector('#dc option[value="dc2"]') && document.querySelector('#dc option[value="dc2"]').dataset.reachable === 'true'`)
		if opts := b.text("#dc"); !strings.Contains(opts, "ms") {
			t.Errorf("selector = %q, want dc2 with its RTT", opts)
		}
		b.must("select dc2", chromedp.SetValue(chromedp.CSS("#dc"), "dc2"), chromedp.Evaluate[chromedp.Void](`document.querySelector('#dc').dispatchEvent(new Event('change')), undefined`))
		b.waitJS(10*time.Second, "dc2's services", `!!document.querySelector('tr[data-service="only-dc2"]') && location.hash.includes('dc=dc2')`)
		b.screenshot(shots, "services-dc2")
		// Every page follows: the nav links carry the datacenter.
		b.must("nodes in dc2", chromedp.Click(chromedp.CSS(`nav a[data-page="nodes"]`)))
		b.waitJS(10*time.Second, "dc2's node", fmt.Sprintf(`!!document.querySelector('tr[data-node=%q]') && location.hash.includes('dc=dc2')`, dc2.Servers[0].Name))
	})

	t.Run("federation map", func(t *testing.T) {
		b.t = t
		b.open("#/federation")
		b.waitJS(10*time.Second, "map", `!!document.querySelector('svg a[data-dc="dc1"]') && document.querySelector('svg a[data-dc="dc2"]')?.dataset.reachable === 'true' && document.querySelector('g[data-link="dc1-dc2"]')?.dataset.down === 'false'`)
		if s, _ := eval[string](b, `document.querySelector('g[data-link="dc1-dc2"]').textContent`); !strings.Contains(s, "ms") {
			t.Errorf("dc1-dc2 link label = %q, want its RTT", s)
		}
		b.screenshot(shots, "federation")
		b.narrow(shots, "federation")
		b.must("click dc2", chromedp.Click(chromedp.CSS(`svg a[data-dc="dc2"] circle`)))
		b.waitJS(10*time.Second, "dc2 opened", `location.hash.includes('dc=dc2') && !!document.querySelector('tr[data-service="only-dc2"]')`)
	})

	t.Run("dc2 cut off", func(t *testing.T) {
		b.t = t
		b.open("#/services?dc=dc2")
		b.waitJS(10*time.Second, "dc2's services", `!!document.querySelector('tr[data-service="only-dc2"]')`)
		dc2.Servers[0].Kill()
		b.waitJS(30*time.Second, "selector marks dc2", `document.querySelector('#dc option[value="dc2"]')?.dataset.reachable === 'false' && document.querySelector('#dc-status').innerText.includes('unreachable')`)
		b.open("#/services?dc=dc2")
		b.waitJS(15*time.Second, "page says why", `!!document.querySelector('main .error')`)
		b.screenshot(shots, "dc2-unreachable")
		b.open("#/federation")
		b.waitJS(15*time.Second, "map marks dc2", `document.querySelector('svg a[data-dc="dc2"]')?.dataset.reachable === 'false' && document.querySelector('g[data-link="dc1-dc2"]')?.dataset.down === 'true'`)
		b.screenshot(shots, "federation-dc2-down")

		// dc2 disappears while selected: its last server pruned from the
		// WAN pool, it is no longer a known datacenter.
		b.open("#/services?dc=dc2")
		err := c1.Agent().ForceLeaveOptions(dc2.Servers[0].Name+".dc2", api.ForceLeaveOpts{Prune: true, WAN: true}, nil)
		if err != nil {
			t.Fatalf("force-leave -prune -wan: %v", err)
		}
		b.waitJS(30*time.Second, "selector says dc2 is gone", `document.querySelector('#dc-status').innerText.includes('no longer a known datacenter') && document.querySelector('#dc option[value="dc2"]').innerText.includes('no longer known')`)
		b.waitJS(15*time.Second, "page says why", `document.querySelector('main .error')?.innerText.toLowerCase().includes('no path to datacenter')`)
		b.screenshot(shots, "dc2-gone")
	})
	b.t = t
}

// escSegments escapes each segment of a KV key for the UI's #/kv/ URL.
func escSegments(key string) []string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(url.QueryEscape(p), "+", "%20")
	}
	return parts
}
