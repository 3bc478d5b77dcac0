package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestKVReplicationLagRelayed measures the replication lag of
// TestKVReplicationLag across one relay: dc3 replicates from dc2, which it
// cannot reach on the network, through dc1.
func TestKVReplicationLagRelayed(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for 10s")
	}
	b := testcluster.NewBridge()
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc1", Bridge: b, TuneServer: defaultRaftTimings})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc2", Bridge: b, TuneServer: defaultRaftTimings})
	dc3 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc3", Bridge: b, TuneServer: defaultRaftTimings, Configure: func(c *configs.Config) {
		c.Replication.KV = []configs.KVReplication{{Prefix: "config/global/", From: "dc2"}}
	}})
	testcluster.Federate(t, dc1, dc2, dc3)
	b.Partition(testcluster.IDs(dc2.Servers...), testcluster.IDs(dc3.Servers...))
	testcluster.Eventually(t, 30*time.Second, func() error {
		var v struct {
			Routes []struct {
				Datacenter, NextHop string
				Path                []string
			}
		}
		if _, err := dc3.Servers[0].API().Raw().Query("/v1/operator/federation/routes", &v, nil); err != nil {
			return err
		}
		for _, r := range v.Routes {
			if r.Datacenter == "dc2" {
				if r.NextHop != "dc1" {
					return fmt.Errorf("dc3 routes to dc2 through %s %v", r.NextHop, r.Path)
				}
				return nil
			}
		}
		return fmt.Errorf("no route to dc2: %+v", v.Routes)
	})
	// The round in flight rode the direct link, now cut: wait until one
	// comes through the relay.
	if _, err := dc2.Servers[0].API().KV().Put(&api.KVPair{Key: "config/global/marker", Value: []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testcluster.Eventually(t, 60*time.Second, func() error {
		p, _, err := dc3.Servers[0].API().KV().Get("config/global/marker", nil)
		if err == nil && p == nil {
			err = fmt.Errorf("marker not in dc3")
		}
		return err
	})
	t.Logf("first relayed round after the cut: %s", time.Since(start))
	lags := measureReplicationLag(t, dc2.Servers[0], dc3.Servers[0], 1000, 10*time.Second)
	p50, p99 := lags[len(lags)/2], lags[len(lags)*99/100]
	t.Logf("relayed replication lag over %d keys: p50 %s, p99 %s, max %s", len(lags), p50, p99, lags[len(lags)-1])
	if p99 > 5*time.Second {
		t.Errorf("relayed replication lag p99 = %s, want well under 5s (goal 500ms)", p99)
	}
}
