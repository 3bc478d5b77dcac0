package kvstore

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// txnFixture: key a (ModifyIndex 10) held by session s1; b (11); dir/x,
// dir/y (12, 13); session s2 without locks.
func txnFixture(t *testing.T) *memdb.MemDB {
	t.Helper()
	db := newDB(t)
	createSession(t, db, 1, session("s1", "n1", 0, ""))
	createSession(t, db, 2, session("s2", "n1", 0, ""))
	lock(t, db, 10, at(0), "a", "s1")
	set(t, db, 11, "b", "vb")
	set(t, db, 12, "dir/x", "vx")
	set(t, db, 13, "dir/y", "vy")
	return db
}

func TestTxnCommit(t *testing.T) {
	t.Parallel()
	db := txnFixture(t)
	ops := []*TxnOp{
		{Verb: VerbSet, Key: "c", Value: []byte("vc"), Flags: 3},
		{Verb: VerbCAS, Key: "b", Value: []byte("vb2"), Index: 11},
		{Verb: VerbCAS, Key: "new", Value: []byte("n"), Index: 0},
		{Verb: VerbGet, Key: "c"},
		{Verb: VerbGetOrEmpty, Key: "nope"},
		{Verb: VerbGetTree, Key: "dir/"},
		{Verb: VerbCheckIndex, Key: "dir/x", Index: 12},
		{Verb: VerbCheckSession, Key: "a", Session: "s1"},
		{Verb: VerbCheckNotExists, Key: "nope"},
		{Verb: VerbUnlock, Key: "a", Session: "s1", Value: []byte("released")},
		{Verb: VerbLock, Key: "a", Session: "s2", Value: []byte("mine")},
		{Verb: VerbDelete, Key: "dir/x"},
		{Verb: VerbDeleteCAS, Key: "dir/y", Index: 13},
		{Verb: VerbDeleteTree, Key: "zzz/"},
	}
	tx := db.Txn(true)
	results, errs := Txn(tx, 20, at(0), ops)
	if len(errs) != 0 {
		tx.Abort()
		t.Fatalf("Txn errors = %+v, want none", errs)
	}
	tx.Commit()

	want := []*DirEntry{
		{Key: "c", Flags: 3, CreateIndex: 20, ModifyIndex: 20},
		{Key: "b", CreateIndex: 11, ModifyIndex: 20},
		{Key: "new", CreateIndex: 20, ModifyIndex: 20},
		{Key: "c", Value: []byte("vc"), Flags: 3, CreateIndex: 20, ModifyIndex: 20},
		{Key: "nope"},
		{Key: "dir/x", Value: []byte("vx"), CreateIndex: 12, ModifyIndex: 12},
		{Key: "dir/y", Value: []byte("vy"), CreateIndex: 13, ModifyIndex: 13},
		{Key: "dir/x", CreateIndex: 12, ModifyIndex: 12},
		{Key: "a", Session: "s1", LockIndex: 1, CreateIndex: 10, ModifyIndex: 10},
		{Key: "a", LockIndex: 1, CreateIndex: 10, ModifyIndex: 20},
		{Key: "a", Session: "s2", LockIndex: 2, CreateIndex: 10, ModifyIndex: 20},
	}
	if len(results) != len(want) {
		t.Fatalf("Txn results = %d, want %d", len(results), len(want))
	}
	for i, r := range results {
		if !reflect.DeepEqual(r.KV, want[i]) {
			t.Errorf("Txn result %d = %+v, want %+v", i, r.KV, want[i])
		}
	}
	_, keys := list(t, db, "")
	if w := []string{"a", "b", "c", "new"}; !reflect.DeepEqual(keys, w) {
		t.Errorf("KVList(\"\") after Txn = %q, want %q", keys, w)
	}
	if _, e := get(t, db, "a"); string(e.Value) != "mine" || e.Session != "s2" {
		t.Errorf("KVGet(a) after Txn = %+v, want Value mine Session s2", e)
	}
}

func TestTxnRollback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		op   *TxnOp
		what string
	}{
		{"get missing", &TxnOp{Verb: VerbGet, Key: "foo"}, `key "foo" doesn't exist`},
		{"check-index stale", &TxnOp{Verb: VerbCheckIndex, Key: "b", Index: 3}, `failed index check for key "b", current modify index 20 != 3`}, // op 0 wrote b,
		{"check-index missing", &TxnOp{Verb: VerbCheckIndex, Key: "foo", Index: 3}, `failed to check index, key "foo" doesn't exist`},
		{"check-session other", &TxnOp{Verb: VerbCheckSession, Key: "a", Session: "s2"}, `failed session check for key "a", current session "s1" != "s2"`},
		{"check-session missing", &TxnOp{Verb: VerbCheckSession, Key: "foo", Session: "s2"}, `failed to check session, key "foo" doesn't exist`},
		{"check-not-exists", &TxnOp{Verb: VerbCheckNotExists, Key: "b"}, `key "b" exists`},
		{"cas stale", &TxnOp{Verb: VerbCAS, Key: "b", Index: 5}, `failed to set key "b", index is stale`},
		{"cas create exists", &TxnOp{Verb: VerbCAS, Key: "b", Index: 0}, `failed to set key "b", index is stale`},
		{"lock held", &TxnOp{Verb: VerbLock, Key: "a", Session: "s2"}, `failed to lock key "a", lock is already held`},
		{"lock bad session", &TxnOp{Verb: VerbLock, Key: "b", Session: "s9"}, `lock key "b": invalid session "s9": session not found`},
		{"unlock other", &TxnOp{Verb: VerbUnlock, Key: "a", Session: "s2"}, `failed to unlock key "a", lock isn't held, or is held by another session`},
		{"delete-cas stale", &TxnOp{Verb: VerbDeleteCAS, Key: "b", Index: 5}, `failed to delete key "b", index is stale`},
		{"unknown verb", &TxnOp{Verb: "frob", Key: "b"}, `unknown KV verb "frob"`},
		{"nil op", nil, "no KV operation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := txnFixture(t)
			before := dump(t, db)
			ops := []*TxnOp{
				{Verb: VerbSet, Key: "b", Value: []byte("changed")},
				{Verb: VerbDeleteTree, Key: "dir/"},
				tc.op,
				{Verb: VerbSet, Key: "z", Value: []byte("z")},
			}
			tx := db.Txn(true)
			results, errs := Txn(tx, 20, at(0), ops)
			tx.Abort()
			want := []*TxnError{{OpIndex: 2, What: tc.what}}
			if results != nil || !reflect.DeepEqual(errs, want) {
				t.Errorf("Txn(%s) = %+v, %+v, want nil, %+v", tc.name, results, errs, want[0])
			}
			if after := dump(t, db); !reflect.DeepEqual(after, before) {
				t.Errorf("store after aborted Txn(%s) = %+v, want %+v", tc.name, after, before)
			}
		})
	}

	t.Run("every failure reported", func(t *testing.T) {
		t.Parallel()
		db := txnFixture(t)
		tx := db.Txn(true)
		defer tx.Abort()
		_, errs := Txn(tx, 20, at(0), []*TxnOp{
			{Verb: VerbGet, Key: "x1"}, {Verb: VerbGet, Key: "b"}, {Verb: VerbGet, Key: "x2"},
		})
		if len(errs) != 2 || errs[0].OpIndex != 0 || errs[1].OpIndex != 2 {
			t.Errorf("Txn(two failing gets) errors = %+v, want OpIndex 0 and 2", errs)
		}
	})

	t.Run("lock delay", func(t *testing.T) {
		t.Parallel()
		db := newDB(t)
		createSession(t, db, 1, session("s1", "n1", 10*time.Second, ""))
		createSession(t, db, 2, session("s2", "n1", 0, ""))
		lock(t, db, 10, at(0), "k", "s1")
		apply(t, db, func(tx *memdb.Txn) error { return SessionDestroy(tx, 11, at(0), "s1") })
		tx := db.Txn(true)
		defer tx.Abort()
		_, errs := Txn(tx, 20, at(time.Second), []*TxnOp{{Verb: VerbLock, Key: "k", Session: "s2"}})
		want := []*TxnError{{OpIndex: 0, What: `failed to lock key "k" due to lock delay`}}
		if !reflect.DeepEqual(errs, want) {
			t.Errorf("Txn(lock during delay) errors = %+v, want %+v", errs, want)
		}
	})
}

// dump reads every kvstore row, for comparing states.
func dump(t *testing.T, db *memdb.MemDB) map[string]any {
	t.Helper()
	tx := db.Txn(false)
	out := map[string]any{}
	for _, table := range []string{tableLocks, tableTombstones, tableSessions, tableLockDelays, tableIndex} {
		rows, err := collect[any](tx, table, "id")
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		out[table] = rows
	}
	_, entries, err := KVList(tx, nil, "")
	if err != nil {
		t.Fatalf("dump entries: %v", err)
	}
	var rows []any
	for _, e := range entries {
		rows = append(rows, e)
	}
	out[tableKV] = rows
	return out
}

func TestTxnReadOnly(t *testing.T) {
	t.Parallel()
	db := txnFixture(t)
	ops := []*TxnOp{{Verb: VerbGet, Key: "b"}, {Verb: VerbGetTree, Key: "dir/"}, {Verb: VerbCheckIndex, Key: "b", Index: 11}}
	if !TxnReadOnly(ops) {
		t.Errorf("TxnReadOnly(gets) = false, want true")
	}
	if TxnReadOnly(append(ops, &TxnOp{Verb: VerbDelete, Key: "b"})) {
		t.Errorf("TxnReadOnly(gets + delete) = true, want false")
	}
	results, errs := Txn(db.Txn(false), 0, time.Time{}, ops)
	if len(errs) != 0 || len(results) != 4 || string(results[0].KV.Value) != "vb" {
		t.Errorf("Txn(reads) on a read txn = %+v, %+v, want 4 results, first with value vb", results, errs)
	}
}

func TestValidateTxn(t *testing.T) {
	t.Parallel()
	n := func(count int) []*TxnOp {
		ops := make([]*TxnOp, count)
		for i := range ops {
			ops[i] = &TxnOp{Verb: VerbSet, Key: fmt.Sprintf("k%d", i)}
		}
		return ops
	}
	tests := []struct {
		name string
		ops  []*TxnOp
		want error
	}{
		{"empty", nil, nil},
		{"64 ops", n(64), nil},
		{"65 ops", n(65), ErrTooManyOps},
		{"unknown verb", []*TxnOp{{Verb: "frob", Key: "k"}}, ErrInvalidTxn},
		{"empty verb", []*TxnOp{{Key: "k"}}, ErrInvalidTxn},
		{"nil op", []*TxnOp{nil}, ErrInvalidTxn},
		{"set without key", []*TxnOp{{Verb: VerbSet}}, ErrInvalidTxn},
		{"delete-tree without key", []*TxnOp{{Verb: VerbDeleteTree}}, nil},
		{"get-tree without key", []*TxnOp{{Verb: VerbGetTree}}, nil},
		{"value too large", []*TxnOp{{Verb: VerbSet, Key: "k", Value: make([]byte, MaxValueSize+1)}}, ErrValueTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateTxn(tc.ops)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("ValidateTxn(%s) = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
	for _, v := range []Verb{VerbSet, VerbCAS, VerbLock, VerbUnlock, VerbGet, VerbGetOrEmpty, VerbGetTree,
		VerbCheckIndex, VerbCheckSession, VerbCheckNotExists, VerbDelete, VerbDeleteTree, VerbDeleteCAS} {
		if err := ValidateTxn([]*TxnOp{{Verb: v, Key: "k"}}); err != nil {
			t.Errorf("ValidateTxn(%q) = %v, want nil", v, err)
		}
	}
}
