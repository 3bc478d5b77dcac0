package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
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

// TestHerdFloor: -floor runs the rounds again against a floor-server
// child, after the agents' and with the agents' answer length; its
// watchers all see every flip too, its rounds carry the floor's CPU, and
// the agents see none of its reads.
func TestHerdFloor(t *testing.T) {
	f := newFakeConsul()
	a := f.start(t)
	code, out, errOut := runTool(t, "herd", "-addrs", a, "-n", "20", "-rounds", "2", "-settle", "0", "-wait", "30s", "-floor")
	if code != exitOK {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("stdout has %d lines, want the agents' two, then the floor's:\n%s", len(lines), out)
	}
	agents, floor := parseResult(t, lines[0]+"\n"+lines[1]), parseResult(t, lines[2]+"\n"+lines[3])
	if agents.mode != "herd" || agents.n != 40 || agents.errors != 0 {
		t.Errorf("agents' RESULT = %+v, want mode=herd n=40 errors=0", agents)
	}
	if floor.mode != "herd-floor" || floor.n != 40 || floor.errors != 0 {
		t.Errorf("floor RESULT = %+v, want mode=herd-floor n=40 errors=0", floor)
	}
	if got := strings.Count(errOut, "herd-floor round "); got != 2 || !regexp.MustCompile(`herd-floor round 0: .* pid[0-9]+_cpu_s=`).MatchString(errOut) {
		t.Errorf("%d floor round lines on stderr, want 2 with the floor's CPU:\n%s\nstdout:\n%s", got, errOut, out)
	}
	// The agents had 20 connecting reads and at least 20 a round; the
	// floor's reads went to the floor.
	if got := f.healthGets.Load(); got < 20+40 || got > 2*(20+40) {
		t.Errorf("the agent saw %d health GETs, want its own run's (60 to 120)", got)
	}
}

// TestHerdFloorAnswerLength: the floor's answers are as long as the
// agents' and carry the registration, so the watchers find their marker.
func TestHerdFloorAnswerLength(t *testing.T) {
	f, err := startHerdFloor("127.0.0.1:0", 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	put, err := http.NewRequest("PUT", "http://"+f.Addr()+"/v1/catalog/register", strings.NewReader(`{"Node":"n","Output":"marker 7"}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(put); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + f.Addr() + "/v1/health/service/herd?index=1&wait=10s")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != 1000 || !strings.Contains(string(body), "marker 7") || resp.Header.Get("X-Consul-Index") != "2" {
		t.Errorf("answer of %d bytes at index %q: %.60q; want 1000 bytes with the registration, at index 2", len(body), resp.Header.Get("X-Consul-Index"), body)
	}
	var v []json.RawMessage
	if err := json.Unmarshal(body, &v); err != nil || len(v) != 1 {
		t.Errorf("answer is not a JSON array of the registration: %v", err)
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
