package server

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
)

// bufSink is a raft.SnapshotSink in memory.
type bufSink struct{ bytes.Buffer }

func (*bufSink) ID() string    { return "test" }
func (*bufSink) Cancel() error { return nil }
func (*bufSink) Close() error  { return nil }

func applyQueryCmd(t *testing.T, f *fsm, idx uint64, op catalog.QueryOp, q catalog.PreparedQuery) error {
	t.Helper()
	buf, err := encodeCommand(msgQuery, &catalog.QueryApplyRequest{Op: op, Query: q})
	if err != nil {
		t.Fatal(err)
	}
	res := f.applyCommand(idx, time.Unix(0, 0), msgType(buf[0]), buf[1:])
	if err, ok := res.(error); ok {
		return err
	}
	return nil
}

func getQuery(t *testing.T, st *state, id string) *catalog.PreparedQuery {
	t.Helper()
	tx, _ := st.read()
	defer tx.Abort()
	_, q, err := catalog.QueryGet(tx, nil, id)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestQueryFSM applies prepared query commands, takes the queries through a
// snapshot, and ends the session one is tied to.
func TestQueryFSM(t *testing.T) {
	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	f := &fsm{state: st}
	const sid = "55555555-5555-4555-8555-555555555555"
	if err := st.write(func(tx *memdb.Txn) error {
		if err := catalog.EnsureNode(tx, 1, &catalog.Node{Node: "n1", Address: "10.0.0.1"}); err != nil {
			return err
		}
		return kvstore.SessionCreate(tx, 2, &kvstore.Session{ID: sid, Node: "n1", Behavior: kvstore.BehaviorRelease})
	}); err != nil {
		t.Fatal(err)
	}
	q1 := catalog.PreparedQuery{ID: "11111111-1111-4111-8111-111111111111", Name: "web", Service: catalog.QueryService{Service: "web"}}
	q2 := catalog.PreparedQuery{ID: "22222222-2222-4222-8222-222222222222", Name: "tied", Session: sid, Service: catalog.QueryService{Service: "db"}}
	if err := applyQueryCmd(t, f, 10, catalog.QueryOpCreate, q1); err != nil {
		t.Fatalf("create = %v", err)
	}
	bad := q2
	bad.Session = "99999999-9999-4999-8999-999999999999"
	if err := applyQueryCmd(t, f, 11, catalog.QueryOpCreate, bad); !errors.Is(err, catalog.ErrInvalidQuery) {
		t.Errorf("create with an unknown session = %v, want ErrInvalidQuery", err)
	}
	if err := applyQueryCmd(t, f, 12, catalog.QueryOpCreate, q2); err != nil {
		t.Fatalf("create tied to a session = %v", err)
	}
	missing := q1
	missing.ID = "33333333-3333-4333-8333-333333333333"
	missing.Name = "other"
	if err := applyQueryCmd(t, f, 13, catalog.QueryOpUpdate, missing); !errors.Is(err, catalog.ErrQueryNotFound) {
		t.Errorf("update of an unknown query = %v, want ErrQueryNotFound", err)
	}

	// Through a snapshot.
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatalf("Persist = %v", err)
	}
	snap.Release()
	restored, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	rf := &fsm{state: restored}
	if err := rf.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatalf("Restore = %v", err)
	}
	if q := getQuery(t, restored, q2.ID); q == nil || q.Name != "tied" || q.CreateIndex != 12 {
		t.Errorf("tied query after restore = %+v, want it with CreateIndex 12", q)
	}

	// The session ends: its query goes with it, the other stays.
	buf, err := encodeCommand(msgSession, &kvstore.SessionRequest{Op: kvstore.SessionOpDestroy, Session: kvstore.Session{ID: sid}})
	if err != nil {
		t.Fatal(err)
	}
	if res := rf.applyCommand(20, time.Unix(0, 0), msgSession, buf[1:]); res != nil {
		t.Fatalf("session destroy = %v", res)
	}
	if q := getQuery(t, restored, q2.ID); q != nil {
		t.Errorf("query tied to a destroyed session = %+v, want it deleted", q)
	}
	if q := getQuery(t, restored, q1.ID); q == nil {
		t.Errorf("untied query after the session ended = nil, want it kept")
	}
}
