package main

import (
	"context"
	"encoding/json"
	"errors"
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

// Timings of `meridian lock`, as Consul's lock command uses them.
const (
	// lockSessionTTL is the TTL of the lock's session; it is renewed every
	// half TTL while the child runs, so a dead `meridian lock` frees the
	// lock within about twice this (the server's TTL multiplier).
	lockSessionTTL = 15 * time.Second
	// lockKillGrace is how long a child has to exit after SIGTERM, once
	// the lock is lost, before it gets SIGKILL.
	lockKillGrace = 5 * time.Second
	// lockWait is the wait of each blocking query on the lock's keys; it
	// stays below the client's 30s request timeout.
	lockWait = 15 * time.Second
	// lockRetry is the pause after a failed request before the next one.
	lockRetry = time.Second
)

// lockKeyName is the key under the prefix that holds the lock (or, for a
// semaphore, the holders' record), as Consul names it.
const lockKeyName = ".lock"

// errLockLost is what a holder's monitor reports when the lock is no
// longer held by its session.
var errLockLost = errors.New("lock lost")

// semaphoreRecord is the value of a semaphore's .lock key, as Consul's
// api.Semaphore writes it.
type semaphoreRecord struct {
	Limit   int
	Holders map[string]bool
}

// lockOptions are the parsed arguments of `meridian lock`.
type lockOptions struct {
	prefix  string
	limit   int
	timeout time.Duration
	name    string
	shell   bool
	argv    []string
}

func runLock(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return lockCmd(ctx, args, os.Stdin, stdout, stderr)
}

// lockCmd is `meridian lock`; cancelling ctx (SIGINT or SIGTERM) is
// forwarded to the child as SIGTERM, or abandons a wait for the lock.
func lockCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs, client := clientFlags("lock", "Runs a command while holding a lock (or a semaphore slot with -n > 1) on PREFIX: [options] PREFIX CMD [ARGS...].", stderr)
	limit := fs.Int("n", 1, "how many holders may run at once; above 1 the lock is a semaphore")
	timeout := fs.Duration("timeout", 0, "give up waiting for the lock after this long (0: wait forever)")
	name := fs.String("name", "", "name of the lock's session (default \"meridian lock PREFIX\")")
	shell := fs.Bool("shell", true, "run CMD ARGS through /bin/sh -c, as one command line")
	client = serverFlags(fs, client, staleAccepted)
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	if fs.NArg() < 2 {
		return usageError(fs, fmt.Sprintf("meridian lock: expected PREFIX and a command, got %d argument(s)", fs.NArg()))
	}
	if *limit < 1 {
		fmt.Fprintf(stderr, "meridian lock: -n must be at least 1, got %d\n", *limit)
		return 1
	}
	o := lockOptions{prefix: strings.TrimSuffix(strings.TrimPrefix(fs.Arg(0), "/"), "/"), limit: *limit,
		timeout: *timeout, name: *name, shell: *shell, argv: fs.Args()[1:]}
	if o.prefix == "" {
		fmt.Fprintln(stderr, "meridian lock: PREFIX must not be empty")
		return 1
	}
	if o.name == "" {
		o.name = "meridian lock " + o.prefix
	}
	l := &locker{c: client(), opts: o}
	return l.run(ctx, stdin, stdout, stderr)
}

// locker holds one lock or semaphore slot for the life of a child.
type locker struct {
	c       *httpClient
	opts    lockOptions
	session string
}

func (l *locker) lockKey() string { return l.opts.prefix + "/" + lockKeyName }

func (l *locker) run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
	if err := l.createSession(ctx); err != nil {
		return fail(stderr, "lock", err)
	}
	// Every path from here destroys the session, which frees whatever it
	// holds even if the release below failed.
	defer l.destroySession()

	renewCtx, stopRenew := context.WithCancel(context.Background())
	defer stopRenew()
	sessionGone := make(chan struct{})
	go l.renew(renewCtx, sessionGone)

	acqCtx := ctx
	if l.opts.timeout > 0 {
		var cancel context.CancelFunc
		acqCtx, cancel = context.WithTimeout(ctx, l.opts.timeout)
		defer cancel()
	}
	var err error
	if l.opts.limit == 1 {
		err = l.acquireLock(acqCtx)
	} else {
		err = l.acquireSemaphore(acqCtx)
	}
	switch {
	case err != nil && errors.Is(acqCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		fmt.Fprintf(stderr, "meridian lock: timed out after %v waiting for the lock on %q\n", l.opts.timeout, l.opts.prefix)
		return 1
	case err != nil && ctx.Err() != nil:
		fmt.Fprintf(stderr, "meridian lock: interrupted while waiting for the lock on %q\n", l.opts.prefix)
		return 1
	case err != nil:
		return fail(stderr, "lock", err)
	}
	defer l.release()

	monCtx, stopMon := context.WithCancel(context.Background())
	defer stopMon()
	lost := make(chan error, 1)
	go func() { lost <- l.monitor(monCtx, sessionGone) }()

	code, lostErr := l.runChild(ctx, lost, stdin, stdout, stderr)
	if lostErr != nil {
		fmt.Fprintf(stderr, "meridian lock: lock on %q lost (%v); child terminated\n", l.opts.prefix, lostErr)
		return 1
	}
	return code
}

// runChild runs the command and waits for it. A lost lock terminates it
// (SIGTERM, then SIGKILL after lockKillGrace) and is answered as lostErr;
// ctx's end is forwarded to it as SIGTERM.
func (l *locker) runChild(ctx context.Context, lost <-chan error, stdin io.Reader, stdout, stderr io.Writer) (code int, lostErr error) {
	var cmd *exec.Cmd
	if l.opts.shell {
		cmd = exec.Command("/bin/sh", "-c", strings.Join(l.opts.argv, " "))
	} else {
		cmd = exec.Command(l.opts.argv[0], l.opts.argv[1:]...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Env = append(os.Environ(), "MERIDIAN_LOCK_SESSION="+l.session)
	// A grandchild that outlives the child must not keep Wait copying its
	// output forever.
	cmd.WaitDelay = lockKillGrace
	if err := cmd.Start(); err != nil {
		return fail(stderr, "lock", fmt.Errorf("start %q: %w", strings.Join(l.opts.argv, " "), err)), nil
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var kill <-chan time.Time
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-done:
			if lostErr != nil {
				return 1, lostErr
			}
			return exitCode(err, stderr), nil
		case err := <-lost:
			lost = nil
			if err == nil {
				continue
			}
			lostErr = err
			_ = cmd.Process.Signal(syscall.SIGTERM)
			kill = time.After(lockKillGrace)
		case <-ctxDone:
			ctxDone = nil
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-kill:
			_ = cmd.Process.Kill()
		}
	}
}

// exitCode is the code to exit with after the child ended with err.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		if c := ee.ExitCode(); c >= 0 {
			return c
		}
	}
	fmt.Fprintf(stderr, "meridian lock: child: %v\n", err)
	return 1
}

// request sends a request bound to ctx and answers status, index and body.
func (l *locker) request(ctx context.Context, method, path string, body []byte) (int, uint64, []byte, error) {
	return request(ctx, l.c, method, path, body)
}

// request sends a request bound to ctx to the agent and answers the status,
// the X-Consul-Index header and the body; it does not treat a status other
// than 200 as an error.
func request(ctx context.Context, c *httpClient, method, path string, body []byte) (int, uint64, []byte, error) {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return 0, 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("cannot reach the agent at %s (is it running? set -http-addr): %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	idx, _ := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	return resp.StatusCode, idx, b, nil
}

// statusErr is the error for an unexpected answer.
func statusErr(method, path string, code int, body []byte) error {
	return fmt.Errorf("%s %s: %d: %s", method, path, code, strings.TrimSpace(string(body)))
}

func (l *locker) createSession(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"Name": l.opts.name, "TTL": lockSessionTTL.String(), "Behavior": "release"})
	code, _, b, err := l.request(ctx, "PUT", "/v1/session/create", body)
	if err != nil {
		return err
	}
	if code != 200 {
		return statusErr("PUT", "/v1/session/create", code, b)
	}
	var out struct{ ID string }
	if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
		return fmt.Errorf("decode session create answer %q: %v", b, err)
	}
	l.session = out.ID
	return nil
}

// destroySession destroys the session; it runs on the way out, so it has
// its own short deadline rather than the (maybe cancelled) command's.
func (l *locker) destroySession() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, _, _ = l.request(ctx, "PUT", "/v1/session/destroy/"+l.session, nil)
}

// renew renews the session every half TTL until ctx ends; it closes gone
// when the server answers that the session no longer exists. Failures to
// reach the agent are retried: the TTL's slack covers a few.
func (l *locker) renew(ctx context.Context, gone chan<- struct{}) {
	t := time.NewTicker(lockSessionTTL / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		code, _, _, err := l.request(ctx, "PUT", "/v1/session/renew/"+l.session, nil)
		if err == nil && code == http.StatusNotFound {
			close(gone)
			return
		}
	}
}

// getKey reads a key, blocking while its index is index (0: no blocking).
// A missing key is answered as nil with the index.
func (l *locker) getKey(ctx context.Context, key string, index uint64) (*kvPair, uint64, error) {
	path := kvPath(key)
	if index > 0 {
		path += "?index=" + strconv.FormatUint(index, 10) + "&wait=" + lockWait.String()
	}
	code, idx, b, err := l.request(ctx, "GET", path, nil)
	if err != nil {
		return nil, 0, err
	}
	switch code {
	case http.StatusNotFound:
		return nil, idx, nil
	case http.StatusOK:
	default:
		return nil, 0, statusErr("GET", path, code, b)
	}
	var pairs []kvPair
	if err := json.Unmarshal(b, &pairs); err != nil || len(pairs) == 0 {
		return nil, 0, fmt.Errorf("decode %s: %v", path, err)
	}
	return &pairs[0], idx, nil
}

// putKey writes a key with the query q and answers the server's true or
// false.
func (l *locker) putKey(ctx context.Context, key string, q url.Values, value []byte) (bool, error) {
	path := kvPath(key)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	code, _, b, err := l.request(ctx, "PUT", path, value)
	if err != nil {
		return false, err
	}
	if code != 200 {
		return false, statusErr("PUT", path, code, b)
	}
	return strings.TrimSpace(string(b)) == "true", nil
}

// sleepCtx waits d or until ctx ends, answering ctx's error then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// acquireLock takes PREFIX/.lock with the session, waiting with blocking
// queries on the key while another session holds it (or its lock delay
// runs).
func (l *locker) acquireLock(ctx context.Context) error {
	var index uint64
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p, idx, err := l.getKey(ctx, l.lockKey(), index)
		if err != nil {
			if sleepCtx(ctx, lockRetry) != nil {
				return err
			}
			continue
		}
		if p != nil && p.Session != "" && p.Session != l.session {
			index = max(idx, 1) // held by another: wait for a change
			continue
		}
		ok, err := l.putKey(ctx, l.lockKey(), url.Values{"acquire": {l.session}}, nil)
		switch {
		case err != nil:
			if sleepCtx(ctx, lockRetry) != nil {
				return err
			}
		case ok:
			return nil
		default:
			// Refused while free: a lock delay after an invalidated holder.
			// Wait for the key to change, or retry shortly.
			if sleepCtx(ctx, lockRetry) != nil {
				return ctx.Err()
			}
		}
	}
}

// monitor watches the lock (or the semaphore record) with blocking
// queries and answers errLockLost once this session no longer holds it,
// or nil when ctx ends.
func (l *locker) monitor(ctx context.Context, sessionGone <-chan struct{}) error {
	var index uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sessionGone:
			return fmt.Errorf("%w: session %s no longer exists", errLockLost, l.session)
		default:
		}
		p, idx, err := l.getKey(ctx, l.lockKey(), index)
		if err != nil {
			if ctx.Err() != nil || sleepCtx(ctx, lockRetry) != nil {
				return nil
			}
			continue
		}
		if !l.holds(p) {
			return fmt.Errorf("%w: %s is no longer held by session %s", errLockLost, l.lockKey(), l.session)
		}
		index = max(idx, 1)
	}
}

// holds reports whether the lock key's state says this session holds it.
func (l *locker) holds(p *kvPair) bool {
	if p == nil {
		return false
	}
	if l.opts.limit == 1 {
		return p.Session == l.session
	}
	var rec semaphoreRecord
	if json.Unmarshal(p.Value, &rec) != nil {
		return false
	}
	return rec.Holders[l.session]
}

// acquireSemaphore takes a slot of the semaphore under PREFIX as Consul's
// api.Semaphore does: a contender key PREFIX/SESSION held by the session,
// and the record PREFIX/.lock listing at most Limit holders, updated with
// check-and-set. Holders whose contender key lost its session are pruned.
func (l *locker) acquireSemaphore(ctx context.Context) error {
	contender := l.opts.prefix + "/" + l.session
	ok, err := l.putKey(ctx, contender, url.Values{"acquire": {l.session}}, nil)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("cannot acquire contender key %q", contender)
	}
	var index uint64
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		path := kvPath(l.opts.prefix+"/") + "?recurse"
		if index > 0 {
			path += "&index=" + strconv.FormatUint(index, 10) + "&wait=" + lockWait.String()
		}
		code, idx, b, err := l.request(ctx, "GET", path, nil)
		if err == nil && code != 200 && code != http.StatusNotFound {
			err = statusErr("GET", path, code, b)
		}
		var pairs []kvPair
		if err == nil && code == 200 {
			err = json.Unmarshal(b, &pairs)
		}
		if err != nil {
			if sleepCtx(ctx, lockRetry) != nil {
				return err
			}
			continue
		}
		live := map[string]bool{}
		var lockPair *kvPair
		for i := range pairs {
			p := &pairs[i]
			if p.Key == l.lockKey() {
				lockPair = p
			} else if p.Session != "" {
				live[p.Session] = true
			}
		}
		rec := semaphoreRecord{Limit: l.opts.limit, Holders: map[string]bool{}}
		var cas uint64
		if lockPair != nil {
			cas = lockPair.ModifyIndex
			if err := json.Unmarshal(lockPair.Value, &rec); err != nil {
				return fmt.Errorf("semaphore record %s: %w", l.lockKey(), err)
			}
			if rec.Limit != l.opts.limit {
				return fmt.Errorf("semaphore %q has limit %d, not -n %d", l.opts.prefix, rec.Limit, l.opts.limit)
			}
			if rec.Holders == nil {
				rec.Holders = map[string]bool{}
			}
		}
		for h := range rec.Holders {
			if !live[h] {
				delete(rec.Holders, h)
			}
		}
		if len(rec.Holders) >= rec.Limit {
			index = max(idx, 1)
			continue
		}
		rec.Holders[l.session] = true
		val, _ := json.Marshal(rec)
		ok, err := l.putKey(ctx, l.lockKey(), url.Values{"cas": {strconv.FormatUint(cas, 10)}}, val)
		if err != nil {
			if sleepCtx(ctx, lockRetry) != nil {
				return err
			}
			continue
		}
		if ok {
			return nil
		}
		index = 0 // lost the race: read again at once
	}
}

// release gives the lock (or semaphore slot) back; the session is
// destroyed afterwards anyway, which frees it if this fails.
func (l *locker) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if l.opts.limit == 1 {
		_, _ = l.putKey(ctx, l.lockKey(), url.Values{"release": {l.session}}, nil)
		return
	}
	for range 5 {
		p, _, err := l.getKey(ctx, l.lockKey(), 0)
		if err != nil || p == nil {
			break
		}
		var rec semaphoreRecord
		if json.Unmarshal(p.Value, &rec) != nil || !rec.Holders[l.session] {
			break
		}
		delete(rec.Holders, l.session)
		val, _ := json.Marshal(rec)
		ok, err := l.putKey(ctx, l.lockKey(), url.Values{"cas": {strconv.FormatUint(p.ModifyIndex, 10)}}, val)
		if err != nil || ok {
			break
		}
	}
	_, _, _, _ = l.request(ctx, "DELETE", kvPath(l.opts.prefix+"/"+l.session), nil)
}
