package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"runtime/debug"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/meridian/meridian/agent"
)

// member is what /v1/agent/members answers, as far as the CLI prints it.
type member struct {
	Name   string
	Addr   string
	Port   uint16
	Tags   map[string]string
	Status int
}

var statusNames = map[int]string{0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}

func runMembers(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("members [options]", "Lists the members of the LAN gossip pool the agent is in.", stderr)
	wan := fs.Bool("wan", false, "list the WAN pool of servers instead")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	path := "/v1/agent/members"
	if *wan {
		path += "?wan=1"
	}
	var members []member
	if err := client().do("GET", path, &members); err != nil {
		return fail(stderr, "members", err)
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tAddress\tStatus\tType\tBuild\tDC")
	for _, m := range members {
		kind := "client"
		if m.Tags["role"] == "consul" {
			kind = "server"
		}
		fmt.Fprintf(tw, "%s\t%s:%d\t%s\t%s\t%s\t%s\n", m.Name, m.Addr, m.Port, statusNames[m.Status], kind, m.Tags["build"], m.Tags["dc"])
	}
	tw.Flush()
	return 0
}

func runJoin(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("join [options] ADDRESS...", "Tells the agent to join the cluster through the agents at ADDRESS (host or host:port of LAN gossip).", stderr)
	wan := fs.Bool("wan", false, "join the WAN pool of servers")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "meridian join: expected at least one address to join")
		return 1
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
