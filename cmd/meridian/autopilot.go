package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// autopilotConfig is /v1/operator/autopilot/configuration's body; the
// durations are Consul's strings ("200ms").
type autopilotConfig struct {
	CleanupDeadServers      bool
	LastContactThreshold    string
	MaxTrailingLogs         uint64
	MinQuorum               uint
	ServerStabilizationTime string
	RedundancyZoneTag       string
	DisableUpgradeMigration bool
	UpgradeVersionTag       string
	CreateIndex             uint64
	ModifyIndex             uint64
}

func runAutopilotGetConfig(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("operator autopilot get-config [options]", "Prints the datacenter's autopilot configuration.", stderr)
	client = serverFlags(fs, client, staleRead)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	var c autopilotConfig
	if err := client().do("GET", "/v1/operator/autopilot/configuration", &c); err != nil {
		return fail(stderr, "operator autopilot get-config", err)
	}
	fmt.Fprintf(stdout, "CleanupDeadServers = %v\nLastContactThreshold = %s\nMaxTrailingLogs = %d\nMinQuorum = %d\n"+
		"ServerStabilizationTime = %s\nRedundancyZoneTag = %q\nDisableUpgradeMigration = %v\nUpgradeVersionTag = %q\n",
		c.CleanupDeadServers, c.LastContactThreshold, c.MaxTrailingLogs, c.MinQuorum,
		c.ServerStabilizationTime, c.RedundancyZoneTag, c.DisableUpgradeMigration, c.UpgradeVersionTag)
	return 0
}

func runAutopilotSetConfig(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("operator autopilot set-config [options]",
		"Changes the autopilot configuration; settings not given keep their value. The change is a\ncheck-and-set: it fails when another change came in between.", stderr)
	cleanup := fs.String("cleanup-dead-servers", "", "remove dead servers from Raft automatically: true or false")
	client = serverFlags(fs, client, staleAccepted)
	threshold := fs.Duration("last-contact-threshold", 0, "longest time a server may go without contact from the leader and be healthy")
	trailing := fs.Int64("max-trailing-logs", -1, "most Raft entries a healthy server may trail the leader by")
	minQuorum := fs.Int64("min-quorum", -1, "fewest voters autopilot leaves when it removes dead servers")
	stabilization := fs.Duration("server-stabilization-time", -1, "how long a new server must be healthy before it becomes a voter")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	c := client()
	var cfg autopilotConfig
	if err := c.do("GET", "/v1/operator/autopilot/configuration", &cfg); err != nil {
		return fail(stderr, "operator autopilot set-config", err)
	}
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "cleanup-dead-servers":
			v, err := strconv.ParseBool(*cleanup)
			if err != nil {
				bad = append(bad, fmt.Sprintf("-cleanup-dead-servers=%q: want true or false", *cleanup))
			}
			cfg.CleanupDeadServers = v
		case "last-contact-threshold":
			if *threshold <= 0 {
				bad = append(bad, "-last-contact-threshold: want a positive duration such as 200ms")
			}
			cfg.LastContactThreshold = threshold.String()
		case "max-trailing-logs":
			if *trailing < 0 {
				bad = append(bad, "-max-trailing-logs: want 0 or more")
			}
			cfg.MaxTrailingLogs = uint64(*trailing)
		case "min-quorum":
			if *minQuorum < 0 {
				bad = append(bad, "-min-quorum: want 0 or more")
			}
			cfg.MinQuorum = uint(*minQuorum)
		case "server-stabilization-time":
			if *stabilization < 0 {
				bad = append(bad, "-server-stabilization-time: want a duration such as 10s")
			}
			cfg.ServerStabilizationTime = stabilization.String()
		}
	})
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintf(stderr, "meridian operator autopilot set-config: %s\n", b)
		}
		return 1
	}
	var ok bool
	path := "/v1/operator/autopilot/configuration?cas=" + strconv.FormatUint(cfg.ModifyIndex, 10)
	if err := c.sendJSONReply("PUT", path, &cfg, &ok); err != nil {
		return fail(stderr, "operator autopilot set-config", err)
	}
	if !ok {
		fmt.Fprintln(stderr, "meridian operator autopilot set-config: the configuration changed meanwhile; run the command again")
		return 1
	}
	fmt.Fprintln(stdout, "Configuration updated!")
	return 0
}

// autopilotState is what the CLI prints of /v1/operator/autopilot/state.
type autopilotState struct {
	Healthy          bool
	FailureTolerance int
	Leader           string
	Voters           []string
	Servers          map[string]struct {
		ID, Name, Address, NodeStatus, LastContact, Status string
		LastTerm, LastIndex                                uint64
		Healthy                                            bool
		StableSince                                        time.Time
	}
}

func runAutopilotState(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("operator autopilot state [options]", "Prints autopilot's view of the datacenter's servers: health, failure tolerance, voters.", stderr)
	asJSON := fs.Bool("format-json", false, "print the state as JSON")
	client = serverFlags(fs, client, staleRead)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	var st autopilotState
	if err := client().do("GET", "/v1/operator/autopilot/state", &st); err != nil {
		return fail(stderr, "operator autopilot state", err)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	fmt.Fprintf(stdout, "Healthy:                      %v\nFailure Tolerance:            %d\nLeader:                       %s\nVoters:\n",
		st.Healthy, st.FailureTolerance, st.Leader)
	for _, v := range st.Voters {
		fmt.Fprintf(stdout, "   %s\n", v)
	}
	ids := make([]string, 0, len(st.Servers))
	for id := range st.Servers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fmt.Fprintln(stdout, "\nServers:")
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "   Name\tID\tAddress\tStatus\tNode Status\tHealthy\tLast Contact\tLast Index")
	for _, id := range ids {
		s := st.Servers[id]
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t%s\t%v\t%s\t%d\n", s.Name, s.ID, s.Address, s.Status,
			strings.TrimSpace(s.NodeStatus), s.Healthy, s.LastContact, s.LastIndex)
	}
	tw.Flush()
	return 0
}
