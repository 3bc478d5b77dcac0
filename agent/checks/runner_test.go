package checks

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
)

func TestTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name       string
		addr       string
		wantStatus string
		wantOut    string
	}{
		{"listening", ln.Addr().String(), StatusPassing, "TCP connect " + ln.Addr().String() + ": Success"},
		{"closed port", closedAddr, StatusCritical, "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, rec := startRunner(t, Spec{CheckID: "t", TCP: tc.addr, Interval: time.Hour})
			got := rec.waitN(t, 1)[0]
			if got.status != tc.wantStatus || !strings.Contains(got.output, tc.wantOut) {
				t.Errorf("TCP check of %s = %q, want status %s output containing %q", tc.addr, got, tc.wantStatus, tc.wantOut)
			}
		})
	}
}

// TestProbesRepeat checks that a probe runs every Interval, not once.
func TestProbesRepeat(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	start := time.Now()
	_, rec := startRunner(t, Spec{CheckID: "t", TCP: ln.Addr().String(), Interval: 10 * time.Millisecond})
	rec.waitN(t, 5)
	// Four pauses: the first is 3/4 to 1 Interval, the others a full one.
	if d := time.Since(start); d < 37*time.Millisecond {
		t.Errorf("5 probes at a 10ms interval took %s, want at least 37ms", d)
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	t.Run("expires", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		_, rec := startRunner(t, Spec{CheckID: "ttl", TTL: 30 * time.Millisecond})
		got := rec.waitN(t, 1)[0]
		if want := (result{"ttl", StatusCritical, "TTL expired"}); got != want {
			t.Errorf("TTL check never set = %q, want %q", got, want)
		}
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("TTL of 30ms expired after %s, want at least 30ms", d)
		}
	})
	t.Run("renewed then expires with last output", func(t *testing.T) {
		t.Parallel()
		r, rec := startRunner(t, Spec{CheckID: "ttl", TTL: 250 * time.Millisecond})
		// Each SetTTL re-arms the timer: renewing every 25ms for longer
		// than the TTL must produce no expiry.
		ticker := time.NewTicker(25 * time.Millisecond)
		defer ticker.Stop()
		for i := range 12 {
			if err := r.SetTTL(StatusPassing, fmt.Sprint("ok ", i)); err != nil {
				t.Fatalf("SetTTL(passing) = %v, want nil", err)
			}
			<-ticker.C
		}
		got := rec.waitN(t, 13)
		for i, res := range got[:12] {
			if want := (result{"ttl", StatusPassing, fmt.Sprint("ok ", i)}); res != want {
				t.Errorf("result %d = %q, want %q", i, res, want)
			}
		}
		want := result{"ttl", StatusCritical, "TTL expired (last output before timeout follows): ok 11"}
		if got[12] != want {
			t.Errorf("result after renewals stop = %q, want %q", got[12], want)
		}
	})
	t.Run("statuses and truncation", func(t *testing.T) {
		t.Parallel()
		r, rec := startRunner(t, Spec{CheckID: "ttl", TTL: time.Hour, OutputMaxSize: 5})
		sets := []result{
			{"ttl", StatusWarning, "slow"},
			{"ttl", StatusCritical, "down"},
			{"ttl", StatusPassing, "0123456789"},
		}
		for _, s := range sets {
			if err := r.SetTTL(s.status, s.output); err != nil {
				t.Fatalf("SetTTL(%q, %q) = %v, want nil", s.status, s.output, err)
			}
		}
		// SetTTL returns after Notify: no waiting needed.
		got := rec.results()
		want := []result{sets[0], sets[1], {"ttl", StatusPassing, "01234 ... (captured 5 of 10 bytes)"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("results of SetTTL = %q, want %q", got, want)
		}
	})
}

func TestSetTTLErrors(t *testing.T) {
	t.Parallel()
	ttl, _ := startRunner(t, Spec{CheckID: "ttl", TTL: time.Hour})
	stopped, _ := startRunner(t, Spec{CheckID: "ttl2", TTL: time.Hour})
	stopped.Stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	tcp, _ := startRunner(t, Spec{CheckID: "tcp", TCP: ln.Addr().String(), Interval: time.Hour})
	tests := []struct {
		name   string
		r      *Runner
		status string
		want   error
	}{
		{"not ttl", tcp, StatusPassing, ErrNotTTL},
		{"bad status", ttl, "ok", ErrInvalidStatus},
		{"empty status", ttl, "", ErrInvalidStatus},
		{"stopped", stopped, StatusPassing, ErrStopped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.r.SetTTL(tc.status, "x"); !errors.Is(err, tc.want) {
				t.Errorf("SetTTL(%q) on %s runner = %v, want %v", tc.status, tc.r.Kind(), err, tc.want)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		spec   Spec
		notify Notify
		want   error
	}{
		{"invalid spec", Spec{CheckID: "c"}, func(string, string, string) {}, ErrInvalidSpec},
		{"nil notify", Spec{CheckID: "c", TTL: time.Second}, nil, ErrNilNotify},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Start(tc.spec, tc.notify, nil)
			if !errors.Is(err, tc.want) {
				if r != nil {
					r.Stop()
				}
				t.Errorf("Start(%+v) = %v, want %v", tc.spec, err, tc.want)
			}
		})
	}
}

// TestStopPrompt stops each kind of runner with a probe in flight that
// would take seconds: Stop must cancel it, return quickly, be safe to call
// again, and no result may be reported after it.
func TestStopPrompt(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 10)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	marker := filepath.Join(t.TempDir(), "started")
	// A TCP connect cannot be stalled reliably on loopback; the idle cases
	// cover a goroutine waiting for its next probe or its TTL.
	tests := []struct {
		name    string
		spec    Spec
		started func(t *testing.T) // waits until the probe is in flight
	}{
		{"http in flight", Spec{HTTP: slow.URL, Timeout: time.Minute}, func(t *testing.T) {
			select {
			case <-entered:
			case <-time.After(5 * time.Second):
				t.Fatal("http probe never reached the server")
			}
		}},
		{"script in flight", Spec{Args: sh("touch \"$0\"; sleep 30", marker), Timeout: time.Minute}, func(t *testing.T) {
			// Nothing to wait on for a file to appear: poll, with a deadline.
			wait.Eventually(t, 5*time.Second, func() error {
				_, err := os.Stat(marker)
				return err
			})
		}},
		{"ttl idle", Spec{TTL: time.Minute}, nil},
		{"http idle", Spec{HTTP: "http://127.0.0.1:1/", Interval: time.Hour}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.CheckID = "c"
			if spec.Interval == 0 && spec.TTL == 0 {
				spec.Interval = time.Minute
			}
			r, rec := startRunner(t, spec)
			if tc.started != nil {
				tc.started(t)
			}
			start := time.Now()
			r.Stop()
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Stop() of %s took %s, want under 2s", tc.name, d)
			}
			r.Stop() // again: a no-op
			if tc.started != nil {
				// The only probe was cut short by Stop: its result says
				// nothing about the target and must not be reported.
				if got := rec.results(); len(got) != 0 {
					t.Errorf("results of a probe cancelled by Stop() = %q, want none", got)
				}
			}
		})
	}
}

// TestFirstProbePrompt checks that the first result does not wait for an
// Interval.
func TestFirstProbePrompt(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	start := time.Now()
	_, rec := startRunner(t, Spec{CheckID: "t", TCP: ln.Addr().String(), Interval: time.Hour})
	rec.waitN(t, 1)
	if d, limit := time.Since(start), time.Second; d > limit {
		t.Errorf("first result with a 1h interval came after %s, want under %s", d, limit)
	}
}
