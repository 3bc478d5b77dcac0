package agent_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestHTTPOnUnixSocket: addresses.http = unix:///path serves the HTTP API
// on a unix socket, as Consul's, and consul/api reaches it there; a path
// that already exists or a relative one is refused at start with the key.
func TestHTTPOnUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "http.sock")
	testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true, Configure: func(cfg *configs.Config) {
		cfg.Addresses.HTTP = "unix://" + sock
	}})
	cfg := api.DefaultConfig()
	cfg.Address = "unix://" + sock
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := client.Status().Leader()
		return err
	})
	if _, err := client.KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ addr, want string }{
		{"unix://" + sock, "already exists"},
		{"unix://relative.sock", "must be absolute"},
		{"unix://" + filepath.Join(t.TempDir(), "nodir", "x.sock"), "does not exist"},
	} {
		bad := testcluster.AgentConfig(t, "bad")
		bad.Addresses.HTTP = tc.addr
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "addresses.http") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("addresses.http %q: %v, want an error naming addresses.http and %q", tc.addr, err, tc.want)
		}
	}
}
