package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
)

// federationRoutes is what the CLI reads of /v1/operator/federation/routes.
type federationRoutes struct {
	Datacenter, Server string
	Links              []struct {
		Datacenter, Server, Addr string
		Up                       bool
		Routes                   int
		Error                    string
	}
	Routes []struct {
		Datacenter, NextHop string
		Path                []string
		RTT                 string
		Hops                int
	}
}

func runFederationRoutes(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("operator federation routes [options]",
		"Prints one server's links to the servers of neighbour datacenters (the route exchange\n"+
			"with each, up or down) and its best route to every reachable datacenter, nearest first:\n"+
			"destination, next hop, path, round-trip time and hops. A datacenter reached through\n"+
			"another one is relayed by it.", stderr)
	dc := fs.String("datacenter", "", "ask a server of this datacenter (default: the agent's)")
	asJSON := fs.Bool("format-json", false, "print the answer as JSON")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	path := "/v1/operator/federation/routes"
	if *dc != "" {
		path += "?dc=" + url.QueryEscape(*dc)
	}
	var v federationRoutes
	if err := client().do("GET", path, &v); err != nil {
		return fail(stderr, "operator federation routes", err)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	fmt.Fprintf(stdout, "Server %s of %s\n\nLinks:\n", v.Server, v.Datacenter)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "   Datacenter\tServer\tAddress\tStatus\tRoutes\tError")
	for _, l := range v.Links {
		status := "down"
		if l.Up {
			status = "up"
		}
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t%d\t%s\n", l.Datacenter, l.Server, l.Addr, status, l.Routes, l.Error)
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nRoutes:")
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "   Datacenter\tNext Hop\tPath\tRTT\tHops")
	for _, r := range v.Routes {
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t%d\n", r.Datacenter, r.NextHop, strings.Join(r.Path, " > "), r.RTT, r.Hops)
	}
	tw.Flush()
	return 0
}
