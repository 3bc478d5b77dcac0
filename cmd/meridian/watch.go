package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Timings of `meridian watch`.
const (
	// watchWait is the wait of each blocking query; it stays below the
	// client's 30s request timeout.
	watchWait = 20 * time.Second
	// watchBackoffMin and watchBackoffMax bound the pause after a failed
	// query, which doubles with each failure in a row.
	watchBackoffMin = 250 * time.Millisecond
	watchBackoffMax = 10 * time.Second
)

func runWatch(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return watchCmd(ctx, args, stdout, stderr)
}

// watchCmd is `meridian watch`; it runs until ctx ends (SIGINT or SIGTERM)
// and then exits 0.
func watchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("watch [options] [HANDLER...]", "Watches a view of the datacenter and runs HANDLER (or prints JSON) on each change, with the JSON on its stdin:\n"+
		"  -type key -key K | -type keyprefix -prefix P | -type services | -type nodes |\n"+
		"  -type service -service S [-tag T] [-passingonly] | -type checks [-service S | -state STATE] |\n"+
		"  -type event [-name N]\n"+
		"For events the handler runs once per event (the events the agent holds when the watch starts included), with a JSON list of that one event on its stdin.", stderr)
	rf := addReadFlags(fs)
	typ := fs.String("type", "", "what to watch: key, keyprefix, services, nodes, service, checks or event")
	name := fs.String("name", "", "with -type event, only events of this name")
	key := fs.String("key", "", "with -type key, the key to watch")
	prefix := fs.String("prefix", "", "with -type keyprefix, the prefix to watch")
	service := fs.String("service", "", "with -type service or checks, the service to watch")
	tag := fs.String("tag", "", "with -type service, only the instances with this tag")
	passing := fs.Bool("passingonly", false, "with -type service, only the instances whose checks pass")
	state := fs.String("state", "", "with -type checks, only the checks in this state (any, passing, warning, critical)")
	shell := fs.Bool("shell", true, "run HANDLER through /bin/sh -c, as one command line")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	bad := func(msg string) int { return usageError(fs, "meridian watch: "+msg) }
	q := url.Values{}
	rf.set(q)
	var path string
	switch *typ {
	case "key":
		if *key == "" {
			return bad("-type key needs -key")
		}
		path = kvPath(*key)
	case "keyprefix":
		if *prefix == "" {
			return bad("-type keyprefix needs -prefix")
		}
		path = kvPath(*prefix)
		q.Set("recurse", "")
	case "services":
		path = "/v1/catalog/services"
	case "nodes":
		path = "/v1/catalog/nodes"
	case "service":
		if *service == "" {
			return bad("-type service needs -service")
		}
		path = "/v1/health/service/" + url.PathEscape(*service)
		if *tag != "" {
			q.Set("tag", *tag)
		}
		if *passing {
			q.Set("passing", "")
		}
	case "checks":
		switch {
		case *service != "" && *state != "":
			return bad("-type checks takes -service or -state, not both")
		case *service != "":
			path = "/v1/health/checks/" + url.PathEscape(*service)
		default:
			st := *state
			if st == "" {
				st = "any"
			}
			path = "/v1/health/state/" + url.PathEscape(st)
		}
	case "event":
		path = "/v1/event/list"
		if *name != "" {
			q.Set("name", *name)
		}
	case "":
		return bad("-type is required (key, keyprefix, services, nodes, service, checks or event)")
	default:
		return bad(fmt.Sprintf("unknown -type %q (key, keyprefix, services, nodes, service, checks or event)", *typ))
	}
	if *name != "" && *typ != "event" {
		return bad("-name applies to -type event only")
	}
	path = withQuery(path, q)
	if len(q) == 0 {
		path += "?"
	} else {
		path += "&"
	}
	kv := *typ == "key" || *typ == "keyprefix"
	w := &watcher{c: client(), path: path, kv: kv, single: *typ == "key", handler: fs.Args(), shell: *shell, stdout: stdout, stderr: stderr}
	if *typ == "event" {
		w.events = map[string]bool{}
	}
	w.run(ctx)
	return 0
}

// watcher runs the blocking-query loop of one watch.
type watcher struct {
	c       *httpClient
	path    string // path and "?..." ready for index and wait
	kv      bool   // a key or prefix: answer key entries, not the raw JSON
	single  bool   // a key: answer one object (or null), not a list
	handler []string
	shell   bool
	// events, for a watch of user events, holds the IDs already handed
	// to the handler (nil for other watches). An event list's index is
	// not monotonic (it comes from the last event's ID).
	events map[string]bool
	stdout io.Writer
	stderr io.Writer
}

// run queries until ctx ends, handing each new answer to the handler.
func (w *watcher) run(ctx context.Context) {
	var index uint64
	backoff := watchBackoffMin
	first := true
	for ctx.Err() == nil {
		path := w.path + "index=" + strconv.FormatUint(index, 10) + "&wait=" + watchWait.String()
		code, idx, body, err := request(ctx, w.c, "GET", path, nil)
		if err == nil && code != http.StatusOK && code != http.StatusNotFound {
			err = statusErr("GET", path, code, body)
		}
		var data []byte
		if err == nil && w.events == nil {
			data, err = w.decode(code, body)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fmt.Fprintf(w.stderr, "meridian watch: %v (retrying in %v)\n", err, backoff)
			if sleepCtx(ctx, backoff) != nil {
				return
			}
			backoff = min(backoff*2, watchBackoffMax)
			continue
		}
		backoff = watchBackoffMin
		if idx == index && !first {
			continue // the wait ran out with no change
		}
		if w.events != nil {
			index = idx
			w.deliverEvents(ctx, body)
			continue
		}
		if idx < index {
			// The index went backwards (a restored snapshot): start over
			// from the beginning, as Consul's watch does.
			idx = 0
		}
		first = false
		index = idx
		w.deliver(ctx, data)
	}
}

// decode turns an answer into the JSON a handler gets: for a key, the one
// entry or null; for a prefix, the list (empty when nothing is under it).
// Other views are handed on as the agent answers them, indented.
func (w *watcher) decode(code int, body []byte) ([]byte, error) {
	if !w.kv {
		var b bytes.Buffer
		if err := json.Indent(&b, body, "", "    "); err != nil {
			return nil, fmt.Errorf("decode answer: %w", err)
		}
		return b.Bytes(), nil
	}
	var pairs []kvPair
	if code == http.StatusOK {
		if err := json.Unmarshal(body, &pairs); err != nil {
			return nil, fmt.Errorf("decode answer: %w", err)
		}
	}
	if pairs == nil {
		pairs = []kvPair{}
	}
	if w.single {
		if len(pairs) == 0 {
			return []byte("null"), nil
		}
		return json.MarshalIndent(pairs[0], "", "    ")
	}
	return json.MarshalIndent(pairs, "", "    ")
}

// deliverEvents hands each event of an event list not handed yet to the
// handler, one at a time, and forgets the IDs of events no longer listed.
func (w *watcher) deliverEvents(ctx context.Context, body []byte) {
	var list []json.RawMessage
	if err := json.Unmarshal(body, &list); err != nil {
		fmt.Fprintf(w.stderr, "meridian watch: decode event list: %v\n", err)
		return
	}
	listed := make(map[string]bool, len(list))
	for _, raw := range list {
		var ev struct{ ID string }
		if json.Unmarshal(raw, &ev) != nil || ev.ID == "" {
			continue
		}
		listed[ev.ID] = true
		if w.events[ev.ID] {
			continue
		}
		w.events[ev.ID] = true
		data, _ := json.MarshalIndent([]json.RawMessage{raw}, "", "    ")
		w.deliver(ctx, data)
	}
	for id := range w.events {
		if !listed[id] {
			delete(w.events, id)
		}
	}
}

// deliver prints data, or runs the handler with data on its stdin.
func (w *watcher) deliver(ctx context.Context, data []byte) {
	if len(w.handler) == 0 {
		fmt.Fprintf(w.stdout, "%s\n", data)
		return
	}
	var cmd *exec.Cmd
	if w.shell {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", strings.Join(w.handler, " "))
	} else {
		cmd = exec.CommandContext(ctx, w.handler[0], w.handler[1:]...)
	}
	cmd.Stdin = bytes.NewReader(append(data, '\n'))
	cmd.Stdout, cmd.Stderr = w.stdout, w.stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		fmt.Fprintf(w.stderr, "meridian watch: handler: %v\n", err)
	}
}
