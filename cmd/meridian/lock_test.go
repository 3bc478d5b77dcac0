package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/testcluster"
)

// runResult is what one in-process run of the CLI ended with.
type runResult struct {
	code        int
	out, errOut string
}

// goMeridian runs the CLI in-process in a goroutine; the channel answers
// once it returns.
func goMeridian(args ...string) <-chan runResult {
	ch := make(chan runResult, 1)
	go func() {
		code, out, errOut := meridian(args...)
		ch <- runResult{code, out, errOut}
	}()
	return ch
}

// await waits for a run to end, failing the test after timeout.
func await(t *testing.T, ch <-chan runResult, timeout time.Duration) runResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(timeout):
		t.Fatalf("meridian did not return within %v", timeout)
		return runResult{}
	}
}

// maxOverlap reads a log of "enter"/"exit" lines and answers the largest
// number of holders inside at once, and how many entered.
func maxOverlap(t *testing.T, file string) (most, entered int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	inside := 0
	for _, line := range strings.Fields(string(b)) {
		switch line {
		case "enter":
			inside++
			entered++
			most = max(most, inside)
		case "exit":
			inside--
		}
	}
	return most, entered
}

func TestLockExclusiveAndSemaphore(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()

	tests := []struct {
		name        string
		limit, runs int
	}{
		{"lock", 1, 3},
		{"semaphore", 2, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "log")
			child := fmt.Sprintf("echo enter >> %s; sleep 0.3; echo exit >> %s", file, file)
			var runs []<-chan runResult
			for range tc.runs {
				runs = append(runs, goMeridian("lock", addr, "-n", fmt.Sprint(tc.limit), "jobs/"+tc.name, child))
			}
			for _, ch := range runs {
				if r := await(t, ch, 60*time.Second); r.code != 0 {
					t.Fatalf("lock run = exit %d, stderr %q", r.code, r.errOut)
				}
			}
			most, entered := maxOverlap(t, file)
			if most > tc.limit || entered != tc.runs {
				t.Errorf("holders at once = %d (limit %d), entered %d (want %d)", most, tc.limit, entered, tc.runs)
			}
		})
	}

	// The lock is free again and its sessions are gone.
	sessions, _, err := c.Servers[0].API().Session().List(nil)
	if err != nil || len(sessions) != 0 {
		t.Errorf("sessions after every lock run = %d, %v; want none", len(sessions), err)
	}
}

func TestLockExitCodeAndOutput(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()

	code, out, errOut := meridian("lock", addr, "app", "echo held; exit 7")
	if code != 7 || out != "held\n" {
		t.Errorf("lock app 'echo held; exit 7' = exit %d, stdout %q, stderr %q; want 7 and held", code, out, errOut)
	}
	code, _, errOut = meridian("lock", addr, "-shell=false", "app", "/bin/sh", "-c", "exit 3")
	if code != 3 {
		t.Errorf("lock -shell=false = exit %d, stderr %q; want 3", code, errOut)
	}
	pair, _, err := c.Servers[0].API().KV().Get("app/.lock", nil)
	if err != nil || pair == nil || pair.Session != "" {
		t.Errorf("app/.lock after the runs = %+v, %v; want a released key", pair, err)
	}
}

func TestLockLostTerminatesChild(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()
	file := filepath.Join(t.TempDir(), "session")

	ch := goMeridian("lock", addr, "svc", fmt.Sprintf("echo $MERIDIAN_LOCK_SESSION > %s; exec sleep 60", file))
	var session string
	testcluster.Eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(file)
		session = strings.TrimSpace(string(b))
		if err != nil || session == "" {
			return fmt.Errorf("child has not written its session yet: %v", err)
		}
		return nil
	})
	if _, err := c.Servers[0].API().Session().Destroy(session, nil); err != nil {
		t.Fatalf("destroy session %s: %v", session, err)
	}
	r := await(t, ch, 15*time.Second)
	if r.code == 0 || !strings.Contains(r.errOut, "lost") {
		t.Errorf("lock after its session was destroyed = exit %d, stderr %q; want non-zero and lost", r.code, r.errOut)
	}
}

func TestLockTimeout(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()
	file := filepath.Join(t.TempDir(), "in")

	holder := goMeridian("lock", addr, "busy", fmt.Sprintf("touch %s; exec sleep 60", file))
	testcluster.Eventually(t, 10*time.Second, func() error {
		select {
		case r := <-holder:
			t.Fatalf("the holder ended before its child ran: exit %d, stderr %q", r.code, r.errOut)
		default:
		}
		_, err := os.Stat(file)
		return err
	})
	code, _, errOut := meridian("lock", addr, "-timeout", "300ms", "busy", "true")
	if code != 1 || !strings.Contains(errOut, "timed out") {
		t.Errorf("lock -timeout on a held lock = exit %d, stderr %q; want 1 and timed out", code, errOut)
	}
	// End the holder by destroying its session.
	sessions, _, err := c.Servers[0].API().Session().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() { c.Servers[0].API().Session().Destroy(s.ID, nil) })
	}
	wg.Wait()
	await(t, holder, 15*time.Second)
}

func TestLockWatchBadInvocations(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"lock without arguments", []string{"lock"}, "expected PREFIX and a command"},
		{"lock without command", []string{"lock", "prefix"}, "expected PREFIX and a command"},
		{"lock with n 0", []string{"lock", "-n", "0", "p", "true"}, "-n must be at least 1"},
		{"lock with empty prefix", []string{"lock", "/", "true"}, "PREFIX must not be empty"},
		{"watch without type", []string{"watch", "-key", "k"}, "-type is required"},
		{"watch with unknown type", []string{"watch", "-type", "event-stream", "-key", "k"}, `unknown -type "event-stream"`},
		{"watch key without key", []string{"watch", "-type", "key"}, "needs -key"},
		{"watch keyprefix without prefix", []string{"watch", "-type", "keyprefix"}, "needs -prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := meridian(tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("meridian %v = exit %d, stderr %q; want exit 1 and %q", tc.args, code, errOut, tc.wantErr)
			}
		})
	}
}
