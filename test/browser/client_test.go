package browser

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestUIOnClient opens the UI a client agent serves: it reads the same /v1/
// API, which the client forwards to its server, so services, nodes and the
// datacenter selector work there as on a server.
func TestUIOnClient(t *testing.T) {
	chromiumPath(t)
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Datacenter: "dc1", Configure: withUI})
	client := dc1.Clients[0]
	register(t, client.API(), &api.AgentServiceRegistration{ID: "on-client", Name: "on-client", Port: 81, Check: ttl("passing")})

	b := newBrowser(t, "http://"+client.HTTPAddr()+"/ui/")
	b.open("#/services")
	b.waitJS(15*time.Second, "the client's service", `(document.querySelector('tr[data-service="on-client"]') || {}).innerText?.includes('passing')`)
	b.open("#/nodes")
	b.waitJS(15*time.Second, "both nodes", fmt.Sprintf(`!!document.querySelector('tr[data-node=%q]') && !!document.querySelector('tr[data-node=%q]')`, dc1.Servers[0].Name, client.Name))
	b.waitJS(15*time.Second, "selector", `document.querySelector('#dc').value === 'dc1'`)
}
