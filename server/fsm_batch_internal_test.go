package server

import (
	"testing"

	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/kvstore"
)

// batchLogs encodes commands as consecutive raft entries from index first.
func batchLogs(t *testing.T, first uint64, cmds ...any) []*raft.Log {
	t.Helper()
	var logs []*raft.Log
	for i, c := range cmds {
		var typ msgType
		switch c.(type) {
		case *kvstore.KVRequest:
			typ = msgKV
		case *kvstore.SessionRequest:
			typ = msgSession
		case *txnCommand:
			typ = msgCatalogTxn
		default:
			t.Fatalf("no message type for %T", c)
		}
		data, err := encodeCommand(typ, c)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Type: raft.LogCommand, Index: first + uint64(i), Data: data})
	}
	return logs
}

// TestFSMApplyBatch applies batches in one shared transaction, and redoes a
// batch entry by entry when one command fails, so that the failed one
// changes nothing and the others still apply, each at its own index.
func TestFSMApplyBatch(t *testing.T) {
	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	f := &fsm{state: st}
	modifyIndex := func(key string) uint64 {
		t.Helper()
		tx, _ := st.read()
		defer tx.Abort()
		_, e, err := kvstore.KVGet(tx, nil, key)
		if err != nil {
			t.Fatal(err)
		}
		if e == nil {
			return 0
		}
		return e.ModifyIndex
	}

	out := f.ApplyBatch(batchLogs(t, 10,
		&kvstore.KVRequest{Op: kvstore.VerbSet, Key: "a", Value: []byte("1")},
		&kvstore.KVRequest{Op: kvstore.VerbSet, Key: "b", Value: []byte("2")},
		&kvstore.KVRequest{Op: kvstore.VerbCAS, Key: "a", Index: 99, Value: []byte("3")},
	))
	if len(out) != 3 || out[0] != true || out[1] != true || out[2] != false {
		t.Fatalf("ApplyBatch = %v, want [true true false]", out)
	}
	if a, b := modifyIndex("a"), modifyIndex("b"); a != 10 || b != 11 {
		t.Fatalf("ModifyIndex a, b = %d, %d; want 10, 11", a, b)
	}

	// The session names a node that does not exist: its write fails.
	out = f.ApplyBatch(batchLogs(t, 20,
		&kvstore.KVRequest{Op: kvstore.VerbSet, Key: "c", Value: []byte("4")},
		&kvstore.SessionRequest{Op: kvstore.SessionOpCreate, Session: kvstore.Session{ID: "5f3a0c1e-0000-4000-8000-000000000001", Node: "nowhere"}},
		&kvstore.KVRequest{Op: kvstore.VerbCAS, Key: "a", Index: 10, Value: []byte("5")},
	))
	if len(out) != 3 || out[0] != true || out[2] != true {
		t.Fatalf("ApplyBatch = %v, want [true <error> true]", out)
	}
	if err, ok := out[1].(error); !ok || err == nil {
		t.Fatalf("session create on a missing node answered %v, want an error", out[1])
	}
	if c, a := modifyIndex("c"), modifyIndex("a"); c != 20 || a != 22 {
		t.Fatalf("ModifyIndex c, a = %d, %d; want 20, 22", c, a)
	}
	tx, _ := st.read()
	defer tx.Abort()
	if _, sessions, err := kvstore.SessionList(tx, nil); err != nil || len(sessions) != 0 {
		t.Fatalf("sessions after a failed create = %v, %v; want none", sessions, err)
	}
}
