package testcluster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Writers runs concurrent writers and keeps what each write the cluster
// acknowledged was, for durability tests: a write that got a success answer
// must still be readable afterwards, whatever was killed meanwhile.
type Writers struct {
	mu    sync.Mutex
	acked []string
	stop  chan struct{}
	wg    sync.WaitGroup
}

// StartWriters starts n writers; writer w's i-th write calls write(w, i),
// which returns the name of what it wrote and nil when it was acknowledged.
// The writers stop at Stop or at the end of the test.
func StartWriters(t testing.TB, n int, write func(w, i int) (string, error)) *Writers {
	ws := &Writers{stop: make(chan struct{})}
	for w := range n {
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-ws.stop:
					return
				default:
				}
				if name, err := write(w, i); err == nil {
					ws.mu.Lock()
					ws.acked = append(ws.acked, name)
					ws.mu.Unlock()
				}
			}
		}()
	}
	t.Cleanup(func() { ws.Stop() })
	return ws
}

// Count is how many writes were acknowledged so far.
func (ws *Writers) Count() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.acked)
}

// WaitAcked waits until at least n writes were acknowledged.
func (ws *Writers) WaitAcked(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() error {
		if got := ws.Count(); got < n {
			return fmt.Errorf("%d writes acknowledged, want %d", got, n)
		}
		return nil
	})
}

// Stop stops the writers, waits for them, and returns every acknowledged
// write. Safe to call more than once.
func (ws *Writers) Stop() []string {
	ws.mu.Lock()
	select {
	case <-ws.stop:
	default:
		close(ws.stop)
	}
	ws.mu.Unlock()
	ws.wg.Wait()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]string(nil), ws.acked...)
}

// KeysAcked reads every key under prefix with a consistent read and
// reports the first acknowledged key (of writers whose value is the key
// itself) that is missing or holds another value.
func KeysAcked(kv *api.KV, prefix string, acked []string) error {
	list, _, err := kv.List(prefix, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		return err
	}
	have := make(map[string]string, len(list))
	for _, p := range list {
		have[p.Key] = string(p.Value)
	}
	for _, k := range acked {
		if v, ok := have[k]; !ok || v != k {
			return fmt.Errorf("acknowledged key %q: value %q, present %v (%d keys under %q, %d acknowledged)", k, v, ok, len(list), prefix, len(acked))
		}
	}
	return nil
}
