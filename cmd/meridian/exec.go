package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Remote exec, as Consul's `consul exec` does it (the agent's side is in
// agent/rexec.go): a session, the job under _rexec/SESSION/job, the _rexec
// event, then the nodes' acks, output and exit codes read back from KV.
const (
	rexecPrefix = "_rexec"
	// rexecSessionTTL is the session's TTL (Consul's 15s); it is renewed
	// every third of it while the command runs.
	rexecSessionTTL = 15 * time.Second
	// rexecPoll is the wait of each blocking read of the job's keys.
	rexecPoll = time.Second
	// rexecGrace is how long past -timeout the CLI waits for the exit code
	// of a node that acked (its agent kills the job at -timeout).
	rexecGrace = 5 * time.Second
)

// rexecSpec is the job written to _rexec/SESSION/job.
type rexecSpec struct {
	Command string
	Timeout time.Duration
}

type rexecOptions struct {
	node, service, tag, dc string
	wait, timeout          time.Duration
	command                string
}

func runExec(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return execCmd(ctx, args, stdout, stderr)
}

// execCmd is `meridian exec`.
func execCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("exec [options] COMMAND...",
		"Runs COMMAND (through sh -c) on every agent of the datacenter that matches the filters and has remote exec enabled (disable_remote_exec: false; it is off by default), and prints each node's output prefixed with its name. "+
			"Exits with the worst exit code. With ACLs it needs key write on _rexec/, session write and event write on _rexec.", stderr)
	var o rexecOptions
	fs.StringVar(&o.node, "node", "", "regular expression: run only on nodes whose name matches")
	fs.StringVar(&o.service, "service", "", "regular expression: run only on nodes with a local service (name or ID) that matches")
	fs.StringVar(&o.tag, "tag", "", "regular expression on the tags of the -service matched (needs -service)")
	fs.StringVar(&o.dc, "datacenter", "", "datacenter to run in (default the agent's)")
	fs.Bool("stale", false, "accepted as Consul's CLI takes it; exec writes its job and reads the answers from the leader")
	fs.DurationVar(&o.wait, "wait", 2*time.Second, "stop waiting for more nodes once none has answered for this long")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "kill the command on a node where it runs longer than this")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	o.command = strings.Join(fs.Args(), " ")
	switch {
	case strings.TrimSpace(o.command) == "":
		fmt.Fprintln(stderr, "meridian exec: expected a command to run (meridian exec uptime)")
		return 1
	case o.tag != "" && o.service == "":
		fmt.Fprintln(stderr, "meridian exec: -tag needs -service")
		return 1
	case o.wait <= 0 || o.timeout <= 0:
		fmt.Fprintln(stderr, "meridian exec: -wait and -timeout must be positive durations (2s, 5m)")
		return 1
	}
	for _, re := range []string{o.node, o.service, o.tag} {
		if _, err := regexp.Compile(re); err != nil {
			fmt.Fprintf(stderr, "meridian exec: %q is not a regular expression: %v\n", re, err)
			return 1
		}
	}
	e := &executor{c: client(), o: o, stdout: stdout, stderr: stderr}
	code, err := e.run(ctx)
	if err != nil {
		return fail(stderr, "exec", err)
	}
	return code
}

// executor runs one remote exec job.
type executor struct {
	c       *httpClient
	o       rexecOptions
	stdout  io.Writer
	stderr  io.Writer
	session string
}

func (e *executor) dcParam(sep string) string {
	if e.o.dc == "" {
		return ""
	}
	return sep + "dc=" + url.QueryEscape(e.o.dc)
}

func (e *executor) run(ctx context.Context) (int, error) {
	expected, err := e.expectedNodes(ctx)
	if err != nil {
		return 0, err
	}
	if err := e.createSession(ctx); err != nil {
		return 0, err
	}
	renewCtx, stopRenew := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		e.renew(renewCtx)
	}()
	defer func() {
		stopRenew()
		<-renewed
		e.cleanup()
	}()

	spec, _ := json.Marshal(rexecSpec{Command: e.o.command, Timeout: e.o.timeout})
	dir := rexecPrefix + "/" + e.session
	path := kvPath(dir+"/job") + "?acquire=" + e.session + e.dcParam("&")
	code, _, body, err := request(ctx, e.c, "PUT", path, spec)
	if err != nil {
		return 0, err
	}
	if code != 200 || strings.TrimSpace(string(body)) != "true" {
		return 0, fmt.Errorf("write the job: %w", statusErr("PUT", path, code, body))
	}

	q := url.Values{}
	for k, v := range map[string]string{"node": e.o.node, "service": e.o.service, "tag": e.o.tag, "dc": e.o.dc} {
		if v != "" {
			q.Set(k, v)
		}
	}
	msg, _ := json.Marshal(map[string]string{"Prefix": rexecPrefix, "Session": e.session})
	firePath := "/v1/event/fire/" + rexecPrefix
	if len(q) > 0 {
		firePath += "?" + q.Encode()
	}
	if _, err := fireEvent(e.c, firePath, msg); err != nil {
		return 0, fmt.Errorf("announce the job: %w", err)
	}
	return e.wait(ctx, dir, expected)
}

// nodeState is what one node has reported so far.
type nodeState struct {
	acked   bool
	exited  bool
	code    int
	printed map[string]bool // output keys printed
	partial string          // output after the last newline
}

// wait reads the job's keys until every node that acked has exited and
// none has answered for -wait, or -timeout (plus a grace) has passed.
func (e *executor) wait(ctx context.Context, dir string, expected []string) (int, error) {
	nodes := map[string]*nodeState{}
	start := time.Now()
	last := start
	var index uint64
	poll := rexecPoll
	for {
		path := kvPath(dir+"/") + "?recurse&index=" + strconv.FormatUint(index, 10) + "&wait=" + poll.String() + e.dcParam("&")
		code, idx, body, err := request(ctx, e.c, "GET", path, nil)
		if ctx.Err() != nil {
			return 130, nil
		}
		if err != nil {
			return 0, err
		}
		var pairs []kvPair
		switch code {
		case 200:
			if err := json.Unmarshal(body, &pairs); err != nil {
				return 0, fmt.Errorf("decode %s: %w", path, err)
			}
		case 404:
		default:
			return 0, statusErr("GET", path, code, body)
		}
		index = idx
		if e.absorb(dir, pairs, nodes) {
			last = time.Now()
		}
		running := 0
		for _, n := range nodes {
			if n.acked && !n.exited {
				running++
			}
		}
		now := time.Now()
		if running == 0 && now.Sub(last) >= e.o.wait {
			break
		}
		// Wake when the silence would end, not a whole poll later.
		poll = rexecPoll
		if running == 0 {
			poll = max(10*time.Millisecond, min(rexecPoll, e.o.wait-now.Sub(last)))
		}
		if running > 0 && now.Sub(start) >= e.o.timeout+rexecGrace {
			break
		}
	}
	return e.report(nodes, expected), nil
}

// absorb takes the keys read under dir into nodes, printing new output;
// it reports whether anything was new.
func (e *executor) absorb(dir string, pairs []kvPair, nodes map[string]*nodeState) bool {
	// Output in order, and a node's exit code only after its output
	// ("exit" sorts before "out/").
	sort.Slice(pairs, func(i, j int) bool {
		ei, ej := strings.HasSuffix(pairs[i].Key, "/exit"), strings.HasSuffix(pairs[j].Key, "/exit")
		if ei != ej {
			return ej
		}
		return pairs[i].Key < pairs[j].Key
	})
	changed := false
	for _, p := range pairs {
		rest, ok := strings.CutPrefix(p.Key, dir+"/")
		if !ok || rest == "job" {
			continue
		}
		node, what, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		n := nodes[node]
		if n == nil {
			n = &nodeState{printed: map[string]bool{}}
			nodes[node] = n
		}
		switch {
		case what == "ack":
			if !n.acked {
				n.acked, changed = true, true
			}
		case what == "exit":
			if !n.exited {
				n.exited, changed = true, true
				c, err := strconv.Atoi(strings.TrimSpace(string(p.Value)))
				if err != nil {
					c = 1
				}
				n.code = c
				e.flushPartial(node, n)
				fmt.Fprintf(e.stdout, "==> %s: finished with exit code %d\n", node, c)
			}
		case strings.HasPrefix(what, "out/"):
			if n.printed[p.Key] {
				continue
			}
			n.printed[p.Key], changed = true, true
			n.acked = true
			text := n.partial + string(p.Value)
			lines := strings.Split(text, "\n")
			n.partial = lines[len(lines)-1]
			for _, l := range lines[:len(lines)-1] {
				fmt.Fprintf(e.stdout, "    %s: %s\n", node, l)
			}
		}
	}
	return changed
}

func (e *executor) flushPartial(node string, n *nodeState) {
	if n.partial != "" {
		fmt.Fprintf(e.stdout, "    %s: %s\n", node, n.partial)
		n.partial = ""
	}
}

// report prints the summary and answers the exit code: the worst of the
// nodes that ran the command (124 for one that never reported its end).
func (e *executor) report(nodes map[string]*nodeState, expected []string) int {
	acked, exited, worst := 0, 0, 0
	var unfinished []string
	for name, n := range nodes {
		if n.acked {
			acked++
		}
		if n.exited {
			exited++
			worst = max(worst, n.code)
		} else if n.acked {
			e.flushPartial(name, n)
			unfinished = append(unfinished, name)
			worst = max(worst, 124)
		}
	}
	fmt.Fprintf(e.stdout, "%d / %d node(s) completed / acknowledged\n", exited, acked)
	if len(unfinished) > 0 {
		sort.Strings(unfinished)
		fmt.Fprintf(e.stderr, "meridian exec: no exit code from %s within -timeout %s\n", strings.Join(unfinished, ", "), e.o.timeout)
	}
	var silent []string
	for _, name := range expected {
		if n := nodes[name]; n == nil || !n.acked {
			silent = append(silent, name)
		}
	}
	if len(silent) > 0 {
		fmt.Fprintf(e.stderr, "meridian exec: %d node(s) did not acknowledge the job within -wait %s (remote exec is off there unless disable_remote_exec is false): %s\n",
			len(silent), e.o.wait, strings.Join(silent, ", "))
	}
	if acked == 0 {
		fmt.Fprintln(e.stderr, "meridian exec: no node ran the command")
		return max(worst, 1)
	}
	return worst
}

// expectedNodes lists the nodes the filters select, so that the report can
// name those that did not acknowledge: the live LAN members, or with
// -service or -datacenter the catalog's nodes.
func (e *executor) expectedNodes(ctx context.Context) ([]string, error) {
	nodeRe := regexp.MustCompile(e.o.node)
	var names []string
	if e.o.service == "" && e.o.dc == "" {
		// The agents the event reaches: the live members of the LAN
		// pool (the catalog may not list a new one yet).
		// Without agent:read, the catalog it is.
		var members []member
		if err := e.getJSON(ctx, "/v1/agent/members", &members); err == nil {
			for _, m := range members {
				if m.Status == 1 && nodeRe.MatchString(m.Name) {
					names = append(names, m.Name)
				}
			}
			sort.Strings(names)
			return names, nil
		}
	}
	if e.o.service == "" {
		var nodes []struct{ Node string }
		if err := e.getJSON(ctx, "/v1/catalog/nodes"+e.dcParam("?"), &nodes); err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if nodeRe.MatchString(n.Node) {
				names = append(names, n.Node)
			}
		}
		sort.Strings(names)
		return names, nil
	}
	svcRe, tagRe := regexp.MustCompile(e.o.service), regexp.MustCompile(e.o.tag)
	var services map[string][]string
	if err := e.getJSON(ctx, "/v1/catalog/services"+e.dcParam("?"), &services); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for svc := range services {
		var instances []struct {
			Node, ServiceID, ServiceName string
			ServiceTags                  []string
		}
		if err := e.getJSON(ctx, "/v1/catalog/service/"+url.PathEscape(svc)+e.dcParam("?"), &instances); err != nil {
			return nil, err
		}
		for _, in := range instances {
			if seen[in.Node] || !nodeRe.MatchString(in.Node) || !(svcRe.MatchString(in.ServiceName) || svcRe.MatchString(in.ServiceID)) {
				continue
			}
			if e.o.tag != "" && !anyMatch(tagRe, in.ServiceTags) {
				continue
			}
			seen[in.Node] = true
			names = append(names, in.Node)
		}
	}
	sort.Strings(names)
	return names, nil
}

func anyMatch(re *regexp.Regexp, s []string) bool {
	for _, v := range s {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

func (e *executor) getJSON(ctx context.Context, path string, out any) error {
	code, _, body, err := request(ctx, e.c, "GET", path, nil)
	if err != nil {
		return err
	}
	if code != 200 {
		return statusErr("GET", path, code, body)
	}
	return json.Unmarshal(body, out)
}

// createSession creates the job's session (behavior delete, so that its
// keys go with it). In another datacenter it is tied to a node there.
func (e *executor) createSession(ctx context.Context) error {
	se := map[string]any{"Name": "Remote Exec", "Behavior": "delete", "TTL": rexecSessionTTL.String()}
	if e.o.dc != "" {
		var nodes []struct{ Node string }
		if err := e.getJSON(ctx, "/v1/catalog/nodes"+e.dcParam("?"), &nodes); err != nil {
			return err
		}
		if len(nodes) == 0 {
			return fmt.Errorf("datacenter %s has no nodes to hold the job's session", e.o.dc)
		}
		se["Node"] = nodes[0].Node
	}
	body, _ := json.Marshal(se)
	path := "/v1/session/create" + e.dcParam("?")
	code, _, b, err := request(ctx, e.c, "PUT", path, body)
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("create the job's session: %w", statusErr("PUT", path, code, b))
	}
	var out struct{ ID string }
	if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
		return fmt.Errorf("create the job's session: unexpected answer %q", strings.TrimSpace(string(b)))
	}
	e.session = out.ID
	return nil
}

func (e *executor) renew(ctx context.Context) {
	for sleepCtx(ctx, rexecSessionTTL/3) == nil {
		path := "/v1/session/renew/" + e.session + e.dcParam("?")
		if _, _, _, err := request(ctx, e.c, "PUT", path, nil); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(e.stderr, "meridian exec: renew session: %v\n", err)
		}
	}
}

// cleanup destroys the session and removes what is left of the job.
func (e *executor) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, _, _ = request(ctx, e.c, "PUT", "/v1/session/destroy/"+e.session+e.dcParam("?"), nil)
	_, _, _, _ = request(ctx, e.c, "DELETE", kvPath(rexecPrefix+"/"+e.session)+"?recurse"+e.dcParam("&"), nil)
}
