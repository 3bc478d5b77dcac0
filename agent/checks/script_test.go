package checks

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
)

// sh returns the argv running script with /bin/sh; args become $0, $1...
func sh(script string, args ...string) []string {
	return append([]string{"/bin/sh", "-c", script}, args...)
}

func TestScript(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		timeout    time.Duration
		wantStatus string
		wantOut    string // exact, unless wantPrefix
		wantPrefix bool
	}{
		{"exit 0", sh("echo ok; exit 0"), 0, StatusPassing, "ok\n", false},
		{"exit 1", sh("echo slow; exit 1"), 0, StatusWarning, "slow\n", false},
		{"exit 2", sh("echo down; exit 2"), 0, StatusCritical, "down\n", false},
		{"exit 255", sh("exit 255"), 0, StatusCritical, "", false},
		{"stdout and stderr", sh("echo out; echo err >&2; exit 1"), 0, StatusWarning, "out\nerr\n", false},
		{"killed by signal", sh("kill -9 $$"), 0, StatusCritical, "", false},
		{"no shell", []string{"/bin/echo", "$HOME", "a;b"}, 0, StatusPassing, "$HOME a;b\n", false},
		// The timeout leaves the shell time to print before it is cut
		// off: with 50ms, a loaded machine under -race had not yet run
		// the echo (2 of 10 runs beside a CPU burner).
		{"timeout", sh("echo started; sleep 5"), time.Second, StatusCritical, "Timed out (1s) running check\n\nstarted\n", false},
		{"no such program", []string{"/nonexistent/check"}, 0, StatusCritical, "fork/exec /nonexistent/check", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, rec := startRunner(t, Spec{CheckID: "s", Args: tc.args, Interval: time.Hour, Timeout: tc.timeout})
			start := time.Now()
			got := rec.waitN(t, 1)[0]
			okOut := got.output == tc.wantOut || tc.wantPrefix && strings.HasPrefix(got.output, tc.wantOut)
			if got.status != tc.wantStatus || !okOut {
				t.Errorf("script %q = %q, want status %s output %q", tc.args, got, tc.wantStatus, tc.wantOut)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("script %q took %s to report, want the timeout to cut it short", tc.args, d)
			}
		})
	}
}

func TestScriptTruncation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
		max    int
		want   string
	}{
		{"fits", "printf 0123456789", 10, "0123456789"},
		{"tail kept", "printf 0123456789; printf abcde >&2", 10, "Captured 10 of 15 bytes\n...\n56789abcde"},
		{"large", "head -c 100000 /dev/zero | tr '\\0' x; printf END", 8, "Captured 8 of 100003 bytes\n...\nxxxxxEND"},
		{"split rune dropped", "printf 'x\\303\\251abc'", 4, "Captured 4 of 6 bytes\n...\nabc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, rec := startRunner(t, Spec{CheckID: "s", Args: sh(tc.script), Interval: time.Hour, OutputMaxSize: tc.max})
			got := rec.waitN(t, 1)[0]
			if got.output != tc.want {
				t.Errorf("script %q with OutputMaxSize %d output = %q, want %q", tc.script, tc.max, got.output, tc.want)
			}
		})
	}
}

// TestScriptKillsProcessGroup checks that a timed-out script's children
// die with it.
func TestScriptKillsProcessGroup(t *testing.T) {
	t.Parallel()
	// The background sleep holds no pipe (so only the kill can end it) and
	// prints its pid first.
	script := "sleep 30 >/dev/null 2>&1 & echo $!; wait"
	_, rec := startRunner(t, Spec{CheckID: "s", Args: sh(script), Interval: time.Hour, Timeout: 100 * time.Millisecond})
	got := rec.waitN(t, 1)[0]
	_, pidText, ok := strings.Cut(got.output, "\n\n")
	pid, err := strconv.Atoi(strings.TrimSpace(pidText))
	if got.status != StatusCritical || !ok || err != nil {
		t.Fatalf("script %q = %q, want critical with the child's pid after the timeout note", script, got)
	}
	// Nothing to wait on for another process's death: poll.
	wait.Eventually(t, 5*time.Second, func() error {
		if alive, state := processAlive(pid); alive {
			return fmt.Errorf("child %d of a timed-out script is still alive (%s), want it killed", pid, state)
		}
		return nil
	})
}

// processAlive reports whether pid exists and is not a zombie (an orphan
// waiting for an init that may not reap it).
func processAlive(pid int) (bool, string) {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false, "gone"
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false, err.Error()
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 || i+2 >= len(stat) {
		return true, string(stat)
	}
	state := stat[i+2]
	return state != 'Z' && state != 'X', "state " + string(state)
}
