package kvstore

import (
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// at returns the leader clock d after a fixed start, for the tests to pass
// as now.
func at(d time.Duration) time.Time {
	return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(d)
}

func newDB(t testing.TB) *memdb.MemDB {
	t.Helper()
	db, err := memdb.NewMemDB(&memdb.DBSchema{Tables: Tables()})
	if err != nil {
		t.Fatalf("NewMemDB: %v", err)
	}
	return db
}

// apply runs fn in a write transaction and commits it, failing the test on
// error.
func apply(t testing.TB, db *memdb.MemDB, fn func(tx *memdb.Txn) error) {
	t.Helper()
	tx := db.Txn(true)
	if err := fn(tx); err != nil {
		tx.Abort()
		t.Fatalf("write: %v", err)
	}
	tx.Commit()
}

// applyOK runs a conditional write and commits it, returning its outcome.
func applyOK(t testing.TB, db *memdb.MemDB, fn func(tx *memdb.Txn) (bool, error)) bool {
	t.Helper()
	var ok bool
	apply(t, db, func(tx *memdb.Txn) error {
		var err error
		ok, err = fn(tx)
		return err
	})
	return ok
}

func set(t testing.TB, db *memdb.MemDB, idx uint64, key, value string) {
	t.Helper()
	apply(t, db, func(tx *memdb.Txn) error { return KVSet(tx, idx, &DirEntry{Key: key, Value: []byte(value)}) })
}

func createSession(t testing.TB, db *memdb.MemDB, idx uint64, s *Session) {
	t.Helper()
	apply(t, db, func(tx *memdb.Txn) error { return SessionCreate(tx, idx, s) })
}

func lock(t testing.TB, db *memdb.MemDB, idx uint64, now time.Time, key, session string) bool {
	t.Helper()
	return applyOK(t, db, func(tx *memdb.Txn) (bool, error) {
		return KVLock(tx, idx, now, &DirEntry{Key: key, Session: session, Value: []byte("held")})
	})
}

func get(t testing.TB, db *memdb.MemDB, key string) (uint64, *DirEntry) {
	t.Helper()
	idx, e, err := KVGet(db.Txn(false), nil, key)
	if err != nil {
		t.Fatalf("KVGet(%q): %v", key, err)
	}
	return idx, e
}

func list(t testing.TB, db *memdb.MemDB, prefix string) (uint64, []string) {
	t.Helper()
	idx, es, err := KVList(db.Txn(false), nil, prefix)
	if err != nil {
		t.Fatalf("KVList(%q): %v", prefix, err)
	}
	keys := []string{}
	for _, e := range es {
		keys = append(keys, e.Key)
	}
	return idx, keys
}

// fired reports whether any channel of ws is closed. memdb closes them
// inside Commit, and kvstore's watches in the functions Commit runs last
// (Txn.Defer), so no waiting is needed.
func fired(ws memdb.WatchSet) bool {
	for ch := range ws {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

func session(id, node string, delay time.Duration, behavior string) *Session {
	return &Session{ID: id, Node: node, LockDelay: delay, Behavior: behavior, NodeChecks: []string{"serfHealth"}}
}
