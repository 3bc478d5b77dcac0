package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startWatch runs `meridian watch` until the test ends, answering its
// stdout and stderr.
func startWatch(t *testing.T, args ...string) (stdout, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- watchCmd(ctx, args, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("watch %v exit %d after interrupt, want 0; stderr %q", args, code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("watch %v did not stop within 10s of its interrupt", args)
		}
	})
	return stdout, stderr
}

func TestWatchKeyRunsHandler(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	kv := c.Servers[0].API().KV()
	if _, err := kv.Put(&api.KVPair{Key: "cfg/a", Value: []byte("one")}, nil); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "seen")
	startWatch(t, "-http-addr="+c.Servers[0].HTTPAddr(), "-type", "key", "-key", "cfg/a", "cat >> "+file)

	// values decodes the JSON objects the handler appended, in order.
	values := func() ([]string, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var got []string
		dec := json.NewDecoder(bytes.NewReader(b))
		for dec.More() {
			var p api.KVPair
			if err := dec.Decode(&p); err != nil {
				return nil, fmt.Errorf("decode %q: %w", b, err)
			}
			got = append(got, string(p.Value))
		}
		return got, nil
	}
	waitValues := func(want string) {
		t.Helper()
		testcluster.Eventually(t, 10*time.Second, func() error {
			got, err := values()
			if err != nil || strings.Join(got, ",") != want {
				return fmt.Errorf("handler saw %v (%v), want %s", got, err, want)
			}
			return nil
		})
	}
	waitValues("one")
	if _, err := kv.Put(&api.KVPair{Key: "cfg/a", Value: []byte("two")}, nil); err != nil {
		t.Fatal(err)
	}
	waitValues("one,two")
}

func TestWatchKeyprefixPrints(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	kv := c.Servers[0].API().KV()
	out, _ := startWatch(t, "-http-addr="+c.Servers[0].HTTPAddr(), "-type", "keyprefix", "-prefix", "app/")

	testcluster.Eventually(t, 10*time.Second, func() error {
		if s := out.String(); !strings.Contains(s, "[]") {
			return fmt.Errorf("watch printed %q, want an empty list first", s)
		}
		return nil
	})
	if _, err := kv.Put(&api.KVPair{Key: "app/x", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if s := out.String(); !strings.Contains(s, `"Key": "app/x"`) {
			return fmt.Errorf("watch printed %q, want app/x", s)
		}
		return nil
	})
}

// TestWatchEventOncePerEvent: `watch -type event -name deploy` runs its
// handler once per deploy event, with a list of that one event, however
// many times the list is read.
func TestWatchEventOncePerEvent(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	client := c.Servers[0].API()
	fire := func(name, payload string) string {
		t.Helper()
		id, _, err := client.Event().Fire(&api.UserEvent{Name: name, Payload: []byte(payload)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	first := fire("deploy", "v1")
	file := filepath.Join(t.TempDir(), "seen")
	startWatch(t, "-http-addr="+c.Servers[0].HTTPAddr(), "-type", "event", "-name", "deploy", "cat >> "+file)

	seen := func() ([]string, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var got []string
		dec := json.NewDecoder(bytes.NewReader(b))
		for dec.More() {
			var evs []api.UserEvent
			if err := dec.Decode(&evs); err != nil {
				return nil, fmt.Errorf("decode %q: %w", b, err)
			}
			if len(evs) != 1 {
				return nil, fmt.Errorf("handler got %d events at once, want 1", len(evs))
			}
			got = append(got, evs[0].ID+"="+string(evs[0].Payload))
		}
		return got, nil
	}
	waitSeen := func(want ...string) {
		t.Helper()
		testcluster.Eventually(t, 10*time.Second, func() error {
			got, err := seen()
			if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
				return fmt.Errorf("handler saw %v (%v), want %v", got, err, want)
			}
			return nil
		})
	}
	waitSeen(first + "=v1")
	fire("other", "x") // another name: not handed over
	second := fire("deploy", "v2")
	third := fire("deploy", "v3")
	waitSeen(first+"=v1", second+"=v2", third+"=v3")
	// An event of another name moves the list's index but not deploy's.
	fire("other", "y")
	fourth := fire("deploy", "v4")
	waitSeen(first+"=v1", second+"=v2", third+"=v3", fourth+"=v4")
}
