package kvstore

import (
	"errors"
	"reflect"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

func TestLockUnlock(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	createSession(t, db, 1, session("s1", "n1", 0, ""))
	createSession(t, db, 2, session("s2", "n1", 0, ""))
	set(t, db, 3, "plain", "v")

	// Steps run in order on one store; each says what the key looks like
	// after it.
	steps := []struct {
		name        string
		op          func(tx *memdb.Txn) (bool, error)
		wantOK      bool
		wantSession string
		wantLock    uint64
		wantValue   string
	}{
		{"s1 acquires new key", lockOp(10, "k", "s1", "a"), true, "s1", 1, "a"},
		{"s1 acquires again", lockOp(11, "k", "s1", "b"), true, "s1", 1, "b"},
		{"s2 cannot acquire", lockOp(12, "k", "s2", "c"), false, "s1", 1, "b"},
		{"s2 cannot release", unlockOp(13, "k", "s2", "d"), false, "s1", 1, "b"},
		{"s1 releases with a value", unlockOp(14, "k", "s1", "e"), true, "", 1, "e"},
		{"s1 cannot release twice", unlockOp(15, "k", "s1", "f"), false, "", 1, "e"},
		{"s2 acquires", lockOp(16, "k", "s2", "g"), true, "s2", 2, "g"},
		{"plain set keeps holder", func(tx *memdb.Txn) (bool, error) {
			return true, KVSet(tx, 17, &DirEntry{Key: "k", Value: []byte("h")})
		}, true, "s2", 2, "h"},
		{"cas keeps holder", func(tx *memdb.Txn) (bool, error) {
			return KVSetCAS(tx, 18, &DirEntry{Key: "k", Value: []byte("i"), ModifyIndex: 17})
		}, true, "s2", 2, "i"},
		{"s2 releases", unlockOp(19, "k", "s2", "i"), true, "", 2, "i"},
		{"s1 acquires again", lockOp(20, "k", "s1", "j"), true, "s1", 3, "j"},
	}
	for _, st := range steps {
		if ok := applyOK(t, db, st.op); ok != st.wantOK {
			t.Errorf("%s = %v, want %v", st.name, ok, st.wantOK)
		}
		_, e := get(t, db, "k")
		if e == nil || e.Session != st.wantSession || e.LockIndex != st.wantLock || string(e.Value) != st.wantValue {
			t.Errorf("after %s: KVGet(k) = %+v, want Session %q LockIndex %d Value %q", st.name, e, st.wantSession, st.wantLock, st.wantValue)
		}
	}
	if ok := applyOK(t, db, lockOp(30, "plain", "s1", "x")); !ok {
		t.Errorf("lock of an unheld existing key = false, want true")
	}
	if _, e := get(t, db, "plain"); e.LockIndex != 1 || e.CreateIndex != 3 {
		t.Errorf("KVGet(plain) after lock = %+v, want LockIndex 1 CreateIndex 3", e)
	}
	if ok := applyOK(t, db, unlockOp(31, "absent", "s1", "x")); ok {
		t.Errorf("unlock of an absent key = true, want false")
	}
}

func lockOp(idx uint64, key, sess, value string) func(tx *memdb.Txn) (bool, error) {
	return func(tx *memdb.Txn) (bool, error) {
		return KVLock(tx, idx, at(0), &DirEntry{Key: key, Session: sess, Value: []byte(value)})
	}
}

func unlockOp(idx uint64, key, sess, value string) func(tx *memdb.Txn) (bool, error) {
	return func(tx *memdb.Txn) (bool, error) {
		return KVUnlock(tx, idx, &DirEntry{Key: key, Session: sess, Value: []byte(value)})
	}
}

func TestSessionDestroyBehavior(t *testing.T) {
	t.Parallel()
	tests := []struct {
		behavior string
		wantKeys []string
	}{
		{BehaviorRelease, []string{"lock/a", "lock/b", "lock/other"}},
		{"", []string{"lock/a", "lock/b", "lock/other"}},
		{BehaviorDelete, []string{"lock/other"}},
	}
	for _, tc := range tests {
		t.Run("behavior="+tc.behavior, func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			createSession(t, db, 1, session("s1", "n1", 0, tc.behavior))
			createSession(t, db, 2, session("s2", "n1", 0, ""))
			lock(t, db, 10, at(0), "lock/a", "s1")
			lock(t, db, 11, at(0), "lock/b", "s1")
			lock(t, db, 12, at(0), "lock/other", "s2")
			apply(t, db, func(tx *memdb.Txn) error { return SessionDestroy(tx, 20, at(0), "s1") })

			idx, keys := list(t, db, "lock/")
			if !reflect.DeepEqual(keys, tc.wantKeys) {
				t.Errorf("KVList(lock/) after destroy = %q, want %q", keys, tc.wantKeys)
			}
			if idx != 20 {
				t.Errorf("KVList(lock/) index after destroy = %d, want 20", idx)
			}
			for _, k := range keys {
				_, e := get(t, db, k)
				wantSession := ""
				if k == "lock/other" {
					wantSession = "s2"
				}
				if e.Session != wantSession || e.LockIndex != 1 {
					t.Errorf("KVGet(%q) after destroy = %+v, want Session %q LockIndex 1", k, e, wantSession)
				}
			}
			if _, s, _ := SessionGet(db.Txn(false), nil, "s1"); s != nil {
				t.Errorf("SessionGet(s1) after destroy = %+v, want nil", s)
			}
			apply(t, db, func(tx *memdb.Txn) error { return SessionDestroy(tx, 21, at(0), "s1") })
		})
	}
}

func TestLockDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		delay  time.Duration
		lockAt time.Duration
		want   bool
	}{
		{"during delay", 10 * time.Second, 5 * time.Second, false},
		{"just before end", 10 * time.Second, 10*time.Second - 1, false},
		{"at end", 10 * time.Second, 10 * time.Second, true},
		{"no delay", 0, 0, true},
		{"capped at MaxLockDelay", 5 * time.Minute, MaxLockDelay, true},
		{"capped, still delayed", 5 * time.Minute, MaxLockDelay - time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			createSession(t, db, 1, session("s1", "n1", tc.delay, ""))
			createSession(t, db, 2, session("s2", "n1", 0, ""))
			lock(t, db, 10, at(0), "k", "s1")
			apply(t, db, func(tx *memdb.Txn) error { return SessionDestroy(tx, 11, at(0), "s1") })
			if got := lock(t, db, 12, at(tc.lockAt), "k", "s2"); got != tc.want {
				t.Errorf("KVLock(k, s2) at +%v after a %v delay = %v, want %v", tc.lockAt, tc.delay, got, tc.want)
			}
		})
	}

	t.Run("expiry and reap", func(t *testing.T) {
		t.Parallel()
		db := newDB(t)
		createSession(t, db, 1, session("s1", "n1", 10*time.Second, ""))
		lock(t, db, 10, at(0), "k", "s1")
		apply(t, db, func(tx *memdb.Txn) error { return SessionDestroy(tx, 11, at(time.Second), "s1") })
		until, err := KVLockDelay(db.Txn(false), "k")
		if want := at(11 * time.Second); err != nil || !until.Equal(want) {
			t.Errorf("KVLockDelay(k) = %v, %v, want %v", until, err, want)
		}
		if until, _ := KVLockDelay(db.Txn(false), "other"); !until.IsZero() {
			t.Errorf("KVLockDelay(other) = %v, want zero", until)
		}
		apply(t, db, func(tx *memdb.Txn) error { return ReapLockDelays(tx, at(10*time.Second)) })
		if until, _ := KVLockDelay(db.Txn(false), "k"); until.IsZero() {
			t.Errorf("KVLockDelay(k) after an early reap = zero, want it kept")
		}
		apply(t, db, func(tx *memdb.Txn) error { return ReapLockDelays(tx, at(11*time.Second)) })
		if until, _ := KVLockDelay(db.Txn(false), "k"); !until.IsZero() {
			t.Errorf("KVLockDelay(k) after reap = %v, want zero", until)
		}
	})

	t.Run("rolled back with the txn", func(t *testing.T) {
		t.Parallel()
		db := newDB(t)
		createSession(t, db, 1, session("s1", "n1", 10*time.Second, ""))
		createSession(t, db, 2, session("s2", "n1", 0, ""))
		lock(t, db, 10, at(0), "k", "s1")
		tx := db.Txn(true)
		if err := SessionDestroy(tx, 11, at(0), "s1"); err != nil {
			t.Fatalf("SessionDestroy: %v", err)
		}
		tx.Abort()
		if until, _ := KVLockDelay(db.Txn(false), "k"); !until.IsZero() {
			t.Errorf("KVLockDelay(k) after an aborted destroy = %v, want zero", until)
		}
	})
}

func TestSessionCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    *Session
		want error
	}{
		{"ok", session("s2", "n1", 0, ""), nil},
		{"duplicate", session("s1", "n2", 0, ""), ErrSessionExists},
		{"no ID", session("", "n1", 0, ""), ErrInvalidSession},
		{"no node", session("s2", "", 0, ""), ErrInvalidSession},
		{"bad behavior", session("s2", "n1", 0, "keep"), ErrInvalidSession},
		{"nil", nil, ErrInvalidSession},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			createSession(t, db, 1, session("s1", "n1", 0, ""))
			tx := db.Txn(true)
			defer tx.Abort()
			err := SessionCreate(tx, 2, tc.s)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("SessionCreate(%+v) = %v, want %v", tc.s, err, tc.want)
			}
		})
	}
}

func TestSessionReads(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	in := &Session{
		ID: "s1", Name: "lock", Node: "Node1", LockDelay: 15 * time.Second, TTL: "30s",
		Checks: []string{"legacy"}, NodeChecks: []string{"serfHealth"},
		ServiceChecks: []ServiceCheck{{ID: "web-http"}},
	}
	createSession(t, db, 10, in)
	in.NodeChecks[0] = "changed" // the store must hold its own copy
	createSession(t, db, 11, session("s2", "node1", 0, BehaviorDelete))
	createSession(t, db, 12, session("s3", "n2", 0, ""))
	tx := db.Txn(false)

	idx, got, err := SessionGet(tx, nil, "s1")
	want := &Session{
		ID: "s1", Name: "lock", Node: "Node1", LockDelay: 15 * time.Second, TTL: "30s", Behavior: BehaviorRelease,
		Checks: []string{"legacy"}, NodeChecks: []string{"serfHealth"},
		ServiceChecks: []ServiceCheck{{ID: "web-http"}}, CreateIndex: 10, ModifyIndex: 10,
	}
	if err != nil || idx != 12 || !reflect.DeepEqual(got, want) {
		t.Errorf("SessionGet(s1) = %d, %+v, %v, want 12, %+v", idx, got, err, want)
	}
	if idx, got, err := SessionGet(tx, nil, "nope"); err != nil || idx != 12 || got != nil {
		t.Errorf("SessionGet(nope) = %d, %+v, %v, want 12, nil", idx, got, err)
	}

	ids := func(ss []*Session) []string {
		out := []string{}
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	reads := []struct {
		name string
		read func() (uint64, []*Session, error)
		want []string
	}{
		{"SessionList", func() (uint64, []*Session, error) { return SessionList(tx, nil) }, []string{"s1", "s2", "s3"}},
		{"NodeSessions(NODE1)", func() (uint64, []*Session, error) { return NodeSessions(tx, nil, "NODE1") }, []string{"s1", "s2"}},
		{"NodeSessions(n9)", func() (uint64, []*Session, error) { return NodeSessions(tx, nil, "n9") }, []string{}},
		{"SessionsForNode(node1)", func() (uint64, []*Session, error) { s, err := SessionsForNode(tx, "node1"); return 12, s, err }, []string{"s1", "s2"}},
		{"SessionsForCheck(node1, serfhealth)", func() (uint64, []*Session, error) {
			s, err := SessionsForCheck(tx, "node1", "serfhealth")
			return 12, s, err
		}, []string{"s1", "s2"}},
		{"SessionsForCheck(node1, legacy)", func() (uint64, []*Session, error) {
			s, err := SessionsForCheck(tx, "node1", "legacy")
			return 12, s, err
		}, []string{"s1"}},
		{"SessionsForCheck(Node1, web-http)", func() (uint64, []*Session, error) {
			s, err := SessionsForCheck(tx, "Node1", "web-http")
			return 12, s, err
		}, []string{"s1"}},
		{"SessionsForCheck(n2, web-http)", func() (uint64, []*Session, error) {
			s, err := SessionsForCheck(tx, "n2", "web-http")
			return 12, s, err
		}, []string{}},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			idx, ss, err := r.read()
			if got := ids(ss); err != nil || idx != 12 || !reflect.DeepEqual(got, r.want) {
				t.Errorf("%s = %d, %q, %v, want 12, %q", r.name, idx, got, err, r.want)
			}
		})
	}
}

func TestValidateSession(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ttl   string
		delay time.Duration
		ok    bool
	}{
		{"", 0, true},
		{"0s", 0, true},
		{"10s", 0, true},
		{"86400s", 0, true},
		{"9s", 0, false},
		{"86401s", 0, false},
		{"ten", 0, false},
		{"30s", -time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.ttl, func(t *testing.T) {
			s := session("s", "n", tc.delay, "")
			s.TTL = tc.ttl
			err := ValidateSession(s)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidSession)) {
				t.Errorf("ValidateSession(TTL %q, LockDelay %v) = %v, want ok %v", tc.ttl, tc.delay, err, tc.ok)
			}
		})
	}
}
