package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// result is a parsed RESULT line.
type result struct {
	mode          string
	rps           float64
	p50, p90, p99 float64 // ms
	errors, n     int64
	fields        map[string]string // the mode's own fields (get: bytes, tool_cpu_us)
}

var resultLine = regexp.MustCompile(`^RESULT mode=(\S+) rps=(\d+\.\d) p50_ms=(\d+\.\d{3}) p90_ms=(\d+\.\d{3}) p99_ms=(\d+\.\d{3}) errors=(\d+) n=(\d+)((?: \S+=\S+)*)$`)

// TestMain lets the tests' binary stand for the tool where the tool starts
// itself (herd -floor's floor-server): with childEnv set it is the tool.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// runTool runs the command with args and a deadline, and returns its exit
// status, stdout and stderr.
func runTool(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	if ctx.Err() != nil {
		t.Fatalf("run(%q) did not stop by itself within 30s", args)
	}
	return code, stdout.String(), stderr.String()
}

// parseResult checks that stdout is one human line then one RESULT line,
// and parses the latter.
func parseResult(t *testing.T, stdout string) result {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout has %d lines, want 2 (human, RESULT):\n%s", len(lines), stdout)
	}
	m := resultLine.FindStringSubmatch(lines[1])
	if m == nil {
		t.Fatalf("last line %q does not match %s", lines[1], resultLine)
	}
	f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	i := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	r := result{mode: m[1], rps: f(m[2]), p50: f(m[3]), p90: f(m[4]), p99: f(m[5]), errors: i(m[6]), n: i(m[7]), fields: map[string]string{}}
	for _, kv := range strings.Fields(m[8]) {
		k, v, _ := strings.Cut(kv, "=")
		r.fields[k] = v
	}
	if r.n > r.errors && !(r.p50 <= r.p90 && r.p90 <= r.p99) {
		t.Errorf("percentiles out of order: %+v", r)
	}
	return r
}

func TestGetCountsRequestsOnKeepAliveConnections(t *testing.T) {
	f := newFakeConsul()
	addr := f.start(t)
	code, out, errOut := runTool(t, "register", "-addr", addr, "-service", "web", "-instances", "3")
	if code != exitOK {
		t.Fatalf("register exit %d, stderr %q", code, errOut)
	}
	connsBefore := f.conns.Load()
	code, out, errOut = runTool(t, "get", "-addr", addr, "-path", "/v1/health/service/web?passing", "-c", "8", "-n", "800", "-duration", "20s")
	if code != exitOK {
		t.Fatalf("get exit %d, stderr %q", code, errOut)
	}
	r := parseResult(t, out)
	if r.mode != "get" || r.n != 800 || r.errors != 0 {
		t.Errorf("RESULT = %+v, want mode=get n=800 errors=0", r)
	}
	if got := f.healthGets.Load(); got != 808 {
		t.Errorf("server saw %d health GETs, want 808 (8 untimed ones that open the connections, then the load)", got)
	}
	if r.rps <= 0 || r.p50 <= 0 {
		t.Errorf("RESULT = %+v, want positive rps and p50", r)
	}
	// Eight workers reuse their connections; without keep-alive (or with
	// bodies left unread) every request would dial its own.
	if got := f.conns.Load() - connsBefore; got > 100 {
		t.Errorf("get accepted %d connections for 800 requests with -c 8: keep-alive connections are not reused", got)
	}
	if errOut != "" {
		t.Errorf("stderr = %q, want empty for a loopback address", errOut)
	}
}

func TestClientKeepsAnIdleConnectionPerWorker(t *testing.T) {
	for _, c := range []int{1, 64, 1000} {
		tr := newClient(c, time.Second).Transport.(*http.Transport)
		if tr.MaxIdleConnsPerHost < c || tr.MaxIdleConns < c || tr.DisableKeepAlives || tr.Proxy != nil {
			t.Errorf("newClient(%d) transport: MaxIdleConnsPerHost %d, MaxIdleConns %d, DisableKeepAlives %v, proxy set %v; want >= %d, >= %d, false, false",
				c, tr.MaxIdleConnsPerHost, tr.MaxIdleConns, tr.DisableKeepAlives, tr.Proxy != nil, c, c)
		}
	}
}

// TestGetFloor: -floor runs the same load against a static copy of the
// answer, reported first, and asks the agent for it once more only (the
// load opens each connection with one untimed GET first).
func TestGetFloor(t *testing.T) {
	f := newFakeConsul()
	addr := f.start(t)
	if code, _, errOut := runTool(t, "register", "-addr", addr, "-service", "web", "-instances", "3"); code != exitOK {
		t.Fatalf("register exit %d, stderr %q", code, errOut)
	}
	code, out, errOut := runTool(t, "get", "-addr", addr, "-path", "/v1/health/service/web", "-c", "4", "-n", "100", "-gzip", "-floor")
	if code != exitOK {
		t.Fatalf("get exit %d, stderr %q", code, errOut)
	}
	lines := strings.SplitAfterN(out, "\n", 3)
	if len(lines) != 3 {
		t.Fatalf("stdout = %q, want the floor's two lines, then the agent's", out)
	}
	if floor := parseResult(t, lines[0]+lines[1]); floor.mode != "get-floor" || floor.n != 100 || floor.errors != 0 {
		t.Errorf("floor RESULT = %+v, want mode=get-floor n=100 errors=0", floor)
	}
	if r := parseResult(t, lines[2]); r.mode != "get" || r.n != 100 || r.errors != 0 {
		t.Errorf("RESULT = %+v, want mode=get n=100 errors=0", r)
	}
	if got := f.healthGets.Load(); got != 105 {
		t.Errorf("agent saw %d health GETs, want 105 (4 untimed ones that open the connections, the load, and the floor's one read)", got)
	}
}

// TestGetGzip: -gzip asks for gzip and inflates the answer (an answer that
// does not inflate is an error), -gzip -raw asks for it and reads the
// compressed bytes as they are, and without -gzip the tool asks for none.
// bytes= is the answer's size as sent.
func TestGetGzip(t *testing.T) {
	var good bytes.Buffer
	zw := gzip.NewWriter(&good)
	_, _ = zw.Write(bytes.Repeat([]byte(`{"Node":"n"},`), 10000))
	_ = zw.Close()
	bad := append([]byte(nil), good.Bytes()...)
	bad[len(bad)/2] ^= 0xff
	var asked atomic.Int64 // requests that sent Accept-Encoding: gzip
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := good.Bytes()
		if r.URL.Path == "/bad" {
			body = bad
		}
		if r.Header.Get("Accept-Encoding") == "gzip" {
			asked.Add(1)
			w.Header().Set("Content-Encoding", "gzip")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	cases := []struct {
		name   string
		args   []string
		code   int
		errors int64
		asked  int64 // the load's 20 and the 2 that open the connections
	}{
		{"decoded", []string{"-path", "/good", "-gzip"}, exitOK, 0, 22},
		{"raw", []string{"-path", "/good", "-gzip", "-raw"}, exitOK, 0, 22},
		{"corrupt decoded", []string{"-path", "/bad", "-gzip"}, exitFail, 20, 22},
		{"corrupt raw", []string{"-path", "/bad", "-gzip", "-raw"}, exitOK, 0, 22},
		{"plain", []string{"-path", "/good"}, exitOK, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			asked.Store(0)
			code, out, errOut := runTool(t, append([]string{"get", "-addr", addr, "-c", "2", "-n", "20"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, errOut)
			}
			r := parseResult(t, out)
			if r.n != 20 || r.errors != tc.errors {
				t.Errorf("RESULT = %+v, want n=20 errors=%d", r, tc.errors)
			}
			if got := asked.Load(); got != tc.asked {
				t.Errorf("%d requests asked for gzip, want %d", got, tc.asked)
			}
			if tc.errors == 0 && r.fields["bytes"] != strconv.Itoa(good.Len()) {
				t.Errorf("bytes=%s, want %d (the answer as sent)", r.fields["bytes"], good.Len())
			}
		})
	}
	if code, _, _ := runTool(t, "get", "-addr", addr, "-raw"); code != exitUsage {
		t.Errorf("-raw without -gzip: exit %d, want %d", code, exitUsage)
	}
}

// TestGetAgentCPU: -pid reports that process's CPU per request of the
// load, less its idle rate, and that rate; here the process is the test's
// own, which serves the fake agent and runs the load.
func TestGetAgentCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	addr := newFakeConsul().start(t)
	code, out, errOut := runTool(t, "get", "-addr", addr, "-path", "/v1/health/service/web", "-c", "2", "-n", "2000", "-pid", strconv.Itoa(os.Getpid()))
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	r := parseResult(t, out)
	// Net of the process's idle rate, which other tests of this process
	// may raise: a number, not necessarily a positive one.
	if _, err := strconv.ParseFloat(r.fields["agent_cpu_us"], 64); err != nil {
		t.Errorf("agent_cpu_us=%q, want a CPU time per request; RESULT %+v", r.fields["agent_cpu_us"], r)
	}
	if idle, err := strconv.ParseFloat(r.fields["agent_idle_pct"], 64); err != nil || idle < 0 {
		t.Errorf("agent_idle_pct=%q, want the idle share of a core; RESULT %+v", r.fields["agent_idle_pct"], r)
	}
	if !strings.Contains(out, "agent CPU") {
		t.Errorf("stdout %q does not report the agent's CPU", out)
	}
}

func TestGetCountsNon2xxAsErrors(t *testing.T) {
	addr := newFakeConsul().start(t)
	code, out, errOut := runTool(t, "get", "-addr", addr, "-path", "/fail", "-c", "2", "-n", "20")
	if code != exitFail {
		t.Errorf("exit = %d, want %d", code, exitFail)
	}
	r := parseResult(t, out)
	if r.n != 20 || r.errors != 20 {
		t.Errorf("RESULT = %+v, want n=20 errors=20", r)
	}
	if !strings.Contains(errOut, "status 500") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("stderr = %q, want one line naming status 500", errOut)
	}
}

func TestGetStopsAfterDuration(t *testing.T) {
	f := newFakeConsul()
	addr := f.start(t)
	start := time.Now()
	code, out, errOut := runTool(t, "get", "-addr", addr, "-path", "/v1/health/service/web", "-c", "2", "-duration", "150ms")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("run took %v with -duration 150ms", took)
	}
	r := parseResult(t, out)
	if r.n < 1 || r.n+2 != f.healthGets.Load() {
		t.Errorf("RESULT n=%d, server saw %d GETs; want n positive and 2 more GETs (those that open the connections)", r.n, f.healthGets.Load())
	}
}

func TestKVPutWritesUniqueKeys(t *testing.T) {
	f := newFakeConsul()
	addr := f.start(t)
	code, out, errOut := runTool(t, "kv-put", "-addr", addr, "-c", "4", "-n", "40", "-size", "100", "-prefix", "bench/")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	r := parseResult(t, out)
	if r.mode != "kv-put" || r.n != 40 || r.errors != 0 {
		t.Errorf("RESULT = %+v, want mode=kv-put n=40 errors=0", r)
	}
	kv := f.snapshotKV()
	if len(kv) != 40 {
		t.Errorf("store has %d keys, want 40 unique ones", len(kv))
	}
	key := regexp.MustCompile(`^bench/[0-3]-\d+$`)
	for k, v := range kv {
		if !key.MatchString(k) {
			t.Errorf("key %q does not match %s", k, key)
		}
		if len(v) != 100 {
			t.Errorf("value of %q has %d bytes, want 100", k, len(v))
		}
	}
}

func TestKVPutCountsRefusalsAsErrors(t *testing.T) {
	f := newFakeConsul()
	f.putAnswer = "false"
	addr := f.start(t)
	code, out, errOut := runTool(t, "kv-put", "-addr", addr, "-c", "2", "-n", "10")
	if code != exitFail {
		t.Errorf("exit = %d, want %d", code, exitFail)
	}
	if r := parseResult(t, out); r.n != 10 || r.errors != 10 {
		t.Errorf("RESULT = %+v, want n=10 errors=10", r)
	}
	if !strings.Contains(errOut, `want "true"`) {
		t.Errorf("stderr = %q, want the refused body named", errOut)
	}
}

func TestKVGetCreatesAndReadsKey(t *testing.T) {
	f := newFakeConsul()
	addr := f.start(t)
	code, out, errOut := runTool(t, "kv-get", "-addr", addr, "-c", "3", "-n", "30", "-key", "bench/k", "-stale", "-size", "64")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if r := parseResult(t, out); r.mode != "kv-get" || r.n != 30 || r.errors != 0 {
		t.Errorf("RESULT = %+v, want mode=kv-get n=30 errors=0", r)
	}
	if v, ok := f.snapshotKV()["bench/k"]; !ok || len(v) != 64 {
		t.Errorf("bench/k = %q (present %v), want a 64-byte value", v, ok)
	}
	if got, stale := f.kvGets.Load(), f.staleGets.Load(); got != 30 || stale != 30 {
		t.Errorf("server saw %d KV GETs, %d stale; want 30 and 30", got, stale)
	}
}

func TestRegisterAndDeregister(t *testing.T) {
	f := newFakeConsul()
	addr := f.start(t)
	code, out, errOut := runTool(t, "register", "-addr", addr, "-service", "api", "-instances", "5", "-passing=false")
	if code != exitOK {
		t.Fatalf("register exit %d, stderr %q", code, errOut)
	}
	if r := parseResult(t, out); r.mode != "register" || r.n != 5 || r.errors != 0 {
		t.Errorf("RESULT = %+v, want mode=register n=5 errors=0", r)
	}
	for i := 1; i <= 5; i++ {
		node := "bench-node-" + strconv.Itoa(i)
		s, ok := f.service(node, "api")
		if !ok || s.checkStatus != "critical" || s.port != 8080 {
			t.Errorf("service api on %s = %+v (present %v), want port 8080, check critical", node, s, ok)
		}
	}
	code, _, errOut = runTool(t, "register", "-addr", addr, "-service", "api", "-instances", "5")
	if code != exitOK {
		t.Fatalf("register exit %d, stderr %q", code, errOut)
	}
	if s, _ := f.service("bench-node-3", "api"); s.checkStatus != "passing" {
		t.Errorf("check on bench-node-3 = %q after re-registering, want passing", s.checkStatus)
	}
	code, out, errOut = runTool(t, "register", "-addr", addr, "-instances", "5", "-deregister")
	if code != exitOK {
		t.Fatalf("deregister exit %d, stderr %q", code, errOut)
	}
	if r := parseResult(t, out); r.mode != "deregister" || r.n != 5 {
		t.Errorf("RESULT = %+v, want mode=deregister n=5", r)
	}
	if n := f.nodeCount(); n != 0 {
		t.Errorf("%d nodes left after -deregister, want 0", n)
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the one-line error
	}{
		{"no mode", nil, "missing mode"},
		{"unknown mode", []string{"put"}, `unknown mode "put"`},
		{"unknown flag", []string{"get", "-bogus"}, "-bogus"},
		{"bad int", []string{"get", "-c", "many"}, "-c"},
		{"zero conns", []string{"get", "-c", "0"}, "-c must be at least 1"},
		{"bad duration", []string{"kv-put", "-duration", "0s"}, "-duration must be positive"},
		{"negative n", []string{"kv-get", "-n", "-1"}, "-n must not be negative"},
		{"stray argument", []string{"get", "extra"}, `unexpected argument "extra"`},
		{"relative path", []string{"get", "-path", "v1/agent/self"}, "-path"},
		{"negative size", []string{"kv-put", "-size", "-5"}, "-size"},
		{"bad kind", []string{"blocking", "-kind", "dns"}, "-kind must be kv or catalog"},
		{"zero samples", []string{"blocking", "-n", "0"}, "-n must be at least 1"},
		{"no instances", []string{"register", "-instances", "0"}, "-instances"},
		{"address with path", []string{"get", "-addr", "127.0.0.1:8500/v1"}, "-addr"},
		{"bad watch address", []string{"blocking", "-watch-addr", "ftp://127.0.0.1:1"}, "-watch-addr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runTool(t, tc.args...)
			if code != exitUsage {
				t.Errorf("run(%q) exit = %d, want %d", tc.args, code, exitUsage)
			}
			if out != "" {
				t.Errorf("run(%q) stdout = %q, want empty", tc.args, out)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("run(%q) stderr = %q, want one line containing %q", tc.args, errOut, tc.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"-h"}, []string{"usage: meridian-bench <mode>", "RESULT mode=", "meridian-bench blocking -kind catalog"}},
		{[]string{"get", "-h"}, []string{"usage: meridian-bench get", "examples:", "-path", "-duration"}},
		{[]string{"blocking", "-h"}, []string{"-write-addr", "-watch-addr", "-stale", "-kind"}},
	}
	for _, tc := range tests {
		code, out, errOut := runTool(t, tc.args...)
		if code != exitOK || errOut != "" {
			t.Errorf("run(%q) = exit %d, stderr %q; want 0 and empty", tc.args, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("run(%q) usage lacks %q", tc.args, w)
			}
		}
	}
}

func TestBaseURLWarnsOffLoopback(t *testing.T) {
	tests := []struct {
		addr, want string
		warn       bool
	}{
		{"127.0.0.1:8500", "http://127.0.0.1:8500", false},
		{"127.0.0.83:8500", "http://127.0.0.83:8500", false},
		{"http://localhost:8500", "http://localhost:8500", false},
		{"[::1]:8500", "http://[::1]:8500", false},
		{"10.0.0.5:8500", "http://10.0.0.5:8500", true},
		{"https://consul.example.com:8501/", "https://consul.example.com:8501", true},
	}
	for _, tc := range tests {
		var warn bytes.Buffer
		got, err := baseURL("addr", tc.addr, &warn)
		if err != nil || got != tc.want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
		if warned := strings.Contains(warn.String(), "not a loopback"); warned != tc.warn {
			t.Errorf("baseURL(%q) warned %v (%q), want %v", tc.addr, warned, warn.String(), tc.warn)
		}
	}
}
