package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestPartitionClientCutFromServer cuts a client from one server at a
// time, which gossip does not notice (the other servers still reach both):
// the client's session to it is found dead by its keepalives, and its
// reads and writes go to another server.
func TestPartitionClientCutFromServer(t *testing.T) {
	b := testcluster.NewBridge()
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1, Bridge: b})
	client := c.Clients[0]
	kv := client.API().KV()
	for i, s := range c.Servers {
		b.Cut(client.ID(), s.ID())
		for j := range 3 {
			key := fmt.Sprintf("cut/%d/%d", i, j)
			// An election that a loaded machine may hold meanwhile
			// answers 503 No cluster leader: that is retried, and the
			// attempt that succeeds is what is timed.
			var took time.Duration
			testcluster.Eventually(t, 30*time.Second, func() error {
				var err error
				took, err = timedWithin(15*time.Second, func(ctx context.Context) error {
					if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte(key)}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
						return fmt.Errorf("put: %w", err)
					}
					pair, _, err := kv.Get(key, (&api.QueryOptions{}).WithContext(ctx))
					if err == nil && (pair == nil || string(pair.Value) != key) {
						err = errors.New("read back something else")
					}
					return err
				})
				if err != nil && !strings.Contains(err.Error(), "No cluster leader") {
					t.Fatalf("client cut from %s: write and read %s = %v after %v, want them served by another server", s.Name, key, err, took)
				}
				return err
			})
			t.Logf("client cut from %s: write and read %d after %v", s.Name, j, took)
			// The first call may have waited for the session to be
			// found dead (keepalive 1s + 2s, then a 2s redial); the
			// next ones go straight to another server.
			if j > 0 && took > time.Second {
				t.Errorf("client cut from %s: call %d took %v, want the client on another server by now", s.Name, j, took)
			}
		}
		b.Heal()
	}
}
