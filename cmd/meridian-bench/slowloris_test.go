package main

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSlowlorisHoldsConnectionsAndTimesHonestGets runs the mode against a
// server that closes slow requests after 300ms: the slow connections are
// held, redialled when closed, and the honest GETs are timed apart.
func TestSlowlorisHoldsConnectionsAndTimesHonestGets(t *testing.T) {
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`"127.0.0.1:8300"`)) }),
		ReadHeaderTimeout: 300 * time.Millisecond,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	code, out, errOut := runTool(t, "slowloris", "-addr", ln.Addr().String(), "-slow", "20", "-sources", "2",
		"-every", "50ms", "-c", "2", "-duration", "1s")
	if code != exitOK {
		t.Fatalf("slowloris exit %d, stdout %q stderr %q", code, out, errOut)
	}
	r := parseResult(t, out)
	if r.mode != "slowloris" || r.n == 0 || r.errors != 0 {
		t.Errorf("RESULT = %+v, want mode=slowloris, requests, no errors", r)
	}
	if !strings.Contains(out, "of 20 slow connections were held") || !strings.Contains(out, "closed by the agent and redialled") {
		t.Errorf("human line does not say what the attack held: %q", out)
	}
	if strings.Contains(out, " 0 closed by the agent") {
		t.Errorf("no slow connection was closed by a server with a 300ms header timeout: %q", out)
	}
}
