package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meridian/meridian/configs"
)

// stringList is a repeatable string flag (-tag a -tag b).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// subcommand is one subcommand of a command: the names it answers to (the
// first is the one an error lists) and what runs it.
type subcommand struct {
	names []string
	run   func(args []string, stdout, stderr io.Writer) int
}

// runSubcommand runs the subcommand of `meridian cmd` that args[0] names,
// with the arguments after it. Asked for help (-h, -help, --help) it prints
// usage on stdout and returns 0; without a subcommand, or with an unknown
// one, it prints usage on stderr and returns 1.
func runSubcommand(cmd, usage string, subs []subcommand, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 1
	}
	known := make([]string, 0, len(subs))
	for _, sc := range subs {
		if slices.Contains(sc.names, args[0]) {
			return sc.run(args[1:], stdout, stderr)
		}
		known = append(known, sc.names[0])
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "meridian %s: unknown subcommand %q (%s)\n%s\n", cmd, args[0], strings.Join(known, ", "), usage)
	return 1
}

const servicesUsage = `Usage: meridian services register FILE | -name NAME [-id ID] [-port N] [-address A] [-tag T]...
       meridian services deregister ID`

func runServices(args []string, stdout, stderr io.Writer) int {
	return runSubcommand("services", servicesUsage, []subcommand{
		{[]string{"register"}, runServicesRegister},
		{[]string{"deregister"}, runServicesDeregister},
	}, args, stdout, stderr)
}

func runServicesRegister(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("services register [options] [FILE]",
		"Registers services with the agent, from a YAML or JSON definition file (service: or services:, as in the config files) or from flags.", stderr)
	name := fs.String("name", "", "service name")
	id := fs.String("id", "", "service ID (default the name)")
	port := fs.Int("port", 0, "service port")
	address := fs.String("address", "", "service address (default the node's)")
	var tags stringList
	fs.Var(&tags, "tag", "tag of the service; repeatable")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	var bodies []map[string]any
	switch {
	case fs.NArg() == 1 && *name == "":
		defs, err := loadServiceFile(fs.Arg(0))
		if err != nil {
			return fail(stderr, "services register", err)
		}
		bodies = defs
	case fs.NArg() == 0 && *name != "":
		bodies = []map[string]any{{"ID": *id, "Name": *name, "Port": *port, "Address": *address, "Tags": []string(tags)}}
	default:
		fmt.Fprintln(stderr, "meridian services register: give either a FILE or -name (not both)")
		return 1
	}
	c := client()
	for _, b := range bodies {
		if err := c.sendJSON("PUT", "/v1/agent/service/register", b); err != nil {
			return fail(stderr, "services register", err)
		}
		fmt.Fprintf(stdout, "Registered service: %s\n", b["Name"])
	}
	return 0
}

// loadServiceFile reads service definitions with the config loader, so a
// file has the shape the agent's config files have.
func loadServiceFile(path string) ([]map[string]any, error) {
	cfg, err := configs.Load([]string{"-dev", "-config-file", path}, nil, io.Discard)
	if err != nil {
		return nil, err
	}
	if len(cfg.Services) == 0 {
		return nil, fmt.Errorf("%s defines no service (want service: or services:)", path)
	}
	var out []map[string]any
	for _, s := range cfg.Services {
		b := map[string]any{
			"ID": s.ID, "Name": s.Name, "Tags": s.Tags, "Address": s.Address, "Port": s.Port,
			"Meta": s.Meta, "EnableTagOverride": s.EnableTagOverride,
		}
		if s.Weights.Passing != 0 || s.Weights.Warning != 0 {
			b["Weights"] = map[string]int{"Passing": s.Weights.Passing, "Warning": s.Weights.Warning}
		}
		var checks []map[string]any
		for _, c := range s.Checks {
			checks = append(checks, map[string]any{
				"CheckID": c.ID, "Name": c.Name, "Notes": c.Notes, "HTTP": c.HTTP, "Method": c.Method,
				"Header": c.Header, "Body": c.Body, "TLSSkipVerify": c.TLSSkipVerify, "TCP": c.TCP,
				"TTL": dur(c.TTL), "Args": c.Args, "Interval": dur(c.Interval), "Timeout": dur(c.Timeout),
				"DeregisterCriticalServiceAfter": dur(c.DeregisterCriticalServiceAfter),
				"SuccessBeforePassing":           c.SuccessBeforePassing, "FailuresBeforeCritical": c.FailuresBeforeCritical,
				"Status": c.Status,
			})
		}
		if len(checks) > 0 {
			b["Checks"] = checks
		}
		out = append(out, b)
	}
	return out, nil
}

func dur(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func runServicesDeregister(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("services deregister [options] ID", "Deregisters a service from the agent.", stderr)
	if ok, code := parseArgs(fs, args, 1, "one service ID"); !ok {
		return code
	}
	if err := client().do("PUT", "/v1/agent/service/deregister/"+url.PathEscape(fs.Arg(0)), nil); err != nil {
		return fail(stderr, "services deregister", err)
	}
	fmt.Fprintf(stdout, "Deregistered service: %s\n", fs.Arg(0))
	return 0
}

func runCatalog(args []string, stdout, stderr io.Writer) int {
	return runSubcommand("catalog", "Usage: meridian catalog datacenters | services [-node N] [-tags] | nodes [-service S] [-near N] [-detailed] [-node-meta k=v]", []subcommand{
		{[]string{"datacenters"}, runCatalogDatacenters},
		{[]string{"services"}, runCatalogServices},
		{[]string{"nodes"}, runCatalogNodes},
	}, args, stdout, stderr)
}

func runCatalogDatacenters(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("catalog datacenters [options]", "Lists the datacenters known, nearest first.", stderr)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	var dcs []string
	if err := client().do("GET", "/v1/catalog/datacenters", &dcs); err != nil {
		return fail(stderr, "catalog datacenters", err)
	}
	for _, dc := range dcs {
		fmt.Fprintln(stdout, dc)
	}
	return 0
}

// nodeMetaFlag adds the repeatable -node-meta key=value flag; its query
// sets the node-meta=key:value parameters, or says which one is malformed.
func nodeMetaFlag(fs *flag.FlagSet) func(q url.Values) error {
	var meta stringList
	fs.Var(&meta, "node-meta", "list only the nodes with this metadata, key=value (repeatable)")
	return func(q url.Values) error {
		for _, kv := range meta {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("-node-meta %q is not key=value", kv)
			}
			q.Add("node-meta", k+":"+v)
		}
		return nil
	}
}

func runCatalogServices(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("catalog services [options]", "Lists the services in the catalog, or those of one node.", stderr)
	rf := addReadFlags(fs)
	showTags := fs.Bool("tags", false, "show each service's tags")
	node := fs.String("node", "", "list only the services of this node")
	nodeMeta := nodeMetaFlag(fs)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	q := url.Values{}
	rf.set(q)
	if err := nodeMeta(q); err != nil {
		return usageError(fs, "meridian catalog services: "+err.Error())
	}
	c := client()
	svcs := map[string][]string{}
	if *node != "" {
		var n *struct {
			Services map[string]struct {
				Service string
				Tags    []string
			}
		}
		if err := c.do("GET", withQuery("/v1/catalog/node/"+url.PathEscape(*node), q), &n); err != nil {
			return fail(stderr, "catalog services", err)
		}
		if n == nil {
			fmt.Fprintf(stderr, "meridian catalog services: no node %q in the catalog\n", *node)
			return 1
		}
		for _, svc := range n.Services {
			svcs[svc.Service] = append(svcs[svc.Service], svc.Tags...)
		}
	} else if err := c.do("GET", withQuery("/v1/catalog/services", q), &svcs); err != nil {
		return fail(stderr, "catalog services", err)
	}
	names := make([]string, 0, len(svcs))
	for n := range svcs {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, n := range names {
		if *showTags {
			tags := slices.Compact(slices.Sorted(slices.Values(svcs[n])))
			fmt.Fprintf(tw, "%s\t%s\n", n, strings.Join(tags, ","))
		} else {
			fmt.Fprintln(tw, n)
		}
	}
	tw.Flush()
	return 0
}

// catalogNode is a node as /v1/catalog/nodes and /v1/catalog/service
// answer it, as far as `catalog nodes` prints it.
type catalogNode struct {
	Node, ID, Address, Datacenter string
	TaggedAddresses               map[string]string
	Meta                          map[string]string `json:"Meta"`
	NodeMeta                      map[string]string
}

func runCatalogNodes(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("catalog nodes [options]", "Lists the nodes in the catalog.", stderr)
	rf := addReadFlags(fs)
	service := fs.String("service", "", "list only the nodes that run this service")
	near := fs.String("near", "", "sort by round-trip time from this node (_agent: the agent's)")
	detailed := fs.Bool("detailed", false, "print the full node ID, tagged addresses and metadata")
	nodeMeta := nodeMetaFlag(fs)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	q := url.Values{}
	rf.set(q)
	if *near != "" {
		q.Set("near", *near)
	}
	if err := nodeMeta(q); err != nil {
		return usageError(fs, "meridian catalog nodes: "+err.Error())
	}
	var rows []catalogNode
	c := client()
	if *service != "" {
		var nodes []catalogNode
		if err := c.do("GET", withQuery("/v1/catalog/service/"+url.PathEscape(*service), q), &nodes); err != nil {
			return fail(stderr, "catalog nodes", err)
		}
		seen := map[string]bool{}
		for _, n := range nodes {
			if !seen[n.Node] {
				seen[n.Node] = true
				n.Meta = n.NodeMeta
				rows = append(rows, n)
			}
		}
	} else if err := c.do("GET", withQuery("/v1/catalog/nodes", q), &rows); err != nil {
		return fail(stderr, "catalog nodes", err)
	}
	if *near == "" {
		sort.Slice(rows, func(i, j int) bool { return rows[i].Node < rows[j].Node })
	}
	if len(rows) == 0 {
		fmt.Fprintln(stderr, "No nodes match the given query - try expanding your search.")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if *detailed {
		fmt.Fprintln(tw, "Node\tID\tAddress\tDC\tTaggedAddresses\tMeta")
	} else {
		fmt.Fprintln(tw, "Node\tID\tAddress\tDC")
	}
	for _, r := range rows {
		if *detailed {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Node, r.ID, r.Address, r.Datacenter, joinMap(r.TaggedAddresses), joinMap(r.Meta))
			continue
		}
		id := r.ID
		if len(id) > 8 {
			id = id[:8]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Node, id, r.Address, r.Datacenter)
	}
	tw.Flush()
	return 0
}

// joinMap prints a map as Consul's CLI does: k=v pairs, sorted, by commas.
func joinMap(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

func runReload(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("reload [options]", "Makes the agent re-read its service and check definitions.", stderr)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if err := client().do("PUT", "/v1/agent/reload", nil); err != nil {
		return fail(stderr, "reload", err)
	}
	fmt.Fprintln(stdout, "Configuration reload triggered")
	return 0
}

var _ flag.Value = (*stringList)(nil)
