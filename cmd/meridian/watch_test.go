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
