package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meridian/meridian/agent"
)

// member is what /v1/agent/members answers, as far as the CLI prints it.
type member struct {
	Name        string
	Addr        string
	Port        uint16
	Tags        map[string]string
	Status      int
	ProtocolCur uint8
}

var statusNames = map[int]string{0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}

func runMembers(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("members [options]", "Lists the members of the LAN gossip pool the agent is in.", stderr)
	wan := fs.Bool("wan", false, "list the WAN pool of servers instead: this datacenter's and those of the datacenters it links to (federation.links, or learned); meridian info's serf_wan links says which")
	detailed := fs.Bool("detailed", false, "print each member's gossip tags instead of the summary columns")
	status := fs.String("status", "", "list only the members whose status (alive, leaving, left, failed) matches this regular expression")
	segment := fs.String("segment", "", "list only the members of this network segment (servers are in all)")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	statusRe, err := regexp.Compile(*status)
	if err != nil {
		return usageError(fs, fmt.Sprintf("meridian members: -status %q is not a regular expression: %v", *status, err))
	}
	path := "/v1/agent/members"
	if *wan {
		path += "?wan=1"
	}
	var all []member
	if err := client().do("GET", path, &all); err != nil {
		return fail(stderr, "members", err)
	}
	var members []member
	for _, m := range all {
		if !statusRe.MatchString(statusNames[m.Status]) {
			continue
		}
		if seg := memberSegment(m); *segment != "" && seg != "<all>" && seg != *segment {
			continue
		}
		members = append(members, m)
	}
	if len(members) == 0 {
		// Consul exits 2 when the filters leave nobody.
		return 2
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if *detailed {
		fmt.Fprintln(tw, "Node\tAddress\tStatus\tTags")
		for _, m := range members {
			keys := make([]string, 0, len(m.Tags))
			for k := range m.Tags {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			tags := make([]string, len(keys))
			for i, k := range keys {
				tags[i] = k + "=" + m.Tags[k]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port))), statusNames[m.Status], strings.Join(tags, ","))
		}
		tw.Flush()
		return 0
	}
	fmt.Fprintln(tw, "Node\tAddress\tStatus\tType\tBuild\tProtocol\tDC\tPartition\tSegment")
	for _, m := range members {
		kind := "client"
		if m.Tags["role"] == "consul" {
			kind = "server"
		}
		protocol := m.Tags["vsn"]
		if protocol == "" {
			protocol = strconv.Itoa(int(m.ProtocolCur))
		}
		partition := m.Tags["ap"]
		if partition == "" {
			partition = "default"
		}
		build, _, _ := strings.Cut(m.Tags["build"], ":")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port))),
			statusNames[m.Status], kind, build, protocol, m.Tags["dc"], partition, memberSegment(m))
	}
	tw.Flush()
	return 0
}

// memberSegment is the network segment Consul's members shows: a server
// is in all of them, a client without one in the default one.
func memberSegment(m member) string {
	switch {
	case m.Tags["role"] == "consul":
		return "<all>"
	case m.Tags["segment"] != "":
		return m.Tags["segment"]
	}
	return "<default>"
}

func runJoin(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("join [options] ADDRESS...", "Tells the agent to join the cluster through the agents at ADDRESS (host or host:port of LAN gossip).", stderr)
	wan := fs.Bool("wan", false, "join the WAN pool of servers")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(fs, "meridian join: expected at least one address to join")
	}
	c := client()
	joined := 0
	for _, addr := range fs.Args() {
		path := "/v1/agent/join/" + url.PathEscape(addr)
		if *wan {
			path += "?wan=1"
		}
		if err := c.do("PUT", path, nil); err != nil {
			fmt.Fprintf(stderr, "meridian join: %s: %v\n", addr, err)
			continue
		}
		joined++
	}
	if joined == 0 {
		return 1
	}
	fmt.Fprintf(stdout, "Successfully joined cluster by contacting %d nodes.\n", joined)
	return 0
}

func runLeave(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("leave [options]", "Makes the agent leave the cluster gracefully and shut down.", stderr)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if err := client().do("PUT", "/v1/agent/leave", nil); err != nil {
		return fail(stderr, "leave", err)
	}
	fmt.Fprintln(stdout, "Graceful leave complete")
	return 0
}

func runForceLeave(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("force-leave [options] NODE", "Forces a failed member into the left state, so it is not reconnected to.", stderr)
	prune := fs.Bool("prune", false, "forget the member at once instead of keeping it as left")
	wan := fs.Bool("wan", false, "force the member out of the WAN pool of servers (NODE is node.dc)")
	if ok, code := parseArgs(fs, args, 1, "one node name"); !ok {
		return code
	}
	q := url.Values{}
	if *prune {
		q.Set("prune", "1")
	}
	if *wan {
		q.Set("wan", "1")
	}
	path := "/v1/agent/force-leave/" + url.PathEscape(fs.Arg(0))
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if err := client().do("PUT", path, nil); err != nil {
		return fail(stderr, "force-leave", err)
	}
	return 0
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "pretty", "output format: pretty, or json (Consul's shape)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: meridian version [-format=pretty|json]\n\nPrints the Meridian version.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	info := buildVersion()
	switch *format {
	case "pretty":
		fmt.Fprintf(stdout, "Meridian v%s\n", info.Version)
		if info.Revision != "" {
			fmt.Fprintf(stdout, "Revision %s\n", info.Revision)
		}
		if !info.BuildDate.Equal(time.Unix(1, 0)) {
			fmt.Fprintf(stdout, "Build Date %s\n", info.BuildDate.Format(time.RFC3339))
		}
	case "json":
		b, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return fail(stderr, "version", err)
		}
		fmt.Fprintf(stdout, "%s\n", b)
	default:
		fmt.Fprintf(stderr, "meridian version: -format must be pretty or json, got %q (see meridian version -h)\n", *format)
		return 1
	}
	return 0
}

// versionInfo is `consul version -format=json`'s shape, which tools parse.
type versionInfo struct {
	Version    string
	Revision   string
	Prerelease string
	FIPS       string
	BuildDate  time.Time
}

// buildVersion reads the revision and commit time Go stamped into the
// binary; without them BuildDate is Consul's placeholder, 1970-01-01T00:00:01Z.
func buildVersion() versionInfo {
	v := versionInfo{Version: agent.Version, BuildDate: time.Unix(1, 0).UTC()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					v.BuildDate = t.UTC()
				}
			}
		}
	}
	return v
}
