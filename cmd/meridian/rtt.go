package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/meridian/meridian/catalog"
)

func runRTT(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("rtt [options] NODE1 [NODE2]",
		"Estimates the round-trip time between two nodes from their network coordinates.\n"+
			"NODE2 defaults to the agent's own node. With -wan, nodes are servers named\n"+
			"node.dc and WAN coordinates are used.", stderr)
	wan := fs.Bool("wan", false, "use WAN coordinates between servers (names node.dc)")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError(fs, "meridian rtt: expected one or two node names")
	}
	c := client()
	a, b := fs.Arg(0), fs.Arg(1)
	if b == "" {
		var self struct {
			Config struct{ NodeName, Datacenter string }
		}
		if err := c.do("GET", "/v1/agent/self", &self); err != nil {
			return fail(stderr, "rtt", err)
		}
		b = self.Config.NodeName
		if *wan {
			b += "." + self.Config.Datacenter
		}
	}
	coords := map[string]*catalog.Coord{}
	kind := "LAN"
	if *wan {
		kind = "WAN"
		var dcs []catalog.DatacenterCoordinates
		if err := c.do("GET", "/v1/coordinate/datacenters", &dcs); err != nil {
			return fail(stderr, "rtt", err)
		}
		for _, dc := range dcs {
			for _, e := range dc.Coordinates {
				coords[strings.ToLower(e.Node)] = e.Coord
			}
		}
	} else {
		var nodes []catalog.CoordinateEntry
		if err := c.do("GET", "/v1/coordinate/nodes", &nodes); err != nil {
			return fail(stderr, "rtt", err)
		}
		for _, e := range nodes {
			coords[strings.ToLower(e.Node)] = e.Coord
		}
	}
	ca, cb := coords[strings.ToLower(a)], coords[strings.ToLower(b)]
	switch {
	case ca == nil:
		return fail(stderr, "rtt", fmt.Errorf("no %s coordinate for node %q", kind, a))
	case cb == nil:
		return fail(stderr, "rtt", fmt.Errorf("no %s coordinate for node %q", kind, b))
	}
	d, ok := ca.DistanceTo(cb)
	if !ok {
		return fail(stderr, "rtt", fmt.Errorf("coordinates of %q and %q are not comparable", a, b))
	}
	fmt.Fprintf(stdout, "Estimated %s <-> %s rtt: %.3f ms (using %s coordinates)\n", a, b, float64(d.Microseconds())/1000, kind)
	return 0
}
