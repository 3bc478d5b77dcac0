package checks

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code int
		want string
	}{
		{200, StatusPassing},
		{201, StatusPassing},
		{299, StatusPassing},
		{429, StatusWarning},
		{300, StatusCritical},
		{404, StatusCritical},
		{500, StatusCritical},
		{503, StatusCritical},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.code)
				fmt.Fprint(w, "hello")
			}))
			t.Cleanup(srv.Close)
			url := srv.URL + "/health"
			_, rec := startRunner(t, Spec{CheckID: "web", HTTP: url, Interval: time.Hour})
			got := rec.waitN(t, 1)[0]
			wantOut := fmt.Sprintf("HTTP GET %s: %d %s Output: hello", url, tc.code, http.StatusText(tc.code))
			if tc.code == 299 {
				wantOut = fmt.Sprintf("HTTP GET %s: 299 status code 299 Output: hello", url)
			}
			if got != (result{"web", tc.want, wantOut}) {
				t.Errorf("HTTP check of a %d = %q, want %q", tc.code, got, result{"web", tc.want, wantOut})
			}
		})
	}
}

func TestHTTPRequest(t *testing.T) {
	t.Parallel()
	type seen struct{ method, body, ua, accept, custom, host string }
	tests := []struct {
		name string
		spec Spec
		want seen
	}{
		{"defaults", Spec{}, seen{"GET", "", UserAgent, "text/plain, text/*, */*", "", ""}},
		{"method body headers", Spec{
			Method: "PUT", Body: "ping",
			Header: map[string][]string{"X-Custom": {"a"}, "User-Agent": {"probe/1"}, "Host": {"svc.example"}},
		}, seen{"PUT", "ping", "probe/1", "text/plain, text/*, */*", "a", "svc.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reqs := make(chan seen, 10)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				host := r.Host
				if strings.HasPrefix(host, "127.0.0.1:") {
					host = ""
				}
				select {
				case reqs <- seen{r.Method, string(b), r.UserAgent(), r.Header.Get("Accept"), r.Header.Get("X-Custom"), host}:
				default:
				}
			}))
			t.Cleanup(srv.Close)
			spec := tc.spec
			spec.CheckID, spec.HTTP, spec.Interval = "c", srv.URL, time.Hour
			startRunner(t, spec)
			select {
			case got := <-reqs:
				if got != tc.want {
					t.Errorf("request of %+v = %+v, want %+v", tc.spec, got, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no request from %+v within 5s", tc.spec)
			}
		})
	}
}

func TestHTTPFailures(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/"
	closed.Close()

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // runs before slow.Close

	tls := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tls.Config.ErrorLog = log.New(io.Discard, "", 0) // the unverified client's handshake errors
	tls.StartTLS()
	t.Cleanup(tls.Close)

	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusFound)
			return
		}
		fmt.Fprint(w, "moved here")
	}))
	t.Cleanup(redirect.Close)

	tests := []struct {
		name       string
		spec       Spec
		wantStatus string
		wantOut    string
	}{
		{"connection refused", Spec{HTTP: closedURL}, StatusCritical, "connection refused"},
		{"timeout", Spec{HTTP: slow.URL, Timeout: 30 * time.Millisecond}, StatusCritical, "context deadline exceeded"},
		{"tls unverified", Spec{HTTP: tls.URL}, StatusCritical, "certificate"},
		{"tls skip verify", Spec{HTTP: tls.URL, TLSSkipVerify: true}, StatusPassing, "200 OK"},
		{"redirect followed", Spec{HTTP: redirect.URL + "/old"}, StatusPassing, "200 OK Output: moved here"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := tc.spec
			spec.CheckID, spec.Interval = "c", time.Hour
			_, rec := startRunner(t, spec)
			got := rec.waitN(t, 1)[0]
			if got.status != tc.wantStatus || !strings.Contains(got.output, tc.wantOut) {
				t.Errorf("HTTP check %+v = %q, want status %s and output containing %q", tc.spec, got, tc.wantStatus, tc.wantOut)
			}
		})
	}
}

func TestHTTPTruncation(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	body := strings.Repeat("a", 10) + strings.Repeat("b", 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.WriteString(w, body)
		served.Add(int64(n))
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name string
		max  int
		want string
	}{
		{"cut", 10, "Output: aaaaaaaaaa ... (captured first 10 bytes)"},
		{"cut in second part", 12, "Output: aaaaaaaaaabb ... (captured first 12 bytes)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, rec := startRunner(t, Spec{CheckID: "c", HTTP: srv.URL, Interval: time.Hour, OutputMaxSize: tc.max})
			got := rec.waitN(t, 1)[0]
			if !strings.HasSuffix(got.output, tc.want) {
				t.Errorf("HTTP check output with OutputMaxSize %d = %q, want suffix %q", tc.max, got.output, tc.want)
			}
		})
	}
}

func TestHTTPThresholds(t *testing.T) {
	t.Parallel()
	// The server answers code and counts the answers given since code last
	// changed; notify records that count, so the test sees how many probes
	// each report needed.
	var (
		mu          sync.Mutex
		code        = 200
		sinceSwitch int
	)
	setCode := func(c int) {
		mu.Lock()
		code, sinceSwitch = c, 0
		mu.Unlock()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		c := code
		sinceSwitch++
		mu.Unlock()
		w.WriteHeader(c)
	}))
	t.Cleanup(srv.Close)
	rec := newRecorder()
	notify := func(id, status, output string) {
		mu.Lock()
		n := sinceSwitch
		mu.Unlock()
		rec.notify(id, status, fmt.Sprint(n))
	}
	r, err := Start(Spec{
		CheckID: "c", HTTP: srv.URL, Interval: 10 * time.Millisecond, Timeout: time.Second,
		SuccessBeforePassing: 2, FailuresBeforeCritical: 3,
	}, notify, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)

	first := rec.waitN(t, 1)[0]
	if first.status != StatusPassing || first.output != "1" {
		t.Fatalf("first report = %q, want passing after 1 probe", first)
	}
	prev := StatusPassing
	for _, step := range []struct {
		code      int
		want      string
		minProbes int
	}{
		{500, StatusCritical, 3},
		{200, StatusPassing, 2},
		{500, StatusCritical, 3},
		{429, StatusWarning, 2}, // a warning after failures also needs SuccessBeforePassing
	} {
		n := len(rec.results())
		setCode(step.code)
		// Reports of the previous status may still come from probes that
		// began before the switch; the first other report is the one.
		got := rec.waitFor(t, 5*time.Second, func(got []result) error {
			for _, r := range got[n:] {
				if r.status != prev {
					return nil
				}
			}
			return fmt.Errorf("no report other than %s since the switch to %d", prev, step.code)
		})
		for _, r := range got[n:] {
			if r.status == prev {
				continue
			}
			var probes int
			if _, err := fmt.Sscan(r.output, &probes); err != nil {
				t.Fatal(err)
			}
			if r.status != step.want || probes < step.minProbes {
				t.Fatalf("after switching to %d the first change is %s after %d probes, want %s after at least %d",
					step.code, r.status, probes, step.want, step.minProbes)
			}
			break
		}
		prev = step.want
	}
}
