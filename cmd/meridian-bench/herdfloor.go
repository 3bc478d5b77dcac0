package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// herdFloor is what the herd costs on this machine with nothing but Go's
// HTTP server between the watchers and the answer (floor-server, which
// herd -floor starts): a server that parks every blocking health read on
// one channel and, when a registration moves its index, answers them all
// with bytes it encoded once. No state, no Raft, no encoding per watcher: an
// agent cannot wake its watchers faster than this, so the floor's figures
// are the limit the agents' are measured against.
type herdFloor struct {
	srv *http.Server
	ln  net.Listener
	// size pads each answer to the agent's answer length.
	size int

	mu      sync.Mutex
	index   uint64
	answer  []byte
	length  string        // len(answer), for Content-Length
	changed chan struct{} // closed, and replaced, when index moves
}

// startHerdFloor serves a floor on addr, over HTTP/1.1 and h2c, its
// answers padded to size bytes.
func startHerdFloor(addr string, size int) (*herdFloor, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	f := &herdFloor{ln: ln, size: size, index: 1, changed: make(chan struct{})}
	f.setAnswer(nil)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/catalog/register", f.register)
	mux.HandleFunc("PUT /v1/catalog/deregister", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "true") })
	mux.HandleFunc("GET /v1/health/service/{name}", f.health)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	f.srv = &http.Server{Handler: mux, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// Addr is the floor's host:port.
func (f *herdFloor) Addr() string { return f.ln.Addr().String() }

// Close stops the floor and its parked reads.
func (f *herdFloor) Close() { _ = f.srv.Close() }

// setAnswer makes the health answer a JSON array holding the registration
// (it carries the round's marker), padded with spaces to f.size bytes.
func (f *herdFloor) setAnswer(reg []byte) {
	var b bytes.Buffer
	b.WriteByte('[')
	b.Write(reg)
	for b.Len() < f.size-1 {
		b.WriteByte(' ')
	}
	b.WriteByte(']')
	f.answer, f.length = b.Bytes(), strconv.Itoa(b.Len())
}

func (f *herdFloor) register(w http.ResponseWriter, r *http.Request) {
	reg, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.index++
	f.setAnswer(reg)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	io.WriteString(w, "true")
}

func (f *herdFloor) health(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	want, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	wait, err := time.ParseDuration(q.Get("wait"))
	if err != nil || wait <= 0 {
		wait = 5 * time.Minute
	}
	f.mu.Lock()
	idx, ch := f.index, f.changed
	f.mu.Unlock()
	if want >= idx {
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	f.mu.Lock()
	idx, answer, length := f.index, f.answer, f.length
	f.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", length)
	h.Set("X-Consul-Index", strconv.FormatUint(idx, 10))
	_, _ = w.Write(answer)
}

// floorServerMode serves the herd's floor until interrupted or until its
// standard input closes (herd -floor starts it as a child, so that the
// floor has its own open-files limit and CPU seconds, as an agent does).
func floorServerMode() mode {
	return mode{
		name:    "floor-server",
		summary: "serves the herd's floor on -addr: blocking health reads of any service parked until a registration, then answered with -size bytes encoded once (herd -floor starts one)",
		examples: []string{
			"-addr 127.0.0.1:8599 -size 1500",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			fs.StringVar(&c.addr, "addr", "127.0.0.1:0", "`address` to listen on")
			size := fs.Int("size", 1500, "answer length in `bytes`")
			return func(ctx context.Context, out *output) error {
				if *size < 2 || *size > 64<<20 {
					return badFlag("-size must be 2 bytes to 64 MiB, got %d", *size)
				}
				f, err := startHerdFloor(c.addr, *size)
				if err != nil {
					return err
				}
				defer f.Close()
				fmt.Fprintf(out.stdout, "floor-server listening on %s\n", f.Addr())
				stdinClosed := make(chan struct{})
				go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
				select {
				case <-ctx.Done():
				case <-stdinClosed:
				}
				return nil
			}
		},
	}
}

// childEnv, set to 1, marks a process the tool starts to run one of its
// modes: in the tests the binary is the tests', which then runs the mode
// rather than the tests (TestMain).
const childEnv = "MERIDIAN_BENCH_CHILD"

// measureFloor runs h's rounds again against a floor-server child whose
// answers are as long as the agents' (RESULT mode=herd-floor, rounds
// "herd-floor round" with the floor's CPU seconds as an agent's): the same
// watchers, connections and protocol, so the two runs differ only in what
// answers them.
func (h *herd) measureFloor(ctx context.Context, answerSize int) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	cmd := exec.Command(exe, "floor-server", "-addr", "127.0.0.1:0", "-size", strconv.Itoa(max(answerSize, 2)))
	cmd.Env = append(os.Environ(), childEnv+"=1")
	// The floor's own errors go straight to this process's standard
	// error: another writer would be copied into by a goroutine of exec's
	// while the rounds write to it too.
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	// A pipe of our own, not StdoutPipe: Wait would close that one under
	// the reader below.
	stdout, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	defer stdout.Close()
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("floor: start %s floor-server: %w", exe, err)
	}
	defer func() {
		stdin.Close() // the floor stops when its input closes
		_ = cmd.Wait()
	}()
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimPrefix(strings.TrimSpace(line), "floor-server listening on ")
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		return errors.New("floor: floor-server did not say its address within 10s")
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("floor: floor-server said %q, not its address", a)
	}
	fh := *h
	fh.label = "herd-floor"
	fh.targets = []string{a}
	fh.w = &requester{base: "http://" + a, client: newClient(1, 10*time.Second)}
	defer fh.w.client.CloseIdleConnections()
	fh.pids, fh.servers, fh.profDir, fh.token = []int{cmd.Process.Pid}, nil, "", ""
	return fh.measure(ctx)
}
