package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/serf/coordinate"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/rpc"
)

// lineCoord is a valid coordinate x seconds along the first axis, with no
// height: the distance between two of them is the difference of their x.
func lineCoord(x float64) *coordinate.Coordinate {
	c := coordinate.NewCoordinate(coordinate.DefaultConfig())
	c.Vec[0] = x
	c.Height = 0
	c.Error = 0.5
	return c
}

// Injected distances: n1 at 30ms, n2 at 10ms, n3 at 20ms, client1 at 0;
// n4 has no coordinate.
var lineNodes = map[string]float64{"client1": 0, "n1": 0.030, "n2": 0.010, "n3": 0.020}

// registerWeb registers nodes n1..n4, each with a "web" instance and a
// passing check for it.
func registerWeb(t *testing.T, client *api.Client) {
	t.Helper()
	for i := 1; i <= 4; i++ {
		n := fmt.Sprintf("n%d", i)
		reg := &api.CatalogRegistration{
			Node: n, Address: fmt.Sprintf("10.0.0.%d", i),
			Service: &api.AgentService{ID: "web-" + n, Service: "web", Port: 80},
			Check:   &api.AgentCheck{CheckID: "web-" + n + "-ok", Name: "ok", ServiceID: "web-" + n, Status: api.HealthPassing},
		}
		if _, err := client.Catalog().Register(reg, nil); err != nil {
			t.Fatalf("Register(%s): %v", n, err)
		}
	}
}

// injectCoordinates sends lineNodes' coordinates through api and waits
// until every server lists them.
func injectCoordinates(t *testing.T, c *testcluster.Cluster, via *api.Client) {
	t.Helper()
	for n, x := range lineNodes {
		if _, err := via.Coordinate().Update(&api.CoordinateEntry{Node: n, Coord: lineCoord(x)}, nil); err != nil {
			t.Fatalf("Coordinate().Update(%s): %v", n, err)
		}
	}
	for _, s := range c.Servers {
		testcluster.Eventually(t, 10*time.Second, func() error {
			cs, _, err := s.API().Coordinate().Nodes(&api.QueryOptions{AllowStale: true})
			if err != nil {
				return err
			}
			got := map[string]float64{}
			for _, e := range cs {
				got[e.Node] = e.Coord.Vec[0]
			}
			for n, x := range lineNodes {
				if v, ok := got[n]; !ok || v != x {
					return fmt.Errorf("%s lists %v, want %s at %v", s.Name, got, n, x)
				}
			}
			return nil
		})
	}
}

func names[T any](items []T, node func(T) string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, node(it))
	}
	return out
}

// TestCoordinatesAndNear stores injected coordinates through a follower
// and a client, then sorts catalog and health answers by distance.
func TestCoordinatesAndNear(t *testing.T) {
	t.Parallel()
	// The agents' own coordinates would overwrite client1's injected one.
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1, CoordinateInterval: time.Hour, TuneServer: defaultRaftTimings})
	leader := c.WaitLeader(10 * time.Second)
	follower := c.Followers(leader)[1]
	client := c.Clients[0].API()
	registerWeb(t, client)

	// A blocking query on the coordinates wakes with the batch.
	_, meta, err := client.Coordinate().Nodes(nil)
	if err != nil {
		t.Fatalf("Coordinate().Nodes: %v", err)
	}
	woke := make(chan error, 1)
	go func() {
		_, m, err := client.Coordinate().Nodes(&api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 10 * time.Second})
		if err == nil && m.LastIndex <= meta.LastIndex {
			err = fmt.Errorf("index %d, want past %d", m.LastIndex, meta.LastIndex)
		}
		woke <- err
	}()
	injectCoordinates(t, c, follower.API())
	select {
	case err := <-woke:
		if err != nil {
			t.Errorf("blocking Coordinate().Nodes: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("blocking Coordinate().Nodes did not wake within 10s of the update")
	}

	cs, _, err := client.Coordinate().Node("N2", nil)
	if err != nil || len(cs) != 1 || cs[0].Node != "n2" || cs[0].Coord.Vec[0] != 0.010 {
		t.Errorf("Coordinate().Node(N2) = %+v, %v; want n2 at 10ms", cs, err)
	}
	if _, _, err := client.Coordinate().Node("n4", nil); !isStatus(err, 404) {
		t.Errorf("Coordinate().Node(n4) = %v, want 404", err)
	}

	svcNode := func(e *api.ServiceEntry) string { return e.Node.Node }
	catNode := func(e *api.CatalogService) string { return e.Node }
	tests := []struct {
		near string
		want []string
	}{
		{"", []string{"n1", "n2", "n3", "n4"}},
		{"n1", []string{"n1", "n3", "n2", "n4"}},
		{"N2", []string{"n2", "n3", "n1", "n4"}},
		{"client1", []string{"n2", "n3", "n1", "n4"}},
		{"_agent", []string{"n2", "n3", "n1", "n4"}}, // client1's own API
		{"n4", []string{"n1", "n2", "n3", "n4"}},     // no coordinate: unchanged
		{"nope", []string{"n1", "n2", "n3", "n4"}},
	}
	for _, tc := range tests {
		t.Run("near="+tc.near, func(t *testing.T) {
			for _, opts := range []*api.QueryOptions{{Near: tc.near}, {Near: tc.near, AllowStale: true}} {
				// Twice: the second answer may come from a cache.
				for range 2 {
					entries, _, err := client.Health().Service("web", "", false, opts)
					if got := names(entries, svcNode); err != nil || !slices.Equal(got, tc.want) {
						t.Errorf("Health().Service(web, %+v) = %v, %v; want %v", opts, got, err, tc.want)
					}
				}
				svcs, _, err := client.Catalog().Service("web", "", opts)
				if got := names(svcs, catNode); err != nil || !slices.Equal(got, tc.want) {
					t.Errorf("Catalog().Service(web, %+v) = %v, %v; want %v", opts, got, err, tc.want)
				}
				checks, _, err := client.Health().Checks("web", opts)
				if got := names(checks, func(c *api.HealthCheck) string { return c.Node }); err != nil || !slices.Equal(got, tc.want) {
					t.Errorf("Health().Checks(web, %+v) = %v, %v; want %v", opts, got, err, tc.want)
				}
			}
		})
	}
	// ?near=_ip sorts from the node registered at the requester's address
	// (X-Forwarded-For first): n2's.
	req, err := http.NewRequest("GET", "http://"+c.Clients[0].HTTPAddr()+"/v1/health/service/web?near=_ip", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", "10.0.0.2, 192.0.2.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var viaIP []*api.ServiceEntry
	err = json.NewDecoder(resp.Body).Decode(&viaIP)
	resp.Body.Close()
	if got := names(viaIP, svcNode); err != nil || !slices.Equal(got, []string{"n2", "n3", "n1", "n4"}) {
		t.Errorf("health of web near=_ip from 10.0.0.2 = %v, %v; want n2's order", got, err)
	}

	// The unsorted answer was not disturbed by the sorted ones.
	entries, _, err := client.Health().Service("web", "", false, nil)
	if got := names(entries, svcNode); err != nil || !slices.Equal(got, []string{"n1", "n2", "n3", "n4"}) {
		t.Errorf("Health().Service(web) after near reads = %v, %v; want n1..n4", got, err)
	}

	nodes, _, err := client.Catalog().Nodes(&api.QueryOptions{Near: "n1"})
	want := []string{"n1", "n3", "n2", "client1", "n4", "server1", "server2", "server3"}
	if got := names(nodes, func(n *api.Node) string { return n.Node }); err != nil || !slices.Equal(got, want) {
		t.Errorf("Catalog().Nodes(near n1) = %v, %v; want %v", got, err, want)
	}

	// A new coordinate reorders at once, though the service did not change.
	if _, err := client.Coordinate().Update(&api.CoordinateEntry{Node: "n4", Coord: lineCoord(0.001)}, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		entries, _, err := client.Health().Service("web", "", false, &api.QueryOptions{Near: "_agent"})
		if got := names(entries, svcNode); err != nil || !slices.Equal(got, []string{"n4", "n2", "n3", "n1"}) {
			return fmt.Errorf("Health().Service(web, near _agent) = %v, %v; want n4 first", got, err)
		}
		return nil
	})

	// Deregistering a node drops its coordinate.
	if _, err := client.Catalog().Deregister(&api.CatalogDeregistration{Node: "n3"}, nil); err != nil {
		t.Fatal(err)
	}
	all, _, err := client.Coordinate().Nodes(nil)
	if err != nil || slices.Contains(names(all, func(e *api.CoordinateEntry) string { return e.Node }), "n3") {
		t.Errorf("Coordinate().Nodes after deregistering n3 = %v, %v; want no n3", all, err)
	}
}

func isStatus(err error, code int) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == code
}

func TestCoordinateUpdateRejectsBadCoordinates(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	client := c.Clients[0].API()
	short := coordinate.NewCoordinate(coordinate.DefaultConfig())
	short.Vec = short.Vec[:3]
	for _, tc := range []struct {
		name string
		e    *api.CoordinateEntry
	}{
		{"three dimensions", &api.CoordinateEntry{Node: "client1", Coord: short}},
		{"no coordinate", &api.CoordinateEntry{Node: "client1"}},
		{"no node", &api.CoordinateEntry{Coord: lineCoord(0)}},
		{"segment", &api.CoordinateEntry{Node: "client1", Segment: "alpha", Coord: lineCoord(0)}},
	} {
		if _, err := client.Coordinate().Update(tc.e, nil); !isStatus(err, 400) {
			t.Errorf("Coordinate().Update(%s) = %v, want 400", tc.name, err)
		}
	}
	code, body := rawRequest(t, "PUT", "http://"+c.Clients[0].HTTPAddr()+"/v1/coordinate/update", []byte(`{"Node":"client1","Coord":{"Vec":[1,2]}}`))
	if code != 400 || body == "" {
		t.Errorf("PUT /v1/coordinate/update with 2 dimensions = %d %q, want 400 and a reason", code, body)
	}

	// JSON cannot carry NaN; RPC can, from the client agent over the wire.
	nan := &catalog.Coord{Vec: make([]float64, catalog.CoordDimension)}
	nan.Vec[2] = math.NaN()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := rpc.Write[catalog.CoordinateEntry]{Args: catalog.CoordinateEntry{Node: "client1", Coord: nan}}
	if err := c.Clients[0].Agent().RPC(ctx, rpc.MethodCoordinateUpdate, &req, &rpc.WriteResult{}); !errors.Is(err, rpc.ErrBadRequest) {
		t.Errorf("Coordinate.Update RPC with NaN = %v, want %v", err, rpc.ErrBadRequest)
	}
}

func TestCoordinatesSurviveSnapshotAndRestart(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, CoordinateInterval: time.Hour})
	srv := c.Servers[0]
	client := srv.API()
	registerWeb(t, client)
	injectCoordinates(t, c, client)
	before, meta, err := client.Coordinate().Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Agent().Server().Snapshot(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	srv.Kill()
	srv.Restart()
	c.WaitLeader(20 * time.Second)

	testcluster.Eventually(t, 20*time.Second, func() error {
		after, m, err := srv.API().Coordinate().Nodes(nil)
		if err != nil {
			return err
		}
		if len(after) != len(before) || m.LastIndex != meta.LastIndex {
			return fmt.Errorf("after restart: %d coordinates at index %d, want %d at %d", len(after), m.LastIndex, len(before), meta.LastIndex)
		}
		for i := range after {
			if after[i].Node != before[i].Node || !slices.Equal(after[i].Coord.Vec, before[i].Coord.Vec) {
				return fmt.Errorf("after restart: %+v, want %+v", after[i], before[i])
			}
		}
		return nil
	})
	entries, _, err := srv.API().Health().Service("web", "", false, &api.QueryOptions{Near: "n1"})
	if got := names(entries, func(e *api.ServiceEntry) string { return e.Node.Node }); err != nil || !slices.Equal(got, []string{"n1", "n3", "n2", "n4"}) {
		t.Errorf("Health().Service(web, near n1) after restart = %v, %v; want n1 n3 n2 n4", got, err)
	}
}
