package main

import (
	"fmt"
	"io"
	"sort"
)

func runInfo(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("info [options]", "Prints the agent's statistics by section (agent, build, consul, raft, runtime,\nserf_lan, serf_wan, and kv_replication on a server with replication rules), as /v1/agent/self reports them.", stderr)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	var self struct {
		Stats map[string]map[string]string
	}
	if err := client().do("GET", "/v1/agent/self", &self); err != nil {
		return fail(stderr, "info", err)
	}
	sections := make([]string, 0, len(self.Stats))
	for name := range self.Stats {
		sections = append(sections, name)
	}
	sort.Strings(sections)
	for _, name := range sections {
		fmt.Fprintf(stdout, "%s:\n", name)
		keys := make([]string, 0, len(self.Stats[name]))
		for k := range self.Stats[name] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stdout, "\t%s = %s\n", k, self.Stats[name][k])
		}
	}
	return 0
}
