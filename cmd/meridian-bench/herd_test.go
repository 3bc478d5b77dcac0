package main

import (
	"strings"
	"testing"
)

// TestHerdAnswersEveryWatcher: watchers spread over two agents, each on its
// own connection from its own source address, all see every flip; the
// tool reports one sample per watcher and round, and cleans up.
func TestHerdAnswersEveryWatcher(t *testing.T) {
	f := newFakeConsul()
	a, b := f.start(t), f.start(t)
	code, out, errOut := runTool(t, "herd", "-addrs", a+","+b, "-n", "40", "-rounds", "3", "-settle", "0", "-sources", "4", "-wait", "30s")
	if code != exitOK {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	r := parseResult(t, out)
	if r.mode != "herd" || r.n != 120 || r.errors != 0 {
		t.Errorf("RESULT = %+v, want mode=herd n=120 errors=0", r)
	}
	if got := strings.Count(errOut, "herd round "); got != 3 {
		t.Errorf("%d round lines on stderr, want 3:\n%s", got, errOut)
	}
	// Each watcher reads once to connect and at least once a round, on
	// the connection it keeps (the writer and the metrics reads have a
	// few of their own).
	if got := f.healthGets.Load(); got < 40+120 {
		t.Errorf("%d health GETs, want at least 160", got)
	}
	if got := f.conns.Load(); got >= 2*40 {
		t.Errorf("%d connections for 40 watchers over 3 rounds, want each to keep its own", got)
	}
	if n := f.nodeCount(); n != 0 {
		t.Errorf("%d nodes left after the run, want the watched node deregistered", n)
	}
}

// TestHerdOverH2C: with -h2c the watchers are streams of a few shared
// HTTP/2 connections, and still all see every flip.
func TestHerdOverH2C(t *testing.T) {
	f := newFakeConsul()
	a, b := f.start(t), f.start(t)
	code, out, errOut := runTool(t, "herd", "-addrs", a+","+b, "-h2c", "-n", "40", "-rounds", "2", "-settle", "0", "-wait", "30s")
	if code != exitOK {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if r := parseResult(t, out); r.n != 80 || r.errors != 0 {
		t.Errorf("RESULT = %+v, want n=80 errors=0", r)
	}
	// Two agents: one HTTP/2 connection each, and the writer's and the
	// metrics reads' HTTP/1.1 ones.
	if got := f.conns.Load(); got > 8 {
		t.Errorf("%d connections for 40 watchers over HTTP/2, want a few shared ones", got)
	}
}

func TestHerdBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"},
		{"-rounds", "0"},
		{"-wait", "11m"},
		{"-cpu-window", "-1s"},
		{"-pids", "x"},
		{"-addrs", "127.0.0.1:1/path"},
	} {
		code, _, errOut := runTool(t, append([]string{"herd"}, args...)...)
		if code != exitUsage || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("herd %v: exit %d, stderr %q; want %d and one line", args, code, errOut, exitUsage)
		}
	}
}

// TestHerdBackend: with -backend streaming, answers that did not come from
// a streaming view (the fake sends no X-Consul-Query-Backend) are errors.
func TestHerdBackend(t *testing.T) {
	f := newFakeConsul()
	a := f.start(t)
	_, out, errOut := runTool(t, "herd", "-addrs", a, "-n", "4", "-rounds", "1", "-settle", "0", "-wait", "30s", "-backend", "streaming")
	r := parseResult(t, out)
	if r.errors != 4 || !strings.Contains(out+errOut, `backend ""`) {
		t.Errorf("RESULT = %+v (stderr %q), want 4 errors naming the backend", r, errOut)
	}
	if !strings.Contains(errOut, "streamed=0") {
		t.Errorf("round line without streamed=0:\n%s", errOut)
	}
}
