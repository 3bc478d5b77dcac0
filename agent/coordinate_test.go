package agent_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestAgentsSendTheirCoordinates checks that every agent, server and
// client, stores its own LAN coordinate in the catalog without being asked.
func TestAgentsSendTheirCoordinates(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 2, CoordinateInterval: 100 * time.Millisecond})
	client := c.Clients[0].API()
	want := []string{"client1", "client2", "server1"}
	testcluster.Eventually(t, 10*time.Second, func() error {
		cs, _, err := client.Coordinate().Nodes(nil)
		if err != nil {
			return err
		}
		var got []string
		for _, e := range cs {
			if e.Coord == nil || len(e.Coord.Vec) != 8 {
				return fmt.Errorf("%s has coordinate %+v, want 8 dimensions", e.Node, e.Coord)
			}
			got = append(got, e.Node)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("Coordinate().Nodes() lists %v, want %v", got, want)
		}
		return nil
	})
	cs, _, err := client.Coordinate().Node("client2", nil)
	if err != nil || len(cs) != 1 || cs[0].Node != "client2" {
		t.Errorf("Coordinate().Node(client2) = %+v, %v; want client2's entry", cs, err)
	}
	// ?near=_agent sorts by this agent's own coordinate; the set of nodes
	// is the same whatever the measured distances are.
	nodes, _, err := client.Catalog().Nodes(&api.QueryOptions{Near: "_agent"})
	var got []string
	for _, n := range nodes {
		got = append(got, n.Node)
	}
	slices.Sort(got)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Catalog().Nodes(near _agent) = %v, %v; want %v in some order", got, err, want)
	}
}
