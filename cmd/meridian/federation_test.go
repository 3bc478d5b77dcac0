package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestFederationRoutes prints a server's links and routes through the
// CLI, as a table and as JSON, and shows its help.
func TestFederationRoutes(t *testing.T) {
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc1", InMemory: true})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc2", InMemory: true})
	testcluster.Federate(t, dc1, dc2)
	via := "-http-addr=" + dc1.Servers[0].HTTPAddr()
	var out, errOut string
	var code int
	testcluster.Eventually(t, 10*time.Second, func() error {
		code, out, errOut = meridian("operator", "federation", "routes", via)
		if code != 0 || !strings.Contains(out, "dc2       dc2") {
			return fmt.Errorf("exit %d: %s%s", code, out, errOut)
		}
		return nil
	})
	for _, want := range []string{"Server server1 of dc1", "Links:", "Routes:", "Next Hop", "up"} {
		if !strings.Contains(out, want) {
			t.Errorf("operator federation routes printed no %q:\n%s", want, out)
		}
	}
	// dc2's server learns its route to dc1 on its own exchange, which may
	// come a moment after dc1's.
	testcluster.Eventually(t, 10*time.Second, func() error {
		code, out, errOut = meridian("operator", "federation", "routes", via, "-format-json", "-datacenter", "dc2")
		if code != 0 || !strings.Contains(out, `"Datacenter": "dc2"`) || !strings.Contains(out, `"NextHop": "dc1"`) {
			return fmt.Errorf("operator federation routes -format-json -datacenter dc2 = exit %d, %q, %q; want dc2's view, routing to dc1", code, out, errOut)
		}
		return nil
	})
	code, _, errOut = meridian("operator", "federation", "routes", "--help")
	if code != 0 || !strings.Contains(errOut, "next hop, path, round-trip time and hops") {
		t.Errorf("operator federation routes --help = exit %d, %q", code, errOut)
	}
	code, _, errOut = meridian("operator", "federation", "routes", via, "extra")
	if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
		t.Errorf("operator federation routes extra = exit %d, %q; want 1 and a short error", code, errOut)
	}
}
