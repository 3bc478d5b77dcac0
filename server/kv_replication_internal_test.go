package server

import (
	"io"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/kvstore"
)

// TestFSMKVReplicate applies batches of replicated changes: keys and
// cursor move together, a batch whose operation fails changes neither, and
// the cursor survives a snapshot.
func TestFSMKVReplicate(t *testing.T) {
	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	f := &fsm{state: st}
	rule := KVReplicationRule{Prefix: "g/", From: "dc1"}
	apply := func(idx uint64, req kvReplicateRequest) any {
		t.Helper()
		data, err := encodeCommand(msgKVReplicate, &req)
		if err != nil {
			t.Fatal(err)
		}
		return f.Apply(&raft.Log{Type: raft.LogCommand, Index: idx, Data: data})
	}
	check := func(s *state, wantCursor uint64, want map[string]string) {
		t.Helper()
		tx, _ := s.read()
		defer tx.Abort()
		if got, err := storedKVCursor(tx, rule); err != nil || got != wantCursor {
			t.Errorf("cursor = %d, %v; want %d", got, err, wantCursor)
		}
		_, es, err := kvstore.KVList(tx, nil, "g/")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range es {
			got[e.Key] = string(e.Value)
			if e.Key == "g/a" && e.Flags != 42 {
				t.Errorf("g/a flags = %d, want 42", e.Flags)
			}
		}
		if len(got) != len(want) {
			t.Errorf("keys = %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("keys = %v, want %v", got, want)
			}
		}
	}
	if got := apply(10, kvReplicateRequest{From: "dc1", Prefix: "g/", Index: 100, Ops: []*kvstore.TxnOp{
		{Verb: kvstore.VerbSet, Key: "g/a", Value: []byte("1"), Flags: 42},
		{Verb: kvstore.VerbSet, Key: "g/b", Value: []byte("2")},
	}}); got != nil {
		t.Fatalf("apply = %v", got)
	}
	check(st, 100, map[string]string{"g/a": "1", "g/b": "2"})
	if got := apply(11, kvReplicateRequest{From: "dc1", Prefix: "g/", Index: 120, Ops: []*kvstore.TxnOp{
		{Verb: kvstore.VerbDelete, Key: "g/b"},
		{Verb: kvstore.VerbCAS, Key: "g/a", Value: []byte("x"), Index: 999},
	}}); got == nil {
		t.Fatal("a batch with a failing operation applied")
	}
	check(st, 100, map[string]string{"g/a": "1", "g/b": "2"})
	if got := apply(12, kvReplicateRequest{From: "dc1", Prefix: "g/", Index: 130, Ops: []*kvstore.TxnOp{{Verb: kvstore.VerbDelete, Key: "g/b"}}}); got != nil {
		t.Fatalf("apply = %v", got)
	}
	// A cursor-only batch: the source moved, nothing to change here.
	if got := apply(13, kvReplicateRequest{From: "dc1", Prefix: "g/", Index: 140}); got != nil {
		t.Fatalf("apply = %v", got)
	}
	check(st, 140, map[string]string{"g/a": "1"})

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	restored, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	if err := (&fsm{state: restored}).Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	check(restored, 140, map[string]string{"g/a": "1"})

	// A rule dropped from the configuration forgets its cursor; its keys
	// stay.
	if got := apply(14, kvReplicateRequest{From: "dc1", Prefix: "g/", Forget: true}); got != nil {
		t.Fatalf("forget = %v", got)
	}
	check(st, 0, map[string]string{"g/a": "1"})
}
