package agent_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestAgentServiceConsulFields: a service registered through a client
// agent with Consul's TaggedAddresses, SocketPath, Ports and Locality
// answers them on /v1/agent/services and /v1/agent/service/:id, and,
// synced, in the catalog (/v1/catalog/node, /v1/catalog/service,
// /v1/health/service); the same fields in a config file's service do too.
// Bad Ports are refused naming the field.
func TestAgentServiceConsulFields(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true, Configure: func(cfg *configs.Config) {
		if cfg.Server {
			return
		}
		cfg.Services = append(cfg.Services, configs.ServiceDefinition{
			ID: "cache-1", Name: "cache", Port: 6379,
			TaggedAddresses: map[string]configs.ServiceAddress{"wan": {Address: "198.51.100.7", Port: 16379}},
			SocketPath:      "/run/cache.sock",
			Ports:           []configs.ServicePort{{Name: "main", Port: 6379, Default: true}, {Name: "admin", Port: 6380}},
			Locality:        &configs.Locality{Region: "eu-west-1", Zone: "eu-west-1b"},
		})
	}})
	c.WaitLeader(10 * time.Second)
	client := c.Clients[0].API()
	tagged := map[string]api.ServiceAddress{
		"lan_ipv4": {Address: "10.0.0.5", Port: 8080},
		"wan":      {Address: "203.0.113.5", Port: 80},
	}
	ports := api.ServicePorts{{Name: "http", Port: 8080, Default: true}, {Name: "metrics", Port: 9102}}
	locality := &api.Locality{Region: "us-east-1", Zone: "us-east-1a"}
	if err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "web-1", Name: "web", Port: 8080, Address: "10.0.0.5",
		TaggedAddresses: tagged, SocketPath: "/run/web.sock", Ports: ports, Locality: locality,
	}); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	same := func(where string, gotTagged map[string]api.ServiceAddress, gotSocket string, gotPorts api.ServicePorts, gotLocality *api.Locality) {
		t.Helper()
		if !reflect.DeepEqual(gotTagged, tagged) || gotSocket != "/run/web.sock" || !reflect.DeepEqual(gotPorts, ports) || !reflect.DeepEqual(gotLocality, locality) {
			t.Errorf("%s: TaggedAddresses %v, SocketPath %q, Ports %v, Locality %+v; want what was registered", where, gotTagged, gotSocket, gotPorts, gotLocality)
		}
	}

	svcs, err := client.Agent().Services()
	if err != nil || svcs["web-1"] == nil {
		t.Fatalf("agent services = %v, %v", svcs, err)
	}
	s := svcs["web-1"]
	same("/v1/agent/services", s.TaggedAddresses, s.SocketPath, s.Ports, s.Locality)
	s, _, err = client.Agent().Service("web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	same("/v1/agent/service/web-1", s.TaggedAddresses, s.SocketPath, s.Ports, s.Locality)

	// The registration answers once it is in the catalog.
	node, _, err := client.Catalog().Node(c.Clients[0].Name, nil)
	if err != nil || node == nil || node.Services["web-1"] == nil {
		t.Fatalf("catalog node = %+v, %v; want web-1 on it", node, err)
	}
	s = node.Services["web-1"]
	same("/v1/catalog/node", s.TaggedAddresses, s.SocketPath, s.Ports, s.Locality)
	entries, _, err := client.Health().Service("web", "", false, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("health of web = %v, %v", entries, err)
	}
	s = entries[0].Service
	same("/v1/health/service/web", s.TaggedAddresses, s.SocketPath, s.Ports, s.Locality)
	cs, _, err := client.Catalog().Service("web", "", nil)
	if err != nil || len(cs) != 1 || !reflect.DeepEqual(cs[0].ServiceTaggedAddresses, tagged) || !reflect.DeepEqual(cs[0].ServiceLocality, locality) {
		t.Errorf("catalog service web = %+v, %v; want its tagged addresses and locality", cs, err)
	}

	cache, _, err := client.Agent().Service("cache-1", nil)
	if err != nil || cache.TaggedAddresses["wan"].Port != 16379 || cache.SocketPath != "/run/cache.sock" ||
		len(cache.Ports) != 2 || !cache.Ports[0].Default || cache.Locality == nil || cache.Locality.Zone != "eu-west-1b" {
		t.Errorf("config-file service cache-1 = %+v, %v; want its tagged address, socket, ports and locality", cache, err)
	}

	for _, bad := range []struct {
		ports api.ServicePorts
		says  string
	}{
		{api.ServicePorts{{Name: "a", Port: 1}}, "Default"},
		{api.ServicePorts{{Name: "a", Port: 1, Default: true}, {Name: "a", Port: 2}}, "unique"},
		{api.ServicePorts{{Name: "", Port: 1, Default: true}}, "Ports[0].Name"},
	} {
		err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "bad", Name: "bad", Ports: bad.ports})
		if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("register with Ports %v = %v, want 400 saying %q", bad.ports, err, bad.says)
		}
	}
}
