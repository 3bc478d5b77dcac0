package server_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

func TestKVAndSessionsSurviveSnapshotAndFullRestart(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Servers: 3, TuneServer: defaultRaftTimings})
	c.WaitLeader(10 * time.Second)
	client := c.Servers[0].API()
	kv := client.KV()
	base := "http://" + c.Servers[0].HTTPAddr()

	const nkeys = 50
	for i := range nkeys {
		k := fmt.Sprintf("snap/%02d", i)
		if _, err := kv.Put(&api.KVPair{Key: k, Value: []byte(k), Flags: uint64(i)}, nil); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	// Sessions bound to no check, so that servers seen failed while they
	// restart do not invalidate them; one holds a lock.
	var sessions []string
	for i := range 3 {
		body := fmt.Sprintf(`{"Name":"snap-%d","TTL":"1h","NodeChecks":[]}`, i)
		code, out := rawRequest(t, "PUT", base+"/v1/session/create", []byte(body))
		var created struct{ ID string }
		if code != 200 || json.Unmarshal([]byte(out), &created) != nil || created.ID == "" {
			t.Fatalf("session create = %d %q", code, out)
		}
		sessions = append(sessions, created.ID)
	}
	if ok, _, err := kv.Acquire(&api.KVPair{Key: "snap/lock", Value: []byte("held"), Session: sessions[0]}, nil); err != nil || !ok {
		t.Fatalf("Acquire(snap/lock) = %v, %v", ok, err)
	}

	// Every server must have applied the writes before its snapshot.
	for _, s := range c.Servers {
		testcluster.Eventually(t, 10*time.Second, func() error {
			p, _, err := s.API().KV().Get("snap/lock", &api.QueryOptions{AllowStale: true})
			if err != nil || p == nil {
				return fmt.Errorf("%s has not applied snap/lock: %v", s.Name, err)
			}
			return nil
		})
	}
	for _, s := range c.Servers {
		srv := s.Agent().Server()
		if err := srv.Snapshot(); err != nil {
			t.Fatalf("%s: Snapshot: %v", s.Name, err)
		}
		if idx := srv.Stats()["last_snapshot_index"]; idx == "0" || idx == "" {
			t.Fatalf("%s: last_snapshot_index = %q after Snapshot, want the applied index", s.Name, idx)
		}
	}

	for _, s := range c.Servers {
		s.Kill()
	}
	for _, s := range c.Servers {
		s.Restart()
	}
	c.WaitLeader(20 * time.Second)

	for _, s := range c.Servers {
		kv := s.API().KV()
		testcluster.Eventually(t, 20*time.Second, func() error {
			list, _, err := kv.List("snap/", &api.QueryOptions{RequireConsistent: true})
			if err != nil {
				return fmt.Errorf("%s: List: %w", s.Name, err)
			}
			if len(list) != nkeys+1 {
				return fmt.Errorf("%s: %d keys under snap/, want %d", s.Name, len(list), nkeys+1)
			}
			return nil
		})
	}
	for i := range nkeys {
		k := fmt.Sprintf("snap/%02d", i)
		p, _, err := kv.Get(k, &api.QueryOptions{RequireConsistent: true})
		if err != nil || p == nil || string(p.Value) != k || p.Flags != uint64(i) {
			t.Errorf("after restart, Get(%q) = %+v, %v; want value %q flags %d", k, p, err, k, i)
		}
	}
	p, _, err := kv.Get("snap/lock", &api.QueryOptions{RequireConsistent: true})
	if err != nil || p == nil || p.Session != sessions[0] || p.LockIndex != 1 {
		t.Errorf("after restart, snap/lock = %+v, %v; want held by %s with LockIndex 1", p, err, sessions[0])
	}
	for _, id := range sessions {
		e, _, err := client.Session().Info(id, &api.QueryOptions{RequireConsistent: true})
		if err != nil || e == nil || e.TTL != "1h" {
			t.Errorf("after restart, session %s = %+v, %v; want it back with TTL 1h", id, e, err)
		}
	}
}
