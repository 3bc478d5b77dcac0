package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// herdMode measures the thundering herd: -n watchers park a blocking query
// on one service's health, spread over the agents of -addrs, each on its
// own kept-alive connection; the tool then flips the service's check and
// times how long until the last watcher has the new answer (a line per
// round on stderr, with the agents' figures). Each watcher is
// one goroutine reading its own connection (no HTTP client machinery), so
// the tool stays small next to the agents it measures.
func herdMode() mode {
	return mode{
		name:    "herd",
		summary: "parks -n blocking queries on one service's health over -addrs, flips its check, and times the last answer (-pids: the agents' RSS and CPU seconds)",
		examples: []string{
			"-addrs 127.0.0.1:8500 -n 10000 -rounds 3",
			"-addrs 127.0.0.11:8500,127.0.0.12:8500,127.0.0.13:8500 -stale -n 10000 -pids 101,102,103",
			"-addrs 127.0.0.21:8500,127.0.0.22:8500 -h2c -n 100000",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			addrs := fs.String("addrs", "127.0.0.1:8500", "comma-separated `addresses` of the agents the watchers spread over, round robin")
			writeAddr := fs.String("write-addr", "", "`address` of the agent the check flips go through (default: the first of -addrs)")
			fs.Int64Var(&c.n, "n", 1000, "watchers, one connection each")
			fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "fail when the last watcher is not answered this long after a flip")
			fs.StringVar(&c.token, "token", "", "ACL token sent as X-Consul-Token")
			service := fs.String("service", "herd", "service `name` registered and watched")
			node := fs.String("node", "herd-node", "`node` the service and its check are registered on")
			rounds := fs.Int("rounds", 3, "check flips to time")
			stale := fs.Bool("stale", false, "add ?stale to the watch: each server answers from its own state")
			query := fs.String("query", "", "more `parameters` for the watch, such as filter=... (URL-encoded)")
			sources := fs.Int("sources", 0, "spread the connections over this many loopback source IPs (127.0.1.1 and up), as many hosts would (0: one per 100 watchers)")
			wait := fs.Duration("wait", 5*time.Minute, "wait= of each blocking query")
			settle := fs.Duration("settle", 2*time.Second, "pause after every watch request is sent, before the flip, so they are parked")
			h2c := fs.Bool("h2c", false, "send the watches as HTTP/2 streams without TLS (prior knowledge), many to a connection, rather than one HTTP/1.1 connection each")
			backend := fs.String("backend", "", "fail an answer served by another X-Consul-Query-Backend than this (`streaming`: every watcher answered from a client agent's streaming view); empty: any")
			cpuWindow := fs.Duration("cpu-window", 0, "read the -pids' CPU seconds this long after each flip (or at the last answer, if later), so that runs of different -n are compared over the same time; 0: at the last answer")
			servers := fs.String("servers", "", "comma-separated HTTP `addresses` of the servers, to count per round the RPCs they answered and the events they sent to streaming views (their metrics)")
			profDir := fs.String("profile-dir", "", "write a CPU profile of every -addrs agent from each flip into this `directory` (round<r>-<addr>.pprof; the agents need enable_debug)")
			profSecs := fs.Int("profile-secs", 3, "length of each -profile-dir profile, in seconds")
			pids := fs.String("pids", "", "comma-separated `pids` of the agents, to read their RSS and CPU seconds from /proc (Linux)")
			floor := fs.Bool("floor", false, "then run the same rounds against a floor-server child that parks the watches and answers them with bytes of the agents' answer length encoded once (RESULT mode=herd-floor after the agents', with its CPU seconds): the fastest Go's HTTP server wakes them on this machine")
			return func(ctx context.Context, out *output) error {
				switch {
				case c.n < 1 || c.n > 1000000:
					return badFlag("-n must be 1-1000000, got %d", c.n)
				case *rounds < 1:
					return badFlag("-rounds must be at least 1, got %d", *rounds)
				case *service == "" || *node == "":
					return badFlag("-service and -node must not be empty")
				case *sources < 0 || *sources > 60000:
					return badFlag("-sources must be 0-60000, got %d", *sources)
				case *wait <= 0 || *wait > 10*time.Minute:
					return badFlag("-wait must be positive and at most 10m, got %v", *wait)
				case *settle < 0:
					return badFlag("-settle must not be negative, got %v", *settle)
				case *cpuWindow < 0:
					return badFlag("-cpu-window must not be negative, got %v", *cpuWindow)
				}
				h := &herd{label: "herd", n: int(c.n), rounds: *rounds, timeout: c.timeout, wait: *wait, settle: *settle, token: c.token, service: *service, node: *node, backend: *backend, cpuWindow: *cpuWindow, out: out}
				for _, a := range strings.Split(*addrs, ",") {
					base, err := baseURL("addrs", strings.TrimSpace(a), out.stderr)
					if err != nil {
						return err
					}
					u, _ := url.Parse(base)
					h.targets = append(h.targets, u.Host)
				}
				for _, a := range strings.Split(*servers, ",") {
					if a = strings.TrimSpace(a); a == "" {
						continue
					}
					base, err := baseURL("servers", a, out.stderr)
					if err != nil {
						return err
					}
					u, _ := url.Parse(base)
					h.servers = append(h.servers, u.Host)
				}
				if *writeAddr == "" {
					*writeAddr = h.targets[0]
				}
				wbase, err := baseURL("write-addr", *writeAddr, out.stderr)
				if err != nil {
					return err
				}
				h.w = &requester{base: wbase, token: c.token, client: newClient(1, 10*time.Second)}
				defer h.w.client.CloseIdleConnections()
				h.h2c = *h2c
				h.dials = make(chan struct{}, maxDials)
				h.sources = *sources
				if h.sources == 0 {
					h.sources = (h.n + 99) / 100
				}
				for _, p := range strings.Split(*pids, ",") {
					if p = strings.TrimSpace(p); p == "" {
						continue
					}
					pid, err := strconv.Atoi(p)
					if err != nil || pid <= 0 {
						return badFlag("-pids: %q is not a process id", p)
					}
					h.pids = append(h.pids, pid)
				}
				if *profSecs < 1 {
					return badFlag("-profile-secs must be at least 1, got %d", *profSecs)
				}
				h.profDir, h.profSecs = *profDir, *profSecs
				h.path = "/v1/health/service/" + url.PathEscape(*service) + "?"
				if *stale {
					h.path += "stale&"
				}
				if *query != "" {
					h.path += strings.TrimPrefix(*query, "&") + "&"
				}
				h.run = strconv.FormatUint(rand.Uint64(), 36)
				if err := h.measure(ctx); err != nil || !*floor || out.errors > 0 {
					return err
				}
				return h.measureFloor(ctx, h.answerSize)
			}
		},
	}
}

// herd is one herd run.
type herd struct {
	label   string   // "herd", or "herd-floor" against the floor
	targets []string // host:port of the agents
	w       *requester
	path    string // the watch, ending in ? or &, before index= and wait=
	n       int
	rounds  int
	sources int
	timeout time.Duration
	wait    time.Duration
	settle  time.Duration
	token   string
	service string
	node    string
	backend string   // the X-Consul-Query-Backend every answer must have ("": any)
	servers []string // host:port of the servers whose counts are read
	// cpuWindow is how long after a flip the agents' CPU is read (0: at
	// the last answer).
	cpuWindow time.Duration
	pids      []int
	run       string
	out       *output
	// h2c carries every watch as an HTTP/2 stream (-h2c).
	h2c bool
	// dials holds a token per connection being opened (maxDials).
	dials chan struct{}
	// profDir receives the agents' CPU profiles of profSecs from each
	// flip ("": none).
	profDir  string
	profSecs int
	// answerSize is the length of the first watcher's first answer, the
	// floor's answer length.
	answerSize int
}

// streamsPerConn is how many watches share one HTTP/2 connection under
// -h2c: below the 250 concurrent streams Go's HTTP/2 server allows.
const streamsPerConn = 200

// marker is the check output of round r (-1: the starting state).
func (h *herd) marker(r int) string { return "meridian-bench herd " + h.run + " " + strconv.Itoa(r) }

// flip registers the check with round r's status and output.
func (h *herd) flip(ctx context.Context, r int) error {
	status := "passing"
	if r%2 == 0 {
		status = "critical"
	}
	body, _ := json.Marshal(map[string]any{
		"Node": h.node, "Address": "127.0.0.1",
		"Service": catalogService{ID: h.service, Service: h.service, Address: "127.0.0.1", Port: 8080},
		"Check": map[string]string{
			"Node": h.node, "CheckID": h.service + "-check", "Name": h.service + " check",
			"Status": status, "ServiceID": h.service, "Output": h.marker(r),
		},
	})
	// The registration is idempotent: one the agent answered 5xx or not
	// at all (no leader for a moment, or one that went silent mid-write)
	// is sent again, as a watcher asks again, rather than ending the run.
	for attempt := 0; ; attempt++ {
		status, got, _, err := h.w.do(ctx, "PUT", "/v1/catalog/register", body, 512)
		switch {
		case err != nil && (attempt >= maxFlipRetries || ctx.Err() != nil):
			return err
		case (err != nil || status >= 500) && attempt < maxFlipRetries:
			if attempt%10 == 0 {
				fmt.Fprintf(h.out.stderr, "herd: flip %d: status %d, %v: again\n", r, status, err)
			}
			if err := pause(ctx, retryPause); err != nil {
				return err
			}
			continue
		case status != http.StatusOK || strings.TrimSpace(string(got)) != "true":
			return fmt.Errorf("PUT /v1/catalog/register: status %d: %s", status, truncate(got, 128))
		}
		return nil
	}
}

// watcher is one parked blocking query and its connection.
type watcher struct {
	h      *herd
	id     int
	target string
	src    net.IP
	conn   net.Conn
	rd     *bufio.Reader
	index  uint64
	// backend is the X-Consul-Query-Backend of the last answer.
	backend string
	req     []byte    // scratch
	body    []byte    // -h2c: the answer's buffer, reused
	h2      *h2Client // -h2c: the connection shared with other watches
}

// maxDials bounds the connections the watchers open at once: 10,000
// dials at the same moment overflow the agents' accept queues, and a
// dropped SYN waits a second or more to be sent again.
const maxDials = 128

// maxConnecting bounds the watchers making their first read at once.
const maxConnecting = 512

// dial opens the watcher's connection (again, when the agent closed it).
func (w *watcher) dial(ctx context.Context) error {
	select {
	case w.h.dials <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: w.src}}
	conn, err := d.DialContext(ctx, "tcp", w.target)
	<-w.h.dials
	if err != nil {
		return fmt.Errorf("dial %s from %s: %w", w.target, w.src, err)
	}
	w.conn = conn
	w.rd = bufio.NewReaderSize(conn, 2048)
	return nil
}

// get sends one GET of path and reads the answer: status, X-Consul-Index
// and body.
func (w *watcher) get(ctx context.Context, path string, sent func()) (int, uint64, []byte, error) {
	if w.h2 != nil {
		return w.getH2(ctx, path, sent)
	}
	for attempt := 0; ; attempt++ {
		if w.conn == nil {
			if err := w.dial(ctx); err != nil {
				return 0, 0, nil, err
			}
		}
		w.req = append(w.req[:0], "GET "...)
		w.req = append(w.req, path...)
		w.req = append(w.req, " HTTP/1.1\r\nHost: "...)
		w.req = append(w.req, w.target...)
		if w.h.token != "" {
			w.req = append(w.req, "\r\nX-Consul-Token: "...)
			w.req = append(w.req, w.h.token...)
		}
		w.req = append(w.req, "\r\n\r\n"...)
		_, err := w.conn.Write(w.req)
		if err == nil {
			if sent != nil {
				sent()
			}
			var resp *http.Response
			if resp, err = http.ReadResponse(w.rd, nil); err == nil {
				body, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr == nil {
					idx, _ := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
					w.backend = resp.Header.Get("X-Consul-Query-Backend")
					if resp.Close {
						w.close()
					}
					return resp.StatusCode, idx, body, nil
				}
				err = rerr
			}
		}
		w.close()
		if attempt > 0 || ctx.Err() != nil {
			return 0, 0, nil, fmt.Errorf("GET %s on %s: %w", path, w.target, err)
		}
		// A kept-alive connection the agent closed: once more on a new one.
	}
}

// getH2 is get as one stream of the shared HTTP/2 connection.
func (w *watcher) getH2(ctx context.Context, path string, sent func()) (int, uint64, []byte, error) {
	var hdr []string
	if w.h.token != "" {
		hdr = []string{"x-consul-token", w.h.token}
	}
	status, idx, backend, body, err := w.h2.get(ctx, path, hdr, w.body, sent)
	w.body = body
	if err != nil {
		return 0, 0, nil, fmt.Errorf("GET %s on %s: %w", path, w.target, err)
	}
	w.backend = backend
	return status, idx, body, nil
}

func (w *watcher) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// roundResult is what one flip measured.
type roundResult struct {
	hist    histogram     // per watcher: from the flip to its new answer
	last    time.Duration // the slowest watcher
	wrong   int64         // answers that were neither the old nor the new state
	retried int64         // 5xx answers asked again (at most -n a round)
	// streamed counts the new answers served from a streaming view.
	streamed int64
	// rpcs and events are what the -servers answered and sent from
	// the parked moment to the after one.
	rpcs, events float64
	parked       []procStat // the agents with every watcher parked
	// goroutines of each target with every watcher parked (-1: unknown)
	goroutines []int
	after      []procStat // the agents once every watcher was answered
	// self is the load tool's own CPU seconds from the flip to the last
	// answer: on the agents' cores, it competes with them.
	self    float64
	firstEr error
}

// measure connects the watchers, runs the rounds and prints one line per
// round and the RESULT line.
func (h *herd) measure(ctx context.Context) error {
	if err := h.flip(ctx, -1); err != nil {
		return fmt.Errorf("register the watched service: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		body, _ := json.Marshal(map[string]string{"Node": h.node})
		_ = h.w.expectOK(cctx, "PUT", "/v1/catalog/deregister", body, "")
	}()
	ws := make([]*watcher, h.n)
	var h2 []*h2Client
	for i := range ws {
		ws[i] = &watcher{h: h, id: i, target: h.targets[i%len(h.targets)], src: sourceIP(i % h.sources)}
		if h.h2c {
			// Watchers i, i+len(targets), ... of one target share a
			// connection, streamsPerConn at a time.
			c := i/(len(h.targets)*streamsPerConn)*len(h.targets) + i%len(h.targets)
			for len(h2) <= c {
				h2 = append(h2, &h2Client{target: h.targets[len(h2)%len(h.targets)], src: sourceIP(len(h2) % h.sources), dials: h.dials})
			}
			ws[i].h2 = h2[c]
		}
	}
	defer func() {
		for _, w := range ws {
			w.close()
		}
		for _, c := range h2 {
			c.Close()
		}
	}()
	// First reads, on every watcher's connection, until each sees the
	// starting state (a stale server may lag the write), at most
	// maxConnecting at a time: these do not block, so each is a read of
	// its own upstream, and 100,000 at once would measure the start of
	// the herd rather than its wake.
	connecting := make(chan struct{}, maxConnecting)
	if err := h.each(ctx, ws, func(ctx context.Context, w *watcher) error {
		select {
		case connecting <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-connecting }()
		deadline := time.Now().Add(h.timeout)
		for {
			status, idx, body, err := w.get(ctx, h.path+"index="+strconv.FormatUint(w.index, 10)+"&wait=1s", nil)
			if err != nil {
				return err
			}
			if status >= 500 && time.Now().Before(deadline) {
				if err := pause(ctx, retryPause); err != nil {
					return err
				}
				continue
			}
			if status != http.StatusOK {
				return fmt.Errorf("GET %s: status %d: %s", h.path, status, truncate(body, 128))
			}
			w.index = idx
			if bytes.Contains(body, []byte(h.marker(-1))) {
				if w.id == 0 {
					h.answerSize = len(body)
				}
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("GET %s on %s: the starting state not seen within -timeout %v", h.path, w.target, h.timeout)
			}
		}
	}); err != nil {
		return fmt.Errorf("connect the watchers: %w", err)
	}
	fmt.Fprintf(h.out.stderr, "%s: %d watchers connected to %s from %d source IPs\n", h.label, h.n, strings.Join(h.targets, ","), h.sources)
	var all histogram
	var errs, n int64
	var firstErr error
	var lasts []time.Duration
	start := time.Now()
	for r := 0; r < h.rounds && ctx.Err() == nil; r++ {
		res, err := h.round(ctx, ws, r)
		if err != nil {
			errs++
			firstErr = err
			break
		}
		n += int64(h.n)
		errs += res.wrong
		if firstErr == nil {
			firstErr = res.firstEr
		}
		all.merge(&res.hist)
		lasts = append(lasts, res.last)
		line := fmt.Sprintf("%s round %d: n=%d last_ms=%s p50_ms=%s p99_ms=%s retried_5xx=%d streamed=%d tool_cpu_s=%.2f", h.label, r, h.n, ms(res.last), ms(res.hist.quantile(0.5)), ms(res.hist.quantile(0.99)), res.retried, res.streamed, res.self)
		for i, p := range res.parked {
			a := res.after[i]
			line += fmt.Sprintf(" pid%d_rss_mb=%.1f pid%d_cpu_s=%.2f", p.pid, float64(p.rss)/(1<<20), p.pid, a.cpu-p.cpu)
		}
		if len(h.servers) > 0 {
			line += fmt.Sprintf(" server_rpcs=%.0f server_events=%.0f", res.rpcs, res.events)
		}
		for i, g := range res.goroutines {
			line += fmt.Sprintf(" goroutines_%s=%d", h.targets[i], g)
		}
		fmt.Fprintln(h.out.stderr, line)
	}
	slices.Sort(lasts)
	last := time.Duration(0)
	if len(lasts) > 0 {
		last = lasts[len(lasts)/2]
	}
	what := fmt.Sprintf("%s %s%s n=%d rounds=%d median_last_ms=%s", h.label, h.targets[0], strings.TrimRight(h.path, "?&"), h.n, len(lasts), ms(last))
	h.out.report(h.label, what, n, errs, time.Since(start), &all, firstErr)
	return nil
}

// round parks every watcher, flips the check and waits for every answer.
func (h *herd) round(ctx context.Context, ws []*watcher, r int) (roundResult, error) {
	var res roundResult
	var sent sync.WaitGroup
	sent.Add(len(ws))
	var flipAt time.Time
	var mu sync.Mutex
	var wrong, retried, streamed atomic.Int64
	var firstErr error
	arrivals := make([]time.Time, len(ws))
	rctx, cancel := context.WithTimeout(ctx, h.settle+h.timeout+time.Minute)
	defer cancel()
	waitParam := "&wait=" + strconv.FormatInt(h.wait.Milliseconds(), 10) + "ms"
	want := []byte(h.marker(r))
	done := make(chan error, 1)
	go func() {
		done <- h.each(rctx, ws, func(ctx context.Context, w *watcher) error {
			var once sync.Once
			retries := 0
			for {
				status, idx, body, err := w.get(ctx, h.path+"index="+strconv.FormatUint(w.index, 10)+waitParam, func() { once.Do(sent.Done) })
				if err != nil {
					once.Do(sent.Done)
					return err
				}
				at := time.Now()
				if status >= 500 && retries < maxRetries {
					retries++
					retried.Add(1)
					// What a watcher does when its agent has no leader
					// for a moment: wait a little and ask again.
					if err := pause(ctx, retryPause); err != nil {
						return err
					}
					continue
				}
				if status != http.StatusOK {
					return fmt.Errorf("GET %s on %s: status %d: %s", h.path, w.target, status, truncate(body, 128))
				}
				if idx < w.index {
					idx = 0 // the index went backwards: start over, as Consul's docs advise
				}
				w.index = idx
				if bytes.Contains(body, want) {
					arrivals[w.id] = at
					if w.backend == "streaming" {
						streamed.Add(1)
					}
					if h.backend != "" && w.backend != h.backend {
						wrong.Add(1)
						mu.Lock()
						if firstErr == nil {
							firstErr = fmt.Errorf("GET %s on %s: answered by backend %q, want %q", h.path, w.target, w.backend, h.backend)
						}
						mu.Unlock()
					}
					return nil
				}
				if !bytes.Contains(body, []byte(h.marker(r-1))) {
					wrong.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("GET %s on %s: an answer of neither round %d nor %d: %s", h.path, w.target, r-1, r, truncate(body, 200))
					}
					mu.Unlock()
				}
				// Woken without the flip (an early wake, or another write):
				// park again.
			}
		})
	}()
	allSent := make(chan struct{})
	go func() { sent.Wait(); close(allSent) }()
	select {
	case <-allSent:
	case err := <-done:
		<-allSent
		return res, err
	case <-rctx.Done():
		return res, fmt.Errorf("round %d: watch requests not sent: %w", r, rctx.Err())
	}
	if h.settle > 0 {
		t := time.NewTimer(h.settle)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	res.parked = h.stats()
	rpcs0, events0 := h.serverCounts()
	for _, t := range h.targets {
		res.goroutines = append(res.goroutines, h.goroutines(t))
	}
	self0 := selfCPU()
	profiled := h.profile(r)
	defer profiled()
	flipAt = time.Now()
	if err := h.flip(ctx, r); err != nil {
		cancel()
		<-done
		return res, fmt.Errorf("round %d: flip: %w", r, err)
	}
	timer := time.NewTimer(h.timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return res, fmt.Errorf("round %d: %w", r, err)
		}
	case <-timer.C:
		cancel()
		<-done
		return res, fmt.Errorf("round %d: not every watcher answered within -timeout %v: %w", r, h.timeout, errTimeout)
	}
	if h.cpuWindow > 0 {
		if err := pause(ctx, time.Until(flipAt.Add(h.cpuWindow))); err != nil {
			return res, err
		}
	}
	res.self = (selfCPU() - self0).Seconds()
	res.after = h.stats()
	rpcs1, events1 := h.serverCounts()
	res.rpcs, res.events = rpcs1-rpcs0, events1-events0
	for _, at := range arrivals {
		d := at.Sub(flipAt)
		res.hist.record(d)
		res.last = max(res.last, d)
	}
	res.wrong = wrong.Load()
	res.retried = retried.Load()
	res.streamed = streamed.Load()
	res.firstEr = firstErr
	return res, nil
}

// each runs fn for every watcher, each in its own goroutine, and returns
// the first error.
func (h *herd) each(ctx context.Context, ws []*watcher, fn func(context.Context, *watcher) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, w := range ws {
		wg.Go(func() {
			if err := fn(ctx, w); err != nil {
				once.Do(func() { first = err; cancel() })
				w.close()
			}
		})
	}
	// A watcher blocked in a read ends when its connection closes.
	stop := context.AfterFunc(ctx, func() {
		for _, w := range ws {
			if c := w.conn; c != nil {
				_ = c.SetDeadline(time.Now())
			}
		}
	})
	wg.Wait()
	stop()
	for _, w := range ws {
		if w.conn != nil {
			_ = w.conn.SetDeadline(time.Time{})
		}
	}
	return first
}

// profile starts the CPU profiles of round r (-profile-dir) and returns
// what waits for them to be written.
func (h *herd) profile(r int) func() {
	if h.profDir == "" {
		return func() {}
	}
	var wg sync.WaitGroup
	for _, t := range h.targets {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(h.profSecs)*time.Second+30*time.Second)
			defer cancel()
			rq := &requester{base: "http://" + t, token: h.token, client: http.DefaultClient}
			status, body, _, err := rq.do(ctx, "GET", "/debug/pprof/profile?seconds="+strconv.Itoa(h.profSecs), nil, 64<<20)
			if err == nil && status == http.StatusOK {
				err = os.WriteFile(fmt.Sprintf("%s/round%d-%s.pprof", h.profDir, r, t), body, 0o644)
			}
			if err != nil || status != http.StatusOK {
				fmt.Fprintf(h.out.stderr, "herd: profile of %s: status %d, %v\n", t, status, err)
			}
		})
	}
	// The profiles start with their requests: let them reach the agents.
	time.Sleep(50 * time.Millisecond)
	return wg.Wait
}

// retryPause is how long a watcher waits before asking again after a 5xx,
// and maxRetries how many times a round it does.
const (
	retryPause = 200 * time.Millisecond
	maxRetries = 50
	// maxFlipRetries is how many times a flip is sent again (10s and more
	// of an election).
	maxFlipRetries = 50
)

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sourceIP is the i-th loopback source address, from 127.0.1.1 on.
func sourceIP(i int) net.IP {
	n := 256 + 1 + i + i/255 // skip the .0 of each /24
	return net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))
}

// procStat is what /proc says of one agent.
type procStat struct {
	pid int
	rss int64   // bytes
	cpu float64 // user+system seconds
}

// stats reads every -pids process.
func (h *herd) stats() []procStat {
	out := make([]procStat, 0, len(h.pids))
	for _, pid := range h.pids {
		out = append(out, readProc(pid))
	}
	return out
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc.
const clockTicks = 100

// readProc reads a process's RSS and CPU seconds.
func readProc(pid int) procStat {
	st := procStat{pid: pid}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command, which is in parentheses and may hold spaces.
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 13 {
				u, _ := strconv.ParseFloat(f[11], 64)
				s, _ := strconv.ParseFloat(f[12], 64)
				st.cpu = (u + s) / clockTicks
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				st.rss = kb << 10
			}
		}
	}
	return st
}

// goroutines reads go_goroutines from the Prometheus metrics of the agent
// at target, or -1.
func (h *herd) goroutines(target string) int {
	return int(h.metric(target, "go_goroutines"))
}

// metric is the sum of the series of the Prometheus metric name on the
// agent at target (-1: not read).
func (h *herd) metric(target, name string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := &requester{base: "http://" + target, token: h.token, client: h.w.client}
	status, body, _, err := r.do(ctx, "GET", "/v1/agent/metrics?format=prometheus", nil, 8<<20)
	if err != nil || status != http.StatusOK {
		return -1
	}
	sum, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || (f[0] != name && !strings.HasPrefix(f[0], name+"{")) {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// serverCounts sums, over the -servers, the RPCs they answered and the
// events they sent to subscribed client agents.
func (h *herd) serverCounts() (rpcs, events float64) {
	for _, s := range h.servers {
		rpcs += max(h.metric(s, "consul_rpc_request"), 0)
		events += max(h.metric(s, "consul_subscribe_events"), 0)
	}
	return rpcs, events
}
