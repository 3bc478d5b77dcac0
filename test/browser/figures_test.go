package browser

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// The figures issue 15 asks for, and the bounds this test enforces. The
// bounds are far above the targets: the machines that run it are shared and
// often loaded, and a CPU-starved Chromium alone spends more than a target
// (at a load average of 35 on two cores the service page took 1.4s). They
// catch a page that waits for a poll or never completes; what catches a
// request per service, whatever the load, is the count of requests a page
// makes (maxRequests). The figures themselves are logged, to be taken on a
// quiet machine.
const (
	servicesTarget, servicesBound = 300 * time.Millisecond, 5 * time.Second
	detailTarget, detailBound     = 150 * time.Millisecond, 4 * time.Second
	changeTarget, changeBound     = time.Second, 3 * time.Second
	maxRequests                   = 8
)

// TestUIFigures measures, with 500 services of 4 instances each on a dev
// agent, how soon after navigation the services page and a service's page
// are complete (the UI's meridian:ready performance mark, median of 5), and
// how soon a check's change shows on an open page (median of 5).
func TestUIFigures(t *testing.T) {
	chromiumPath(t)
	if testing.Short() {
		t.Skip("browser figures did not run: -short (2000 instances to register)")
	}
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true, Datacenter: "dc1", Configure: withUI})
	c := dc1.Servers[0].API()
	const services, instances = 500, 4
	reg := func(svc, inst int, status string) error {
		id := fmt.Sprintf("svc-%03d-%d", svc, inst)
		_, err := c.Catalog().Register(&api.CatalogRegistration{
			Node:    fmt.Sprintf("node-%d", inst),
			Address: fmt.Sprintf("10.0.0.%d", inst+1),
			Service: &api.AgentService{ID: id, Service: fmt.Sprintf("svc-%03d", svc), Port: 8000 + inst, Tags: []string{"figures", fmt.Sprintf("shard-%d", svc%7)}},
			Check:   &api.AgentCheck{CheckID: id, Name: "health of " + id, ServiceID: id, Status: status, Output: "ok"},
		}, nil)
		return err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= services*instances {
					return
				}
				if err := reg(i/instances, i%instances, api.HealthPassing); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("register: %v", err)
	}

	b := newBrowser(t, "http://"+dc1.Servers[0].HTTPAddr()+"/ui/")
	ready := func(hash, done string) time.Duration {
		b.open(hash)
		b.waitJS(20*time.Second, hash+" ready", `performance.getEntriesByName('meridian:ready').length > 0 && (`+done+`)`)
		ms, err := eval[float64](b, `performance.getEntriesByName('meridian:ready')[0].startTime`)
		if err != nil {
			t.Fatalf("read the ready mark: %v", err)
		}
		n, err := eval[int](b, `performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/') && e.startTime <= performance.getEntriesByName('meridian:ready')[0].startTime).length`)
		if err != nil || n > maxRequests {
			t.Errorf("%s made %d API requests before it was ready (%v), want at most %d", hash, n, err, maxRequests)
		}
		return time.Duration(ms * float64(time.Millisecond))
	}
	measure := func(name string, target, bound time.Duration, run func() time.Duration) {
		var d []time.Duration
		for range 5 {
			d = append(d, run())
		}
		slices.Sort(d)
		t.Logf("%s: median %v of 5 (%v), target %v", name, d[2], d, target)
		if d[2] > bound {
			t.Errorf("%s: median %v, over the bound %v (target %v)", name, d[2], bound, target)
		}
	}
	measure("services page (500 services, 2000 instances) ready after navigation", servicesTarget, servicesBound, func() time.Duration {
		return ready("#/services", `document.querySelectorAll('tr[data-service]').length === 501`) // and the server's own consul service
	})
	measure("service page (4 instances) ready after navigation", detailTarget, detailBound, func() time.Duration {
		return ready("#/services/svc-250", `document.querySelectorAll('[data-instance]').length === 4`)
	})
	b.open("#/services/svc-250")
	b.waitJS(10*time.Second, "instances", `document.querySelectorAll('[data-instance][data-status="passing"]').length === 4`)
	status := []string{api.HealthCritical, api.HealthPassing}
	i := 0
	measure("a check's change on the open service page", changeTarget, changeBound, func() time.Duration {
		st := status[i%2]
		i++
		start := time.Now()
		if err := reg(250, 0, st); err != nil {
			t.Fatalf("register: %v", err)
		}
		b.waitJS(10*time.Second, "change shown", fmt.Sprintf(`!!document.querySelector('[data-instance="svc-250-0"][data-status=%q]')`, st))
		return time.Since(start)
	})
	b.screenshot(t.TempDir(), "services-500")
}
