package main

import (
	"strings"
	"testing"
	"time"
)

func TestBlockingKVAcrossTwoAgents(t *testing.T) {
	f := newFakeConsul()
	writeAddr, watchAddr := f.start(t), f.start(t) // two agents of one cluster
	code, out, errOut := runTool(t, "blocking", "-write-addr", writeAddr, "-watch-addr", watchAddr,
		"-stale", "-n", "20", "-settle", "0", "-key", "bench/watch")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	r := parseResult(t, out)
	if r.mode != "blocking-kv" || r.n != 20 || r.errors != 0 {
		t.Errorf("RESULT = %+v, want mode=blocking-kv n=20 errors=0", r)
	}
	if !strings.Contains(out, "write=http://"+writeAddr) || !strings.Contains(out, "watch=http://"+watchAddr) {
		t.Errorf("human line %q does not name both agents", out)
	}
	// Every watch request, the first plain read included, asked for ?stale.
	if got, stale := f.kvGets.Load(), f.staleGets.Load(); got < 21 || stale != got {
		t.Errorf("server saw %d KV GETs, %d stale; want at least 21, all stale", got, stale)
	}
	if _, ok := f.snapshotKV()["bench/watch"]; ok {
		t.Errorf("bench/watch still present after the run, want it deleted")
	}
}

func TestBlockingMeasuresTimeFromWriteToWake(t *testing.T) {
	f := newFakeConsul()
	f.applyDelay = 30 * time.Millisecond // no answer can show a write sooner
	addr := f.start(t)
	code, out, errOut := runTool(t, "blocking", "-addr", addr, "-n", "4", "-settle", "0")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	r := parseResult(t, out)
	if r.n != 4 || r.p50 < 30 {
		t.Errorf("RESULT = %+v, want n=4 and p50_ms >= 30 (the server's apply delay)", r)
	}
	if f.blockingGets.Load() < 1 {
		t.Errorf("no GET carried index=: the watcher did not block")
	}
}

func TestBlockingFailsWhenTheWatchNeverWakes(t *testing.T) {
	f := newFakeConsul()
	f.frozen = true
	addr := f.start(t)
	code, out, errOut := runTool(t, "blocking", "-addr", addr, "-n", "3", "-settle", "0",
		"-timeout", "200ms", "-wait", "10s")
	if code != exitFail {
		t.Errorf("exit = %d, want %d", code, exitFail)
	}
	if r := parseResult(t, out); r.errors != 1 || r.n != 1 {
		t.Errorf("RESULT = %+v, want the first sample failed: n=1 errors=1", r)
	}
	if !strings.Contains(errOut, "no wake within -timeout") {
		t.Errorf("stderr = %q, want the timeout named", errOut)
	}
}

func TestBlockingCatalog(t *testing.T) {
	f := newFakeConsul()
	writeAddr, watchAddr := f.start(t), f.start(t)
	code, out, errOut := runTool(t, "blocking", "-kind", "catalog", "-write-addr", writeAddr, "-watch-addr", watchAddr,
		"-service", "bench-svc", "-n", "6", "-settle", "0")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	r := parseResult(t, out)
	if r.mode != "blocking-catalog" || r.n != 6 || r.errors != 0 {
		t.Errorf("RESULT = %+v, want mode=blocking-catalog n=6 errors=0", r)
	}
	if got := f.healthGets.Load(); got < 7 {
		t.Errorf("server saw %d health GETs, want at least 7 (one read, one per sample)", got)
	}
	if n := f.nodeCount(); n != 0 {
		t.Errorf("%d nodes left after the run, want its node deregistered", n)
	}
}
