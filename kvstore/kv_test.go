package kvstore

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

func TestKVSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, db *memdb.MemDB)
		entry *DirEntry
		want  *DirEntry
	}{
		{
			name:  "create",
			entry: &DirEntry{Key: "a", Value: []byte("1"), Flags: 7},
			want:  &DirEntry{Key: "a", Value: []byte("1"), Flags: 7, CreateIndex: 20, ModifyIndex: 20},
		},
		{
			name:  "update keeps create index",
			setup: func(t *testing.T, db *memdb.MemDB) { set(t, db, 10, "a", "1") },
			entry: &DirEntry{Key: "a", Value: []byte("2")},
			want:  &DirEntry{Key: "a", Value: []byte("2"), CreateIndex: 10, ModifyIndex: 20},
		},
		{
			name:  "unchanged moves no index",
			setup: func(t *testing.T, db *memdb.MemDB) { set(t, db, 10, "a", "1") },
			entry: &DirEntry{Key: "a", Value: []byte("1")},
			want:  &DirEntry{Key: "a", Value: []byte("1"), CreateIndex: 10, ModifyIndex: 10},
		},
		{
			name: "session and lock index ignored and kept",
			setup: func(t *testing.T, db *memdb.MemDB) {
				createSession(t, db, 5, session("s1", "n1", 0, ""))
				lock(t, db, 10, at(0), "a", "s1")
			},
			entry: &DirEntry{Key: "a", Value: []byte("2"), Session: "other", LockIndex: 99},
			want:  &DirEntry{Key: "a", Value: []byte("2"), Session: "s1", LockIndex: 1, CreateIndex: 10, ModifyIndex: 20},
		},
		{
			name:  "new key drops caller's session",
			entry: &DirEntry{Key: "a", Value: []byte("1"), Session: "s1", LockIndex: 3},
			want:  &DirEntry{Key: "a", Value: []byte("1"), CreateIndex: 20, ModifyIndex: 20},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			if tc.setup != nil {
				tc.setup(t, db)
			}
			apply(t, db, func(tx *memdb.Txn) error { return KVSet(tx, 20, tc.entry) })
			tc.entry.Value[0] = 'X' // the store must hold its own copy
			idx, got := get(t, db, tc.entry.Key)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("KVGet(%q) = %+v, want %+v", tc.entry.Key, got, tc.want)
			}
			if idx != tc.want.ModifyIndex {
				t.Errorf("KVGet(%q) index = %d, want %d", tc.entry.Key, idx, tc.want.ModifyIndex)
			}
		})
	}
}

func TestKVWriteValidation(t *testing.T) {
	t.Parallel()
	big := make([]byte, MaxValueSize+1)
	tests := []struct {
		name  string
		write func(tx *memdb.Txn) error
		want  error
	}{
		{"set empty key", func(tx *memdb.Txn) error { return KVSet(tx, 1, &DirEntry{}) }, ErrInvalidKey},
		{"set nil entry", func(tx *memdb.Txn) error { return KVSet(tx, 1, nil) }, ErrInvalidKey},
		{"set too large", func(tx *memdb.Txn) error { return KVSet(tx, 1, &DirEntry{Key: "a", Value: big}) }, ErrValueTooLarge},
		{"set max size", func(tx *memdb.Txn) error { return KVSet(tx, 1, &DirEntry{Key: "a", Value: big[:MaxValueSize]}) }, nil},
		{"cas empty key", func(tx *memdb.Txn) error { _, err := KVSetCAS(tx, 1, &DirEntry{}); return err }, ErrInvalidKey},
		{"delete empty key", func(tx *memdb.Txn) error { return KVDelete(tx, 1, "") }, ErrInvalidKey},
		{"delete-cas empty key", func(tx *memdb.Txn) error { _, err := KVDeleteCAS(tx, 1, 0, ""); return err }, ErrInvalidKey},
		{"delete tree empty prefix", func(tx *memdb.Txn) error { return KVDeleteTree(tx, 1, "") }, nil},
		{"lock no session", func(tx *memdb.Txn) error { _, err := KVLock(tx, 1, at(0), &DirEntry{Key: "a"}); return err }, ErrSessionNotFound},
		{"lock unknown session", func(tx *memdb.Txn) error {
			_, err := KVLock(tx, 1, at(0), &DirEntry{Key: "a", Session: "nope"})
			return err
		}, ErrSessionNotFound},
		{"unlock no session", func(tx *memdb.Txn) error { _, err := KVUnlock(tx, 1, &DirEntry{Key: "a"}); return err }, ErrSessionNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tx := newDB(t).Txn(true)
			defer tx.Abort()
			err := tc.write(tx)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("%s = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
	if !strings.Contains(ErrValueTooLarge.Error(), "too large") {
		t.Errorf("ErrValueTooLarge = %q, want it to contain %q (Vault matches it)", ErrValueTooLarge, "too large")
	}
}

func TestKVSetCAS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		exists    bool
		cas       uint64
		wantOK    bool
		wantValue string
	}{
		{"create only, absent", false, 0, true, "new"},
		{"create only, present", true, 0, false, "old"},
		{"by index, match", true, 10, true, "new"},
		{"by index, stale", true, 9, false, "old"},
		{"by index, absent", false, 10, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			if tc.exists {
				set(t, db, 10, "k", "old")
			}
			ok := applyOK(t, db, func(tx *memdb.Txn) (bool, error) {
				return KVSetCAS(tx, 20, &DirEntry{Key: "k", Value: []byte("new"), ModifyIndex: tc.cas})
			})
			if ok != tc.wantOK {
				t.Errorf("KVSetCAS(k, cas=%d) = %v, want %v", tc.cas, ok, tc.wantOK)
			}
			_, e := get(t, db, "k")
			var got string
			if e != nil {
				got = string(e.Value)
			}
			if got != tc.wantValue {
				t.Errorf("KVGet(k) value = %q, want %q", got, tc.wantValue)
			}
		})
	}
}

func TestKVDelete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		del      func(tx *memdb.Txn) (bool, error)
		wantOK   bool
		wantKeys []string
	}{
		{"delete", func(tx *memdb.Txn) (bool, error) { return true, KVDelete(tx, 20, "a/b") }, true, []string{"a", "a/c", "ab"}},
		{"delete absent", func(tx *memdb.Txn) (bool, error) { return true, KVDelete(tx, 20, "zz") }, true, []string{"a", "a/b", "a/c", "ab"}},
		{"delete-cas match", func(tx *memdb.Txn) (bool, error) { return KVDeleteCAS(tx, 20, 11, "a/b") }, true, []string{"a", "a/c", "ab"}},
		{"delete-cas stale", func(tx *memdb.Txn) (bool, error) { return KVDeleteCAS(tx, 20, 10, "a/b") }, false, []string{"a", "a/b", "a/c", "ab"}},
		{"delete-cas absent", func(tx *memdb.Txn) (bool, error) { return KVDeleteCAS(tx, 20, 3, "zz") }, true, []string{"a", "a/b", "a/c", "ab"}},
		{"delete tree", func(tx *memdb.Txn) (bool, error) { return true, KVDeleteTree(tx, 20, "a/") }, true, []string{"a", "ab"}},
		{"delete tree no slash", func(tx *memdb.Txn) (bool, error) { return true, KVDeleteTree(tx, 20, "a") }, true, []string{}},
		{"delete tree all", func(tx *memdb.Txn) (bool, error) { return true, KVDeleteTree(tx, 20, "") }, true, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			for i, k := range []string{"a", "a/b", "a/c", "ab"} {
				set(t, db, uint64(10+i), k, k)
			}
			if ok := applyOK(t, db, tc.del); ok != tc.wantOK {
				t.Errorf("%s = %v, want %v", tc.name, ok, tc.wantOK)
			}
			if _, keys := list(t, db, ""); !reflect.DeepEqual(keys, tc.wantKeys) {
				t.Errorf("KVList(\"\") after %s = %q, want %q", tc.name, keys, tc.wantKeys)
			}
		})
	}
}

func TestKVGetIndex(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	tests := []struct {
		key  string
		want uint64
	}{
		{"a", 10},
		{"b", 11},
		{"missing", 12}, // the table's index, moved by the delete of c
		{"c", 12},
	}
	set(t, db, 10, "a", "1")
	set(t, db, 11, "b", "1")
	set(t, db, 11, "c", "1")
	apply(t, db, func(tx *memdb.Txn) error { return KVDelete(tx, 12, "c") })
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if idx, _ := get(t, db, tc.key); idx != tc.want {
				t.Errorf("KVGet(%q) index = %d, want %d", tc.key, idx, tc.want)
			}
		})
	}
	if idx, e := get(t, newDB(t), "x"); idx != 1 || e != nil {
		t.Errorf("KVGet(x) on an empty store = %d, %v, want 1, nil", idx, e)
	}
}

func TestKVListIndexTombstones(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	set(t, db, 10, "foo/a", "1")
	set(t, db, 11, "foo/b", "1")
	set(t, db, 12, "bar", "1")
	apply(t, db, func(tx *memdb.Txn) error { return KVDelete(tx, 13, "foo/b") })
	set(t, db, 14, "baz/x", "1")
	apply(t, db, func(tx *memdb.Txn) error { return KVDelete(tx, 15, "baz/x") })

	check := func(stage string, want map[string]uint64) {
		t.Helper()
		for prefix, w := range want {
			if idx, _ := list(t, db, prefix); idx != w {
				t.Errorf("%s: KVList(%q) index = %d, want %d", stage, prefix, idx, w)
			}
		}
	}
	check("before reap", map[string]uint64{
		"foo/": 13, // the delete of foo/b, not foo/a's 10
		"bar":  12,
		"baz/": 15, // only a tombstone left under it
		"":     15,
		"nope": 15, // nothing ever under it: the table index
	})
	apply(t, db, func(tx *memdb.Txn) error { return KVReapTombstones(tx, 16, 13) })
	check("after reap", map[string]uint64{
		"foo/": 13, // the reap watermark keeps it from going back to 10
		"baz/": 15, // its tombstone was newer than upTo
		"":     15,
	})
	apply(t, db, func(tx *memdb.Txn) error { return KVReapTombstones(tx, 17, 100) })
	check("after full reap", map[string]uint64{
		"foo/": 15,
		"baz/": 15,
	})
	tx := db.Txn(false)
	if n, err := collect[*tombstone](tx, tableTombstones, "id"); err != nil || len(n) != 0 {
		t.Errorf("tombstones after full reap = %v, %v, want none", n, err)
	}
}

func TestKVKeys(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	for i, k := range []string{"foo/a", "foo/b/c", "foo/b/d", "foo/e/", "foo", "foo-x/y", "bar::a::b", "bar::c"} {
		set(t, db, uint64(10+i), k, "v")
	}
	tests := []struct {
		prefix, sep string
		want        []string
	}{
		{"foo/", "/", []string{"foo/a", "foo/b/", "foo/e/"}},
		{"foo/", "", []string{"foo/a", "foo/b/c", "foo/b/d", "foo/e/"}},
		{"foo", "/", []string{"foo", "foo-x/", "foo/"}},
		{"", "/", []string{"bar::a::b", "bar::c", "foo", "foo-x/", "foo/"}},
		{"bar", "::", []string{"bar::"}},
		{"bar::", "::", []string{"bar::a::", "bar::c"}},
		{"foo/b/c", "/", []string{"foo/b/c"}},
		{"nope", "/", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.prefix+"|"+tc.sep, func(t *testing.T) {
			_, got, err := KVKeys(db.Txn(false), nil, tc.prefix, tc.sep)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("KVKeys(%q, %q) = %q, %v, want %q", tc.prefix, tc.sep, got, err, tc.want)
			}
		})
	}
	if idx, _, _ := KVKeys(db.Txn(false), nil, "foo/b", "/"); idx != 12 {
		t.Errorf("KVKeys(foo/b) index = %d, want 12", idx)
	}
}

func TestWatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		watch func(tx *memdb.Txn, ws memdb.WatchSet) error
		write func(tx *memdb.Txn) error
		want  bool
	}{
		{"get a, write a", watchGet("a"), writeKey("a"), true},
		{"get a, write b", watchGet("a"), writeKey("b"), false},
		{"get a, write ab", watchGet("a"), writeKey("ab"), false},
		{"get a, delete a", watchGet("a"), func(tx *memdb.Txn) error { return KVDelete(tx, 20, "a") }, true},
		{"get a, unchanged set of a", watchGet("a"), func(tx *memdb.Txn) error {
			return KVSet(tx, 20, &DirEntry{Key: "a", Value: []byte("v")})
		}, false},
		{"list dir/, write dir/x", watchList("dir/"), writeKey("dir/x"), true},
		{"list dir/, delete dir/y", watchList("dir/"), func(tx *memdb.Txn) error { return KVDelete(tx, 20, "dir/y") }, true},
		{"list dir/, write other", watchList("dir/"), writeKey("other"), false},
		{"keys dir/, write dir/x", func(tx *memdb.Txn, ws memdb.WatchSet) error {
			_, _, err := KVKeys(tx, ws, "dir/", "/")
			return err
		}, writeKey("dir/x"), true},
		{"sessions, create", func(tx *memdb.Txn, ws memdb.WatchSet) error {
			_, _, err := SessionList(tx, ws)
			return err
		}, func(tx *memdb.Txn) error { return SessionCreate(tx, 20, session("s2", "n1", 0, "")) }, true},
		{"sessions, write key", func(tx *memdb.Txn, ws memdb.WatchSet) error {
			_, _, err := SessionList(tx, ws)
			return err
		}, writeKey("a"), false},
		{"session s1, destroy s1", func(tx *memdb.Txn, ws memdb.WatchSet) error {
			_, _, err := SessionGet(tx, ws, "s1")
			return err
		}, func(tx *memdb.Txn) error { return SessionDestroy(tx, 20, at(0), "s1") }, true},
		{"node n1 sessions, create on n2", func(tx *memdb.Txn, ws memdb.WatchSet) error {
			_, _, err := NodeSessions(tx, ws, "n1")
			return err
		}, func(tx *memdb.Txn) error { return SessionCreate(tx, 20, session("s2", "n2", 0, "")) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			for i, k := range []string{"a", "b", "dir/y", "other"} {
				set(t, db, uint64(10+i), k, "v")
			}
			createSession(t, db, 15, session("s1", "n1", 0, ""))
			// memdb may fire a watch when the radix tree splits a node near the
			// watched one; n2 already has a session so that creating another
			// one splits nothing on n1's path.
			createSession(t, db, 16, session("s0", "n2", 0, ""))
			ws := memdb.NewWatchSet()
			if err := tc.watch(db.Txn(false), ws); err != nil {
				t.Fatalf("read: %v", err)
			}
			if fired(ws) {
				t.Fatalf("%s: watch fired before the write", tc.name)
			}
			apply(t, db, tc.write)
			if got := fired(ws); got != tc.want {
				t.Errorf("%s: fired = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

func watchGet(key string) func(tx *memdb.Txn, ws memdb.WatchSet) error {
	return func(tx *memdb.Txn, ws memdb.WatchSet) error { _, _, err := KVGet(tx, ws, key); return err }
}

func watchList(prefix string) func(tx *memdb.Txn, ws memdb.WatchSet) error {
	return func(tx *memdb.Txn, ws memdb.WatchSet) error { _, _, err := KVList(tx, ws, prefix); return err }
}

func writeKey(key string) func(tx *memdb.Txn) error {
	return func(tx *memdb.Txn) error { return KVSet(tx, 20, &DirEntry{Key: key, Value: []byte("new")}) }
}
