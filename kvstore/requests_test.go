package kvstore

import (
	"errors"
	"testing"
)

// TestKVApply: each write verb of a KVRequest does what it does in a
// transaction, with a refusal (stale CAS, lock held by another session) an
// outcome of false rather than an error, and an unknown verb an error.
func TestKVApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		req     KVRequest
		wantOK  bool
		wantErr error
		want    string // the value of key k after it; "" when absent
	}{
		{"set", KVRequest{Op: VerbSet, Key: "k", Value: []byte("new")}, true, nil, "new"},
		{"cas at the current index", KVRequest{Op: VerbCAS, Key: "k", Value: []byte("new"), Index: 10}, true, nil, "new"},
		{"cas at a stale index", KVRequest{Op: VerbCAS, Key: "k", Value: []byte("new"), Index: 9}, false, nil, "old"},
		{"lock", KVRequest{Op: VerbLock, Key: "k", Value: []byte("new"), Session: "s1"}, true, nil, "new"},
		{"unlock not held", KVRequest{Op: VerbUnlock, Key: "k", Value: []byte("new"), Session: "s1"}, false, nil, "old"},
		{"delete", KVRequest{Op: VerbDelete, Key: "k"}, true, nil, ""},
		{"delete-cas at a stale index", KVRequest{Op: VerbDeleteCAS, Key: "k", Index: 9}, false, nil, "old"},
		{"delete-tree", KVRequest{Op: VerbDeleteTree, Key: ""}, true, nil, ""},
		{"a read verb", KVRequest{Op: VerbGet, Key: "k"}, false, ErrInvalidKey, "old"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			set(t, db, 10, "k", "old")
			createSession(t, db, 11, session("s1", "n1", 0, ""))
			tx := db.Txn(true)
			ok, err := KVApply(tx, 20, &tc.req)
			if !errors.Is(err, tc.wantErr) || ok != tc.wantOK {
				tx.Abort()
				t.Fatalf("KVApply(%+v) = %v, %v; want %v, %v", tc.req, ok, err, tc.wantOK, tc.wantErr)
			}
			tx.Commit()
			var got string
			if _, e := get(t, db, "k"); e != nil {
				got = string(e.Value)
			}
			if got != tc.want {
				t.Errorf("after KVApply(%+v) k = %q, want %q", tc.req, got, tc.want)
			}
		})
	}
}
