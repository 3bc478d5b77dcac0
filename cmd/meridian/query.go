package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
)

// preparedQuery is a prepared query as /v1/query answers it, as far as the
// CLI prints it.
type preparedQuery struct {
	ID       string
	Name     string
	Template struct{ Type, Regexp string }
	Service  struct {
		Service  string
		Failover struct {
			NearestN    int
			Datacenters []string
		}
		OnlyPassing bool
		Tags        []string
	}
}

// queryAnswer is what /v1/query/:id/execute answers.
type queryAnswer struct {
	Service string
	Nodes   []struct {
		Node    struct{ Node, Address string }
		Service struct {
			Address string
			Port    int
			Tags    []string
		}
	}
	Datacenter string
	Failovers  int
}

const queryUsage = `Usage: meridian query list [options]
       meridian query exec NAME|ID [-dc DC] [-limit N]
       meridian query explain NAME|ID [-dc DC]`

func runQuery(args []string, stdout, stderr io.Writer) int {
	return runSubcommand("query", queryUsage, []subcommand{
		{[]string{"list"}, queryList},
		{[]string{"exec", "execute"}, queryExec},
		{[]string{"explain"}, queryExplain},
	}, args, stdout, stderr)
}

// parseQueryArgs parses flags given before or after the one NAME|ID
// argument (Go's flag package stops at the first argument).
func parseQueryArgs(fs *flag.FlagSet, args []string) (name string, ok bool, code int) {
	var pos []string
	for {
		if ok, code := parseFlags(fs, args); !ok {
			return "", false, code
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintf(fs.Output(), "meridian %s: expected one query name or ID, got %d argument(s)\n", fs.Name(), len(pos))
		return "", false, 1
	}
	return pos[0], true, 0
}

func queryList(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("query list [options]", "Lists the prepared queries of a datacenter.", stderr)
	dc := fs.String("dc", "", "datacenter to list (default the agent's)")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	var qs []preparedQuery
	if err := client().do("GET", "/v1/query"+dcParam(*dc, "?"), &qs); err != nil {
		return fail(stderr, "query list", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tName\tService\tTemplate\tFailover")
	for _, q := range qs {
		tmpl := "-"
		if q.Template.Type != "" {
			tmpl = q.Template.Type
			if q.Template.Regexp != "" {
				tmpl += " " + q.Template.Regexp
			}
		}
		var fo []string
		if n := q.Service.Failover.NearestN; n > 0 {
			fo = append(fo, "nearest "+strconv.Itoa(n))
		}
		fo = append(fo, q.Service.Failover.Datacenters...)
		failover := strings.Join(fo, ", ")
		if failover == "" {
			failover = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", q.ID, orDash(q.Name), orDash(q.Service.Service), tmpl, failover)
	}
	tw.Flush()
	return 0
}

func queryExec(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("query exec NAME|ID [-dc DC] [-limit N]",
		"Runs a prepared query, failing over to other datacenters as it says, and lists the instances it answers.", stderr)
	dc := fs.String("dc", "", "datacenter to run the query in (default the agent's)")
	limit := fs.Int("limit", 0, "answer at most this many instances (0: all)")
	name, ok, code := parseQueryArgs(fs, args)
	if !ok {
		return code
	}
	if *limit < 0 {
		fmt.Fprintln(stderr, "meridian query exec: -limit must not be negative")
		return 1
	}
	path := "/v1/query/" + url.PathEscape(name) + "/execute" + dcParam(*dc, "?")
	if *limit > 0 {
		path += querySep(path) + "limit=" + strconv.Itoa(*limit)
	}
	var a queryAnswer
	if err := client().do("GET", path, &a); err != nil {
		return fail(stderr, "query exec", err)
	}
	fmt.Fprintf(stdout, "Service %s answered by %s after %d failover(s): %d instance(s)\n", a.Service, a.Datacenter, a.Failovers, len(a.Nodes))
	if len(a.Nodes) == 0 {
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tAddress\tPort\tTags")
	for _, n := range a.Nodes {
		addr := n.Service.Address
		if addr == "" {
			addr = n.Node.Address
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", n.Node.Node, addr, n.Service.Port, strings.Join(n.Service.Tags, ","))
	}
	tw.Flush()
	return 0
}

func queryExplain(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("query explain NAME|ID [-dc DC]",
		"Prints the query that NAME|ID resolves to, a template rendered for NAME, as JSON.", stderr)
	dc := fs.String("dc", "", "datacenter of the query (default the agent's)")
	name, ok, code := parseQueryArgs(fs, args)
	if !ok {
		return code
	}
	var out struct{ Query json.RawMessage }
	if err := client().do("GET", "/v1/query/"+url.PathEscape(name)+"/explain"+dcParam(*dc, "?"), &out); err != nil {
		return fail(stderr, "query explain", err)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, out.Query, "", "  "); err != nil {
		return fail(stderr, "query explain", err)
	}
	b.WriteByte('\n')
	_, _ = stdout.Write(b.Bytes())
	return 0
}

// dcParam is "?dc=DC" (with the given separator), or "" for the agent's
// datacenter.
func dcParam(dc, sep string) string {
	if dc == "" {
		return ""
	}
	return sep + "dc=" + url.QueryEscape(dc)
}

func querySep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}
