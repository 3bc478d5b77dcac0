package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/configs"
)

func runMaint(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("maint [-enable|-disable] [-service ID] [-reason R] [options]",
		"Puts the node, or one of its services, in or out of maintenance mode (a critical check that\ntakes it out of DNS and health answers). Without -enable or -disable, lists what is in\nmaintenance on the agent.", stderr)
	enable := fs.Bool("enable", false, "put the node (or the -service) in maintenance")
	disable := fs.Bool("disable", false, "take the node (or the -service) out of maintenance")
	service := fs.String("service", "", "the ID of a local service, instead of the whole node")
	reason := fs.String("reason", "", "why, shown in the maintenance check (with -enable)")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	switch {
	case *enable && *disable:
		fmt.Fprintln(stderr, "meridian maint: -enable and -disable are exclusive; give one")
		return 1
	case !*enable && !*disable:
		if *service != "" || *reason != "" {
			fmt.Fprintln(stderr, "meridian maint: -service and -reason need -enable or -disable")
			return 1
		}
		return listMaint(client(), stdout, stderr)
	}
	q := url.Values{"enable": {fmt.Sprint(*enable)}}
	if *reason != "" {
		q.Set("reason", *reason)
	}
	path := "/v1/agent/maintenance?" + q.Encode()
	what := "Node"
	if *service != "" {
		path = "/v1/agent/service/maintenance/" + url.PathEscape(*service) + "?" + q.Encode()
		what = "Service"
	}
	if err := client().do("PUT", path, nil); err != nil {
		return fail(stderr, "maint", err)
	}
	state := "enabled"
	if *disable {
		state = "disabled"
	}
	if *service != "" {
		fmt.Fprintf(stdout, "%s maintenance is now %s for %q\n", what, state, *service)
	} else {
		fmt.Fprintf(stdout, "%s maintenance is now %s\n", what, state)
	}
	return 0
}

// listMaint prints the maintenance checks of the agent, as Consul's
// `maint` without flags does.
func listMaint(c *httpClient, stdout, stderr io.Writer) int {
	var checks map[string]struct {
		Node, CheckID, Notes, ServiceID string
	}
	if err := c.do("GET", "/v1/agent/checks", &checks); err != nil {
		return fail(stderr, "maint", err)
	}
	ids := make([]string, 0, len(checks))
	for id := range checks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ch := checks[id]
		switch {
		case id == catalog.NodeMaint:
			fmt.Fprintf(stdout, "Node:\n  Name:   %s\n  Reason: %s\n\n", ch.Node, ch.Notes)
		case strings.HasPrefix(id, catalog.ServiceMaintPrefix):
			fmt.Fprintf(stdout, "Service:\n  ID:     %s\n  Reason: %s\n\n", strings.TrimPrefix(id, catalog.ServiceMaintPrefix), ch.Notes)
		}
	}
	return 0
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quiet := fs.Bool("quiet", false, "print nothing when the configuration is valid")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: meridian validate [options] FILE_OR_DIRECTORY...\n\n"+
			"Checks agent configuration files (and directories of them) exactly as `meridian agent\n"+
			"-config-file/-config-dir` reads them, without starting an agent. Prints\n"+
			"\"Configuration is valid!\" or one line per problem, and exits 1 on any problem.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "meridian validate: expected at least one configuration file or directory")
		return 1
	}
	var agentArgs []string
	for _, p := range fs.Args() {
		st, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(stderr, "meridian validate: %s: cannot read it: %v\n", p, errors.Unwrap(err))
			return 1
		}
		if st.IsDir() {
			agentArgs = append(agentArgs, "-config-dir", p)
		} else {
			agentArgs = append(agentArgs, "-config-file", p)
		}
	}
	if _, err := configs.Load(agentArgs, nil, stderr); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				fmt.Fprintf(stderr, "meridian validate: %s\n", line)
			}
		}
		return 1
	}
	if !*quiet {
		fmt.Fprintln(stdout, "Configuration is valid!")
	}
	return 0
}
