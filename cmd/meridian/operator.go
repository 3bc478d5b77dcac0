package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
)

// operatorUsage lists the operator subcommands.
const operatorUsage = `Usage: meridian operator <subcommand> [options]

Subcommands:
    raft list-peers          Lists the Raft peers of the datacenter
    raft remove-peer         Removes a gone server from the Raft configuration
    raft transfer-leader     Hands Raft leadership to another server
    autopilot get-config     Prints the autopilot configuration
    autopilot set-config     Changes the autopilot configuration
    autopilot state          Prints autopilot's view of the servers' health
    federation routes        Prints the links to neighbour datacenters and the routes
`

func runOperator(args []string, stdout, stderr io.Writer) int {
	sub := strings.Join(args[:min(2, len(args))], " ")
	rest := args[min(2, len(args)):]
	switch sub {
	case "raft list-peers":
		return runRaftListPeers(rest, stdout, stderr)
	case "raft remove-peer":
		return runRaftRemovePeer(rest, stdout, stderr)
	case "raft transfer-leader":
		return runRaftTransferLeader(rest, stdout, stderr)
	case "autopilot get-config":
		return runAutopilotGetConfig(rest, stdout, stderr)
	case "autopilot set-config":
		return runAutopilotSetConfig(rest, stdout, stderr)
	case "autopilot state":
		return runAutopilotState(rest, stdout, stderr)
	case "federation routes":
		return runFederationRoutes(rest, stdout, stderr)
	}
	fmt.Fprint(stderr, operatorUsage)
	if len(args) == 0 {
		return 1
	}
	if h := strings.TrimLeft(args[0], "-"); h == "h" || h == "help" {
		return 0
	}
	fmt.Fprintf(stderr, "\nmeridian operator: unknown subcommand %q\n", sub)
	return 1
}

// raftServer is one line of /v1/operator/raft/configuration.
type raftServer struct {
	ID      string
	Node    string
	Address string
	Leader  bool
	Voter   bool
}

func runRaftListPeers(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("operator raft list-peers [options]", "Lists the Raft peers of the datacenter.", stderr)
	stale := fs.Bool("stale", false, "let any server answer, not only the leader")
	client = serverFlags(fs, client, staleOwn)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	path := "/v1/operator/raft/configuration"
	if *stale {
		path += "?stale"
	}
	var cfg struct{ Servers []raftServer }
	if err := client().do("GET", path, &cfg); err != nil {
		return fail(stderr, "operator raft list-peers", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tID\tAddress\tState\tVoter")
	for _, s := range cfg.Servers {
		state := "follower"
		if s.Leader {
			state = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", s.Node, s.ID, s.Address, state, s.Voter)
	}
	tw.Flush()
	return 0
}

func runRaftRemovePeer(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("operator raft remove-peer -id ID | -address ADDR [options]",
		"Removes a server that is gone for good from the Raft configuration. A server still alive in\nthe LAN pool is added back by the leader: make it leave instead.", stderr)
	id := fs.String("id", "", "Raft ID of the server to remove (see operator raft list-peers)")
	addr := fs.String("address", "", "Raft address (host:port) of the server to remove")
	client = serverFlags(fs, client, staleAccepted)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if (*id == "") == (*addr == "") {
		fmt.Fprintln(stderr, "meridian operator raft remove-peer: give exactly one of -id or -address")
		return 1
	}
	q, what := url.Values{}, ""
	if *id != "" {
		q.Set("id", *id)
		what = fmt.Sprintf("id %q", *id)
	} else {
		q.Set("address", *addr)
		what = fmt.Sprintf("address %q", *addr)
	}
	if err := client().do("DELETE", "/v1/operator/raft/peer?"+q.Encode(), nil); err != nil {
		return fail(stderr, "operator raft remove-peer", err)
	}
	fmt.Fprintf(stdout, "Removed peer with %s\n", what)
	return 0
}

func runRaftTransferLeader(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("operator raft transfer-leader [-id ID] [options]",
		"Hands Raft leadership to the server with ID, or to the most up-to-date other voter.", stderr)
	id := fs.String("id", "", "Raft ID of the server to lead (default: the most up-to-date voter)")
	client = serverFlags(fs, client, staleAccepted)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	path := "/v1/operator/raft/transfer-leader"
	if *id != "" {
		path += "?id=" + url.QueryEscape(*id)
	}
	var out struct{ Success bool }
	if err := client().do("POST", path, &out); err != nil {
		return fail(stderr, "operator raft transfer-leader", err)
	}
	if !out.Success {
		return fail(stderr, "operator raft transfer-leader", fmt.Errorf("the agent reports the transfer failed"))
	}
	fmt.Fprintln(stdout, "Success")
	return 0
}
