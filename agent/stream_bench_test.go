package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// BenchmarkStreamingWatchers parks N blocking queries of one service on a
// client agent (use_streaming_backend), flips the service's check and
// waits for every watcher's new answer, once per iteration. It reports
// what one flip cost the server: the snapshots it sent and encoded and
// the subscriptions it served, which stay one each whatever N; ns/op is
// the time from the flip to the last answer, with the watchers' HTTP
// cost on the same cores.
//
//	go test -run '^$' -bench StreamingWatchers -benchtime 20x ./agent/
func BenchmarkStreamingWatchers(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			c := testcluster.New(b, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
			srv := c.Servers[0].Agent().Server()
			mgmt := c.Servers[0].API()
			register := func(status string) {
				if _, err := mgmt.Catalog().Register(&api.CatalogRegistration{
					Node: "n1", Address: "10.0.0.1",
					Service: &api.AgentService{ID: "web", Service: "web", Port: 80},
					Check:   &api.AgentCheck{Node: "n1", CheckID: "web-check", Name: "web", Status: status, ServiceID: "web"},
				}, nil); err != nil {
					b.Fatal(err)
				}
			}
			register(api.HealthPassing)
			httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n + 10}}
			defer httpc.CloseIdleConnections()
			addr := c.Clients[0].HTTPAddr()
			lone, err := herdGet(context.Background(), httpc, addr, "/v1/health/service/web", "")
			if err != nil {
				b.Fatal(err)
			}
			index := lone.index
			var open int64
			before := srv.Subscriptions()
			b.ResetTimer()
			for i := range b.N {
				var wg sync.WaitGroup
				errs := make(chan error, n)
				next := make([]uint64, n)
				for j := range n {
					wg.Go(func() {
						resp, err := httpc.Get("http://" + addr + "/v1/health/service/web?index=" + strconv.FormatUint(index, 10) + "&wait=60s")
						if err != nil {
							errs <- err
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						next[j], _ = strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
					})
				}
				b.StopTimer()
				// The view is up once the server serves its subscription;
				// the watchers park on it.
				testcluster.Eventually(b, 30*time.Second, func() error {
					if srv.Subscriptions().Open == 0 {
						return fmt.Errorf("no subscription yet")
					}
					return nil
				})
				open = max(open, srv.Subscriptions().Open)
				b.StartTimer()
				register([]string{api.HealthCritical, api.HealthPassing}[i%2])
				wg.Wait()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				for j, idx := range next {
					if idx <= index {
						b.Fatalf("watcher %d: index %d, want past %d", j, idx, index)
					}
				}
				index = next[0]
			}
			b.StopTimer()
			after := srv.Subscriptions()
			b.ReportMetric(float64(after.Snapshots-before.Snapshots)/float64(b.N), "snapshots/flip")
			b.ReportMetric(float64(after.Encodes-before.Encodes)/float64(b.N), "encodes/flip")
			b.ReportMetric(float64(open), "subscriptions")
		})
	}
}
