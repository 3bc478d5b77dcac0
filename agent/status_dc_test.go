package agent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestStatusOfAnotherDatacenter: /v1/status/leader and /peers take ?dc=
// as Consul's, through a client agent; an unknown datacenter is an error.
func TestStatusOfAnotherDatacenter(t *testing.T) {
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Datacenter: "dc1"})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc2"})
	testcluster.Federate(t, dc1, dc2)
	want := dc2.WaitLeader(10 * time.Second).ServerAddr()
	status := dc1.Clients[0].API().Status()
	testcluster.Eventually(t, 10*time.Second, func() error {
		leader, err := status.LeaderWithQueryOptions(&api.QueryOptions{Datacenter: "dc2"})
		if err != nil {
			return err
		}
		peers, err := status.PeersWithQueryOptions(&api.QueryOptions{Datacenter: "dc2"})
		if err != nil {
			return err
		}
		if leader != want || len(peers) != 1 || peers[0] != want {
			return fmt.Errorf("dc2 leader %q, peers %v; want %q", leader, peers, want)
		}
		return nil
	})
	if local, err := status.Leader(); err != nil || local == want || local == "" {
		t.Errorf("dc1's leader = %q, %v; want dc1's server, not %q", local, err, want)
	}
	if leader, err := status.LeaderWithQueryOptions(&api.QueryOptions{Datacenter: "dc9"}); err == nil || !strings.Contains(err.Error(), "dc9") {
		t.Errorf("leader of dc9 = %q, %v; want an error naming dc9", leader, err)
	}
}
