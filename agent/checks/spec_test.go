package checks

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := func(mod func(*Spec)) Spec {
		s := Spec{CheckID: "c1", HTTP: "http://127.0.0.1:80/health", Interval: time.Second}
		mod(&s)
		return s
	}
	tests := []struct {
		name string
		spec Spec
		want string // substring of the error; "" means valid
	}{
		{"http", ok(func(s *Spec) {}), ""},
		{"https with method", ok(func(s *Spec) { s.HTTP = "https://example.com/x"; s.Method = "PUT" }), ""},
		{"tcp", Spec{CheckID: "c", TCP: "127.0.0.1:22", Interval: time.Second}, ""},
		{"tcp named port", Spec{CheckID: "c", TCP: "localhost:ssh", Interval: time.Second}, ""},
		{"ttl", Spec{CheckID: "c", TTL: time.Second}, ""},
		{"script", Spec{CheckID: "c", Args: []string{"/bin/true"}, Interval: time.Second}, ""},
		{"thresholds", ok(func(s *Spec) { s.FailuresBeforeWarning = 1; s.FailuresBeforeCritical = 3 }), ""},
		{"no check id", ok(func(s *Spec) { s.CheckID = "" }), "CheckID: must not be empty"},
		{"no kind", Spec{CheckID: "c", Interval: time.Second}, "kind: one of HTTP, TCP, TTL or Args must be set"},
		{"two kinds", ok(func(s *Spec) { s.TCP = "127.0.0.1:1" }), "kind: only one of HTTP, TCP, TTL or Args may be set, got http and tcp"},
		{"ttl and script", Spec{CheckID: "c", TTL: time.Second, Args: []string{"x"}}, "got ttl and script"},
		{"http without interval", ok(func(s *Spec) { s.Interval = 0 }), "Interval: required for a http check"},
		{"tcp without interval", Spec{CheckID: "c", TCP: "127.0.0.1:1"}, "Interval: required for a tcp check"},
		{"script without interval", Spec{CheckID: "c", Args: []string{"x"}}, "Interval: required for a script check"},
		{"negative interval", ok(func(s *Spec) { s.Interval = -time.Second }), "Interval: must not be negative"},
		{"negative timeout", ok(func(s *Spec) { s.Timeout = -time.Second }), "Timeout: must not be negative"},
		{"negative ttl", Spec{CheckID: "c", TTL: -time.Second}, "TTL: must be positive"},
		{"negative success", ok(func(s *Spec) { s.SuccessBeforePassing = -1 }), "SuccessBeforePassing: must not be negative"},
		{"negative failures", ok(func(s *Spec) { s.FailuresBeforeCritical = -1 }), "FailuresBeforeCritical: must not be negative"},
		{"negative warning", ok(func(s *Spec) { s.FailuresBeforeWarning = -1 }), "FailuresBeforeWarning: must not be negative"},
		{"warning above critical", ok(func(s *Spec) { s.FailuresBeforeWarning = 3; s.FailuresBeforeCritical = 2 }), "FailuresBeforeWarning: must not exceed FailuresBeforeCritical"},
		{"negative output size", ok(func(s *Spec) { s.OutputMaxSize = -1 }), "OutputMaxSize: must not be negative"},
		{"malformed url", ok(func(s *Spec) { s.HTTP = "http://[::1" }), "HTTP: malformed URL"},
		{"url without scheme", ok(func(s *Spec) { s.HTTP = "127.0.0.1:80/health" }), "HTTP: "},
		{"ftp url", ok(func(s *Spec) { s.HTTP = "ftp://127.0.0.1/" }), "HTTP: scheme must be http or https"},
		{"url without host", ok(func(s *Spec) { s.HTTP = "http:///health" }), "HTTP: URL has no host"},
		{"bad method", ok(func(s *Spec) { s.Method = "GE T" }), "Method: invalid method"},
		{"bad header", ok(func(s *Spec) { s.Header = map[string][]string{"X Y": {"1"}} }), "Header: invalid header name"},
		{"tcp without port", Spec{CheckID: "c", TCP: "127.0.0.1", Interval: time.Second}, "TCP: want host:port"},
		{"tcp empty port", Spec{CheckID: "c", TCP: "127.0.0.1:", Interval: time.Second}, "TCP: want host:port with both parts"},
		{"tcp empty host", Spec{CheckID: "c", TCP: ":80", Interval: time.Second}, "TCP: want host:port with both parts"},
		{"script empty program", Spec{CheckID: "c", Args: []string{""}, Interval: time.Second}, "Args: the program"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.spec.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tc.spec, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate(%+v) = %v, want error containing %q", tc.spec, err, tc.want)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("Validate(%+v) = %v, want it to wrap ErrInvalidSpec", tc.spec, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Validate(%+v) = %q, want one line", tc.spec, err)
			}
		})
	}
}

func TestKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec Spec
		want Kind
	}{
		{"none", Spec{}, ""},
		{"http", Spec{HTTP: "http://x/"}, KindHTTP},
		{"tcp", Spec{TCP: "x:1"}, KindTCP},
		{"ttl", Spec{TTL: time.Second}, KindTTL},
		{"script", Spec{Args: []string{"x"}}, KindScript},
		{"first of two", Spec{TCP: "x:1", Args: []string{"x"}}, KindTCP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.spec.Kind(); got != tc.want {
				t.Errorf("Kind(%+v) = %q, want %q", tc.spec, got, tc.want)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		spec        Spec
		wantTimeout time.Duration
		wantMethod  string
		wantMax     int
		wantWarn    int
	}{
		{"long interval", Spec{Interval: time.Minute}, DefaultTimeout, "GET", DefaultOutputMaxSize, 0},
		{"short interval caps default timeout", Spec{Interval: 20 * time.Millisecond}, 20 * time.Millisecond, "GET", DefaultOutputMaxSize, 0},
		{"explicit timeout above interval kept", Spec{Interval: time.Second, Timeout: 30 * time.Second}, 30 * time.Second, "GET", DefaultOutputMaxSize, 0},
		{"explicit values kept", Spec{Interval: time.Minute, Timeout: time.Second, Method: "POST", OutputMaxSize: 10}, time.Second, "POST", 10, 0},
		{"ttl", Spec{TTL: time.Minute}, DefaultTimeout, "GET", DefaultOutputMaxSize, 0},
		{"warning defaults to critical", Spec{Interval: time.Minute, FailuresBeforeCritical: 3}, DefaultTimeout, "GET", DefaultOutputMaxSize, 3},
		{"warning kept", Spec{Interval: time.Minute, FailuresBeforeCritical: 3, FailuresBeforeWarning: 1}, DefaultTimeout, "GET", DefaultOutputMaxSize, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.spec.withDefaults()
			if got.Timeout != tc.wantTimeout || got.Method != tc.wantMethod || got.OutputMaxSize != tc.wantMax || got.FailuresBeforeWarning != tc.wantWarn {
				t.Errorf("withDefaults(%+v) = timeout %s method %q max %d warn %d, want %s %q %d %d",
					tc.spec, got.Timeout, got.Method, got.OutputMaxSize, got.FailuresBeforeWarning,
					tc.wantTimeout, tc.wantMethod, tc.wantMax, tc.wantWarn)
			}
		})
	}
}

func TestWithDefaultsCopies(t *testing.T) {
	t.Parallel()
	s := Spec{Args: []string{"a", "b"}, Header: map[string][]string{"X": {"1"}}}
	got := s.withDefaults()
	got.Args[0] = "changed"
	got.Header["X"][0] = "changed"
	if s.Args[0] != "a" || s.Header["X"][0] != "1" {
		t.Errorf("withDefaults(%+v) shares Args or Header with its input", s)
	}
}
