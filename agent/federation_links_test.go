package agent_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestFederationHubAndSpoke starts dc1, dc2 and dc3 (one server each) on a
// bridge that cuts every path between dc2 and dc3, and joins the spokes to
// the hub dc1, with federation.links set on the spokes and with links
// learned: dc1's WAN members are all three servers, each spoke's only dc1's
// and its own (so `meridian members -wan` shows links only), none is ever
// seen failed while the test watches, /v1/agent/self says which
// datacenters are linked, and each spoke routes to dc1.
func TestFederationHubAndSpoke(t *testing.T) {
	for _, configured := range []bool{true, false} {
		t.Run(fmt.Sprintf("configured=%v", configured), func(t *testing.T) {
			b := testcluster.NewBridge()
			var cs []*testcluster.Cluster
			for _, dc := range []string{"dc1", "dc2", "dc3"} {
				cs = append(cs, testcluster.New(t, testcluster.Options{
					Servers: 1, Datacenter: dc, Bridge: b,
					Configure: func(cfg *configs.Config) {
						if configured && dc != "dc1" {
							cfg.Federation.Links = []string{"dc1"}
						}
					},
				}))
			}
			hub, dc2, dc3 := cs[0].Servers[0], cs[1].Servers[0], cs[2].Servers[0]
			b.Cut(dc2.ID(), dc3.ID())
			for _, n := range []*testcluster.Node{dc2, dc3} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := n.Agent().Join(ctx, hub.WANAddr(), true)
				cancel()
				if err != nil {
					t.Fatalf("wan join %s to %s: %v", n.ID(), hub.WANAddr(), err)
				}
			}
			wanName := func(n *testcluster.Node, dc string) string { return n.Name + "." + dc }
			want := map[*testcluster.Node][]string{
				hub: {wanName(hub, "dc1"), wanName(dc2, "dc2"), wanName(dc3, "dc3")},
				dc2: {wanName(hub, "dc1"), wanName(dc2, "dc2")},
				dc3: {wanName(hub, "dc1"), wanName(dc3, "dc3")},
			}
			// members is n's WAN members as /v1/agent/members?wan=1
			// lists them, "name" alive and "name(status)" otherwise.
			members := func(n *testcluster.Node) (string, error) {
				ms, err := n.API().Agent().Members(true)
				if err != nil {
					return "", err
				}
				var out []string
				for _, m := range ms {
					s := m.Name
					if m.Status != 1 {
						s += fmt.Sprintf("(%d)", m.Status)
					}
					out = append(out, s)
				}
				slices.Sort(out)
				return strings.Join(out, " "), nil
			}
			testcluster.Eventually(t, 20*time.Second, func() error {
				for n, w := range want {
					got, err := members(n)
					if err != nil {
						return err
					}
					if got != strings.Join(w, " ") {
						return fmt.Errorf("%s: WAN members %q, want %q", n.ID(), got, strings.Join(w, " "))
					}
				}
				return nil
			})
			start := time.Now()
			for time.Since(start) < 10*time.Second {
				for n, w := range want {
					got, err := members(n)
					if err != nil {
						t.Fatal(err)
					}
					if got != strings.Join(w, " ") {
						t.Fatalf("%s after %v: WAN members %q, want %q", n.ID(), time.Since(start), got, strings.Join(w, " "))
					}
				}
				time.Sleep(200 * time.Millisecond) // the observation's sampling period
			}
			for _, n := range []*testcluster.Node{dc2, dc3} {
				self, err := n.API().Agent().Self()
				if err != nil {
					t.Fatal(err)
				}
				stats, _ := self["Stats"]["serf_wan"].(map[string]any)
				source := map[bool]string{true: "configured", false: "learned"}[configured]
				if got, want := stats["links"], "dc1 ("+source+", 1/1 alive)"; got != want {
					t.Errorf("%s: /v1/agent/self Stats.serf_wan.links = %v, want %q", n.ID(), got, want)
				}
				if known, ok := n.Agent().Server().DatacenterStatus("dc1"); !known || !ok {
					t.Errorf("%s cannot route to dc1", n.ID())
				}
			}
		})
	}
}
