// Command meridian is the Meridian agent and its command-line interface.
//
// `meridian agent` runs an agent; every other command is an HTTP client of a
// running agent, found by -http-addr, MERIDIAN_HTTP_ADDR or CONSUL_HTTP_ADDR
// (default 127.0.0.1:8500).
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand: its one-line synopsis and what runs it.
type command struct {
	synopsis string
	run      func(args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"agent":       {"Runs a Meridian agent", runAgent},
		"acl":         {"Manages ACL tokens, policies and roles", runACL},
		"demo":        {"Runs two federated datacenters in one process, to try", runDemo},
		"members":     {"Lists the members of the gossip pool", runMembers},
		"join":        {"Tells the agent to join a cluster", runJoin},
		"kv":          {"Reads and writes the key/value store", runKV},
		"lock":        {"Runs a command while holding a lock on a KV prefix", runLock},
		"watch":       {"Runs a handler on each change of a key, key prefix or user events", runWatch},
		"event":       {"Fires a user event to the agents of a datacenter", runEvent},
		"exec":        {"Runs a command on the agents of a datacenter (remote exec)", runExec},
		"leave":       {"Makes the agent leave the cluster gracefully and stop", runLeave},
		"force-leave": {"Forces a failed member into the left state", runForceLeave},
		"operator":    {"Operator tools: Raft peers and leadership, autopilot", runOperator},
		"snapshot":    {"Saves, restores and inspects snapshots of the datacenter's state", runSnapshot},
		"info":        {"Prints the agent's statistics for debugging", runInfo},
		"monitor":     {"Streams the agent's log", runMonitor},
		"rtt":         {"Estimates the round-trip time between two nodes", runRTT},
		"version":     {"Prints the Meridian version", runVersion},
		"services":    {"Registers or deregisters services with the agent", runServices},
		"catalog":     {"Lists the catalog's services and nodes", runCatalog},
		"reload":      {"Makes the agent re-read its service and check definitions", runReload},
		"query":       {"Lists, runs and explains prepared queries", runQuery},
		"tls":         {"Creates a CA and certificates for TLS", runTLS},
		"keygen":      {"Prints a new gossip encryption key", runKeygen},
		"keyring":     {"Lists and rotates the gossip encryption keys", runKeyring},
		"maint":       {"Puts the node or a service in or out of maintenance mode", runMaint},
		"validate":    {"Checks agent configuration files without starting an agent", runValidate},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	if args[0] == "-v" || args[0] == "--version" || args[0] == "-version" {
		return runVersion(nil, stdout, stderr)
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "meridian: unknown command %q (see meridian --help)\n", args[0])
		return 1
	}
	return cmd.run(args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage: meridian <command> [options]\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "    %-12s %s\n", n, cmds[n].synopsis)
	}
	b.WriteString("\nRun `meridian <command> -h` for a command's options.\n")
	io.WriteString(w, b.String())
}
