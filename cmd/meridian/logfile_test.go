package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/wait"
)

func TestLogFileRotatesBySizeAndKeepsMaxFiles(t *testing.T) {
	dir := t.TempDir()
	l, err := openLogFile(dir+"/", 100, time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 39) + "\n") // 40 bytes: two lines a file
	for range 9 {
		if _, err := l.Write(line); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, _ := filepath.Glob(filepath.Join(dir, "meridian-*.log"))
	if len(rotated) != 2 {
		t.Errorf("rotated files = %v, want 2 (log_rotate_max_files)", rotated)
	}
	for _, f := range append(rotated, filepath.Join(dir, "meridian.log")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 100 || len(b)%40 != 0 {
			t.Errorf("%s holds %d bytes, want whole lines up to 100", f, len(b))
		}
	}
}

func TestLogFileRotatesByAge(t *testing.T) {
	dir := t.TempDir()
	l, err := openLogFile(filepath.Join(dir, "agent.log"), 0, time.Nanosecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		if _, err := l.Write([]byte("line\n")); err != nil {
			t.Fatal(err)
		}
	}
	if rotated, _ := filepath.Glob(filepath.Join(dir, "agent-*.log")); len(rotated) < 2 {
		t.Errorf("rotated files = %v, want one per write after the first (period 1ns, keep all)", rotated)
	}
}

// meridian agent -pid-file -log-file: the PID is written while it runs and
// removed when it stops; the logs are in the file as on stderr.
func TestAgentPidFileAndLogFile(t *testing.T) {
	dir := t.TempDir()
	pid, logs := filepath.Join(dir, "agent.pid"), filepath.Join(dir, "logs")+"/"
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"agent", "-dev", "-node", "pidtest", "-http-port", "0", "-dns-port", "0", "-server-port", "0",
			"-serf-lan-port", "0", "-serf-wan-port", "0", "-pid-file", pid, "-log-file", logs, "-log-level", "debug"}, &stdout, &stderr)
	}()
	addr := regexp.MustCompile(`HTTP http://(\S+)`)
	var httpAddr string
	wait.Eventually(t, 30*time.Second, func() error {
		select {
		case code := <-done:
			t.Fatalf("meridian agent exited %d early; stderr:\n%s", code, stderr.String())
		default:
		}
		m := addr.FindStringSubmatch(stdout.String())
		if m == nil {
			return fmt.Errorf("no HTTP address in the output yet: %q", stdout.String())
		}
		httpAddr = m[1]
		return nil
	})
	b, err := os.ReadFile(pid)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file = %q, %v; want %d", b, err, os.Getpid())
	}
	client, err := api.NewClient(&api.Config{Address: httpAddr})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Agent().Leave(); err != nil {
		t.Fatalf("Agent().Leave(): %v", err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("meridian agent exit %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("meridian agent did not stop after leave")
	}
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Errorf("pid file after exit: %v, want it removed", err)
	}
	logged, err := os.ReadFile(filepath.Join(logs, "meridian.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) == 0 || !strings.Contains(stderr.String(), strings.SplitN(string(logged), "\n", 2)[0]) {
		t.Errorf("log file holds %q, want the lines written to stderr (%q)", logged, stderr.String())
	}
}
