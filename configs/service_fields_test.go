package configs

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

// TestServiceConsulFields: a service's tagged_addresses, socket_path,
// ports and locality are read from HCL (Consul's own spelling) and YAML
// alike, and bad ports are refused naming the key.
func TestServiceConsulFields(t *testing.T) {
	t.Parallel()
	hcl := `
service {
  name = "web"
  port = 8080
  socket_path = "/run/web.sock"
  tagged_addresses {
    lan_ipv4 { address = "10.0.0.5" port = 8080 }
    wan { address = "203.0.113.5" port = 80 }
  }
  ports = [
    { name = "http" port = 8080 default = true },
    { name = "metrics" port = 9102 },
  ]
  locality { region = "us-east-1" zone = "us-east-1a" }
}
`
	yaml := `
services:
  - name: web
    port: 8080
    socket_path: /run/web.sock
    tagged_addresses:
      lan_ipv4: {address: 10.0.0.5, port: 8080}
      wan: {address: 203.0.113.5, port: 80}
    ports:
      - {name: http, port: 8080, default: true}
      - {name: metrics, port: 9102}
    locality: {region: us-east-1, zone: us-east-1a}
`
	want := ServiceDefinition{
		Name: "web", Port: 8080, SocketPath: "/run/web.sock",
		TaggedAddresses: map[string]ServiceAddress{"lan_ipv4": {Address: "10.0.0.5", Port: 8080}, "wan": {Address: "203.0.113.5", Port: 80}},
		Ports:           []ServicePort{{Name: "http", Port: 8080, Default: true}, {Name: "metrics", Port: 9102}},
		Locality:        &Locality{Region: "us-east-1", Zone: "us-east-1a"},
	}
	for name, files := range map[string]map[string]string{
		"hcl":  {"web.hcl": hcl},
		"yaml": {"web.yaml": yaml},
	} {
		c := mustLoad(t, []string{"-dev", "-config-dir", writeFiles(t, files)}, nil)
		if len(c.Services) != 1 {
			t.Fatalf("%s: %d services, want 1", name, len(c.Services))
		}
		got := c.Services[0]
		got.Tags, got.Meta, got.Checks = nil, nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: service = %+v, want %+v", name, got, want)
		}
	}

	for _, tc := range []struct{ ports, says string }{
		{"[{name: a, port: 1}]", "services[0].ports: exactly one port"},
		{"[{name: a, port: 1, default: true}, {name: a, port: 2}]", "services[0].ports[1].name"},
		{"[{name: a, port: 0, default: true}]", "services[0].ports[0].port"},
	} {
		dir := writeFiles(t, map[string]string{"s.yaml": "services:\n  - name: s\n    ports: " + tc.ports + "\n"})
		_, err := Load([]string{"-dev", "-config-dir", dir}, nil, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ports %s: Load error = %v, want it to name %q", tc.ports, err, tc.says)
		}
	}
}
