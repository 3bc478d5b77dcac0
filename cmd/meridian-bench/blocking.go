package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// blockingMode measures how long after a write a blocking query wakes: a
// watcher parks GET ...?index=N&wait=W on one agent, the writer changes the
// watched data through another (or the same) agent, and each sample is the
// time from just before the write is sent until the watcher's answer showing
// that write arrives. Both ends are in this process, so one clock serves.
func blockingMode() mode {
	return mode{
		name:    "blocking",
		summary: "time from a write until a blocking query on the changed data wakes (-kind kv: a key; -kind catalog: a service's health)",
		examples: []string{
			"-addr 127.0.0.1:8500 -n 200",
			"-write-addr 127.0.0.81:8500 -watch-addr 127.0.0.82:8500 -stale -n 200",
			"-kind catalog -addr 127.0.0.1:8500 -service bench-blocking -n 100",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			fs.StringVar(&c.addr, "addr", "127.0.0.1:8500", "`address` used for -write-addr and -watch-addr when they are not set")
			writeAddr := fs.String("write-addr", "", "`address` of the agent the writes go through (default -addr)")
			watchAddr := fs.String("watch-addr", "", "`address` of the agent the blocking query parks on (default -addr)")
			fs.Int64Var(&c.n, "n", 200, "samples to take")
			fs.DurationVar(&c.duration, "duration", time.Minute, "take no new sample after this long")
			fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "fail when a write, or the wake after it, takes longer than this")
			fs.StringVar(&c.token, "token", "", "ACL token sent as X-Consul-Token")
			kind := fs.String("kind", "kv", "what to write and watch: kv or catalog")
			key := fs.String("key", "bench/blocking", "KV `key` written and watched (-kind kv)")
			service := fs.String("service", "bench-blocking", "service `name` registered and watched (-kind catalog)")
			node := fs.String("node", "bench-blocking-node", "`node` the service is registered on (-kind catalog)")
			stale := fs.Bool("stale", false, "add ?stale to the watch: any server may answer it")
			wait := fs.Duration("wait", 30*time.Second, "wait= of each blocking query")
			settle := fs.Duration("settle", 5*time.Millisecond, "pause between the watch request leaving and the write, so it is parked on the agent first")
			return func(ctx context.Context, out *output) error {
				switch {
				case c.n < 1:
					return badFlag("-n must be at least 1, got %d", c.n)
				case *kind != "kv" && *kind != "catalog":
					return badFlag("-kind must be kv or catalog, got %q", *kind)
				case *kind == "kv" && *key == "":
					return badFlag("-key must not be empty")
				case *kind == "catalog" && (*service == "" || *node == ""):
					return badFlag("-service and -node must not be empty")
				case *wait <= 0 || *wait > 10*time.Minute:
					return badFlag("-wait must be positive and at most 10m, got %v", *wait)
				case *settle < 0 || *settle > 10*time.Second:
					return badFlag("-settle must be between 0 and 10s, got %v", *settle)
				}
				if *writeAddr == "" {
					*writeAddr = c.addr
				}
				if *watchAddr == "" {
					*watchAddr = c.addr
				}
				writeBase, err := baseURL("write-addr", *writeAddr, out.stderr)
				if err != nil {
					return err
				}
				watchBase, err := baseURL("watch-addr", *watchAddr, out.stderr)
				if err != nil {
					return err
				}
				w := &requester{base: writeBase, token: c.token, client: newClient(1, c.timeout)}
				r := &requester{base: watchBase, token: c.token, client: newClient(1, *wait+*wait/16+c.timeout)}
				defer w.client.CloseIdleConnections()
				defer r.client.CloseIdleConnections()
				run := strconv.FormatUint(rand.Uint64(), 36)
				var t blockTarget
				if *kind == "kv" {
					t = &kvTarget{w: w, key: *key, run: run, stale: *stale}
				} else {
					t = &catalogTarget{w: w, service: *service, node: *node, run: run, stale: *stale}
				}
				b := &blocker{target: t, watch: r, samples: int(c.n), duration: c.duration, timeout: c.timeout, wait: *wait, settle: *settle}
				res, err := b.run(ctx)
				if err != nil {
					return err
				}
				what := fmt.Sprintf("blocking %s write=%s watch=%s%s", *kind, writeBase, watchBase, t.watchPath())
				out.report("blocking-"+*kind, what, res.n, res.errors, res.elapsed, &res.hist, res.firstErr)
				return nil
			}
		},
	}
}

// blockTarget is the data a blocking run writes and watches. Sample i's write
// must leave a state that matches(i) recognises and no earlier state matched,
// so a stale or spurious answer is never taken for the wake.
type blockTarget interface {
	prepare(ctx context.Context) error                    // set the starting state
	write(ctx context.Context, i int) error               // make sample i's change
	watchPath() string                                    // path (and query) to block on
	matches(status int, body []byte, i int) (bool, error) // does this answer show write i?
	cleanup(ctx context.Context) error                    // remove what the run wrote
}

// blocker runs the writer (in the calling goroutine) against one watcher
// goroutine.
type blocker struct {
	target   blockTarget
	watch    *requester
	samples  int
	duration time.Duration
	timeout  time.Duration // per write, and per wake after a write
	wait     time.Duration
	settle   time.Duration
}

// errTimeout marks a sample whose write or wake took longer than -timeout.
var errTimeout = errors.New("timed out")

// run takes the samples. Setup failures are returned as an error; a failure
// during sampling ends the run and is reported in the result.
func (b *blocker) run(ctx context.Context) (loadResult, error) {
	var res loadResult
	if err := b.target.prepare(ctx); err != nil {
		return res, fmt.Errorf("prepare: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
		defer cancel()
		_ = b.target.cleanup(cctx) // best effort: the data is the tool's own
	}()
	index, err := b.firstIndex(ctx)
	if err != nil {
		return res, fmt.Errorf("first read of the watch: %w", err)
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	ready := make(chan struct{}, 1)    // the watch request for the next sample has been sent
	arrived := make(chan time.Time, 1) // when the answer showing the last write arrived
	watchErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := b.watcher(watchCtx, index, ready, arrived); err != nil && watchCtx.Err() == nil {
			watchErr <- err
		}
	}()
	defer wg.Wait()
	defer stopWatch()

	start := time.Now()
	deadline := start.Add(b.duration)
	fail := func(err error) {
		res.n++
		res.errors++
		res.firstErr = err
	}
	for i := 0; i < b.samples && time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		if err := b.await(ctx, ready, watchErr, "the watch request"); err != nil {
			if ctx.Err() == nil {
				fail(fmt.Errorf("sample %d: %w", i, err))
			}
			break
		}
		if b.settle > 0 {
			pause := time.NewTimer(b.settle)
			select {
			case <-pause.C:
			case <-ctx.Done():
			}
			pause.Stop()
		}
		wctx, cancel := context.WithTimeout(ctx, b.timeout)
		sent := time.Now()
		err := b.target.write(wctx, i)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				fail(fmt.Errorf("sample %d: write: %w", i, err))
			}
			break
		}
		timer := time.NewTimer(b.timeout)
		select {
		case at := <-arrived:
			res.n++
			res.hist.record(at.Sub(sent))
		case err = <-watchErr:
			fail(fmt.Errorf("sample %d: watch: %w", i, err))
		case <-timer.C:
			err = fmt.Errorf("sample %d: no wake within -timeout %v: %w", i, b.timeout, errTimeout)
			fail(err)
		case <-ctx.Done():
			err = ctx.Err()
		}
		timer.Stop()
		if err != nil {
			break
		}
	}
	res.elapsed = time.Since(start)
	return res, nil
}

// await waits for a signal on ch, failing on a watcher error or -timeout.
func (b *blocker) await(ctx context.Context, ch <-chan struct{}, watchErr <-chan error, what string) error {
	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	select {
	case <-ch:
		return nil
	case err := <-watchErr:
		return fmt.Errorf("watch: %w", err)
	case <-timer.C:
		return fmt.Errorf("%s was not sent within -timeout %v: %w", what, b.timeout, errTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// firstIndex reads the watched path without blocking and returns its
// X-Consul-Index.
func (b *blocker) firstIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	path := b.target.watchPath()
	status, body, hdr, err := b.watch.do(ctx, "GET", path, nil, 1<<20)
	if err != nil {
		return 0, err
	}
	if _, err := b.target.matches(status, body, -1); err != nil {
		return 0, err
	}
	return consulIndex(hdr.Get("X-Consul-Index"))
}

// watcher blocks on the watched path sample after sample. For each sample
// it signals ready once its first request has been written, then re-issues
// the blocking query with the latest index until an answer shows the
// sample's write, and sends that answer's arrival time.
func (b *blocker) watcher(ctx context.Context, index uint64, ready chan<- struct{}, arrived chan<- time.Time) error {
	base := b.target.watchPath()
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	waitParam := strconv.FormatInt(b.wait.Milliseconds(), 10) + "ms"
	for i := 0; i < b.samples; i++ {
		var once sync.Once
		signal := func() {
			once.Do(func() {
				select {
				case ready <- struct{}{}:
				default: // cannot happen: the writer takes each signal before the next
				}
			})
		}
		for {
			var firstByte atomic.Pointer[time.Time]
			trace := &httptrace.ClientTrace{
				WroteRequest: func(httptrace.WroteRequestInfo) { signal() },
				GotFirstResponseByte: func() {
					now := time.Now()
					firstByte.Store(&now)
				},
			}
			path := base + sep + "index=" + strconv.FormatUint(index, 10) + "&wait=" + waitParam
			status, body, hdr, err := b.watch.do(httptrace.WithClientTrace(ctx, trace), "GET", path, nil, 1<<20)
			at := time.Now()
			if err != nil {
				return err
			}
			if p := firstByte.Load(); p != nil {
				at = *p
			}
			next, err := consulIndex(hdr.Get("X-Consul-Index"))
			if err != nil {
				return fmt.Errorf("GET %s: %w", path, err)
			}
			if next < index {
				next = 0 // the index went backwards: start over, as Consul's docs advise
			}
			index = next
			ok, err := b.target.matches(status, body, i)
			if err != nil {
				return fmt.Errorf("GET %s: %w", path, err)
			}
			if ok {
				select {
				case arrived <- at:
				case <-ctx.Done():
					return ctx.Err()
				}
				break
			}
		}
	}
	return nil
}

// consulIndex parses an X-Consul-Index header.
func consulIndex(v string) (uint64, error) {
	if v == "" {
		return 0, errors.New("no X-Consul-Index header")
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad X-Consul-Index %q", v)
	}
	return n, nil
}

// kvTarget writes a value unique to the run and the sample to one key.
type kvTarget struct {
	w     *requester
	key   string
	run   string
	stale bool
}

func (k *kvTarget) value(i int) string { return "meridian-bench " + k.run + " " + strconv.Itoa(i) }

func (k *kvTarget) prepare(ctx context.Context) error {
	return k.w.expectOK(ctx, "PUT", kvPath(k.key), []byte(k.value(-1)), "true")
}

func (k *kvTarget) write(ctx context.Context, i int) error {
	return k.w.expectOK(ctx, "PUT", kvPath(k.key), []byte(k.value(i)), "true")
}

func (k *kvTarget) watchPath() string {
	if k.stale {
		return kvPath(k.key) + "?stale"
	}
	return kvPath(k.key)
}

// matches accepts 404 as "not yet": a stale agent may not have the key.
func (k *kvTarget) matches(status int, body []byte, i int) (bool, error) {
	if status == 404 {
		return false, nil
	}
	if status < 200 || status > 299 {
		return false, fmt.Errorf("status %d: %s", status, truncate(body, 128))
	}
	var entries []struct{ Value []byte }
	if err := json.Unmarshal(body, &entries); err != nil {
		return false, fmt.Errorf("decode KV answer: %w", err)
	}
	return len(entries) == 1 && string(entries[0].Value) == k.value(i), nil
}

func (k *kvTarget) cleanup(ctx context.Context) error {
	return k.w.expectOK(ctx, "DELETE", kvPath(k.key), nil, "")
}

// catalogTarget registers one instance of a service on even samples, with
// the sample in its metadata, and deregisters it on odd ones.
type catalogTarget struct {
	w       *requester
	service string
	node    string
	run     string
	stale   bool
}

// seqMeta is the service metadata key that carries the sample.
const seqMeta = "meridian_bench_seq"

func (c *catalogTarget) seq(i int) string { return c.run + "-" + strconv.Itoa(i) }

func (c *catalogTarget) prepare(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"Node": c.node})
	return c.w.expectOK(ctx, "PUT", "/v1/catalog/deregister", body, "")
}

func (c *catalogTarget) write(ctx context.Context, i int) error {
	if i%2 == 1 {
		body, _ := json.Marshal(map[string]string{"Node": c.node, "ServiceID": c.service})
		return c.w.expectOK(ctx, "PUT", "/v1/catalog/deregister", body, "true")
	}
	body, _ := json.Marshal(catalogRegistration{
		Node:    c.node,
		Address: "127.0.0.1",
		Service: &catalogService{
			ID: c.service, Service: c.service, Address: "127.0.0.1", Port: 8080,
			Meta: map[string]string{seqMeta: c.seq(i)},
		},
	})
	return c.w.expectOK(ctx, "PUT", "/v1/catalog/register", body, "true")
}

func (c *catalogTarget) watchPath() string {
	p := "/v1/health/service/" + url.PathEscape(c.service)
	if c.stale {
		p += "?stale"
	}
	return p
}

func (c *catalogTarget) matches(status int, body []byte, i int) (bool, error) {
	if status < 200 || status > 299 {
		return false, fmt.Errorf("status %d: %s", status, truncate(body, 128))
	}
	var entries []struct {
		Node    struct{ Node string }
		Service struct {
			ID   string
			Meta map[string]string
		}
	}
	if err := json.Unmarshal(body, &entries); err != nil {
		return false, fmt.Errorf("decode health answer: %w", err)
	}
	var found *map[string]string
	for _, e := range entries {
		if e.Node.Node == c.node && e.Service.ID == c.service {
			found = &e.Service.Meta
		}
	}
	if i%2 == 1 {
		return found == nil, nil
	}
	return found != nil && (*found)[seqMeta] == c.seq(i), nil
}

func (c *catalogTarget) cleanup(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"Node": c.node})
	return c.w.expectOK(ctx, "PUT", "/v1/catalog/deregister", body, "")
}
