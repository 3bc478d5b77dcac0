package browser

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestUIToken checks the header's ACL token box: without a token a page
// says permission denied and how to give one; the token given is sent as
// X-Consul-Token with every request, kept across a reload, and forgotten on
// request. A proxy in front of the agent answers 403 to every /v1/ request
// without the token, as an agent whose ACLs deny by default does (the
// catalog and KV endpoints do not check tokens yet).
func TestUIToken(t *testing.T) {
	chromiumPath(t)
	const secret = "4b9e0a57-0c6e-4f1e-9a55-3b1de0c0aa11"
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true, Datacenter: "dc1", Configure: withUI})
	register(t, dc1.Servers[0].API(), &api.AgentServiceRegistration{ID: "secret-web", Name: "secret-web", Port: 80, Check: ttl("passing")})

	target, _ := url.Parse("http://" + dc1.Servers[0].HTTPAddr())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	var withToken, without atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			if r.Header.Get("X-Consul-Token") != secret {
				without.Add(1)
				http.Error(w, "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission", http.StatusForbidden)
				return
			}
			withToken.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	b := newBrowser(t, srv.URL+"/ui/")
	b.open("#/services")
	b.waitJS(15*time.Second, "denied without a token", `document.querySelector('main .error')?.innerText.includes('permission denied (403') && document.querySelector('main .error').innerText.includes('give an ACL token')`)
	b.must("open the token dialog", chromedp.Click(chromedp.CSS("#token-btn")), chromedp.WaitVisible(chromedp.CSS("#token-input")))
	b.must("give the token", chromedp.SendKeys(chromedp.CSS("#token-input"), secret), chromedp.Click(chromedp.CSS("#token-save")))
	b.waitJS(15*time.Second, "services with the token", `!!document.querySelector('tr[data-service="secret-web"]') && document.querySelector('#token-btn').innerText.includes('✓')`)
	b.open("#/services")
	b.waitJS(15*time.Second, "token kept across a reload", `!!document.querySelector('tr[data-service="secret-web"]')`)
	before := without.Load()
	b.open("#/kv/")
	b.waitJS(15*time.Second, "every page sends it", `!!document.querySelector('#create') && !document.querySelector('main .error')`)
	if n := without.Load() - before; n != 0 {
		t.Errorf("%d requests went without the token after it was given", n)
	}
	b.must("forget", chromedp.Click(chromedp.CSS("#token-btn")), chromedp.WaitVisible(chromedp.CSS("#token-clear")), chromedp.Click(chromedp.CSS("#token-clear")))
	b.waitJS(15*time.Second, "denied again", `document.querySelector('main .error')?.innerText.includes('permission denied (403') && !document.querySelector('#token-btn').innerText.includes('✓')`)
	if withToken.Load() == 0 {
		t.Errorf("no request carried the token")
	}
}
