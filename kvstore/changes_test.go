package kvstore

import (
	"reflect"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

func changedKeys(es []*DirEntry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Key)
	}
	return out
}

func TestKVChanges(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	set(t, db, 10, "g/c", "1")
	set(t, db, 11, "g/b", "2")
	set(t, db, 12, "other", "x")
	apply(t, db, func(tx *memdb.Txn) error { return KVDelete(tx, 13, "g/b") })
	set(t, db, 14, "g/a", "3")

	tests := []struct {
		name     string
		since    uint64
		wantKeys []string // in index order
		wantDel  []Deletion
		wantFull []string
	}{
		{"from scratch is full", 0, []string{"g/c", "g/a"}, []Deletion{}, []string{"g/a", "g/c"}},
		{"since 10", 10, []string{"g/a"}, []Deletion{{Key: "g/b", Index: 13}}, nil},
		{"since 13", 13, []string{"g/a"}, []Deletion{}, nil},
		{"since 14", 14, []string{}, []Deletion{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tx := db.Txn(false)
			defer tx.Abort()
			idx, ch, err := KVChanges(tx, nil, ChangesRequest{Prefix: "g/", Since: tc.since})
			if err != nil {
				t.Fatal(err)
			}
			if idx != 14 || ch.More {
				t.Errorf("KVChanges(since %d) index = %d more %v, want 14 and no more", tc.since, idx, ch.More)
			}
			if got := changedKeys(ch.Entries); !reflect.DeepEqual(got, tc.wantKeys) || ch.Full != (tc.wantFull != nil) || !reflect.DeepEqual(ch.Keys, tc.wantFull) {
				t.Errorf("KVChanges(since %d) = %v full %v keys %v, want %v keys %v", tc.since, got, ch.Full, ch.Keys, tc.wantKeys, tc.wantFull)
			}
			if !reflect.DeepEqual(ch.Deleted, tc.wantDel) {
				t.Errorf("KVChanges(since %d) deleted = %v, want %v", tc.since, ch.Deleted, tc.wantDel)
			}
		})
	}

	// Once the tombstone of g/b is reaped, a reader since 10 cannot tell
	// what was deleted: it gets every key, and the entries changed since.
	apply(t, db, func(tx *memdb.Txn) error { return KVReapTombstones(tx, 15, 13) })
	tx := db.Txn(false)
	defer tx.Abort()
	_, ch, err := KVChanges(tx, nil, ChangesRequest{Prefix: "g/", Since: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Full || !reflect.DeepEqual(ch.Keys, []string{"g/a", "g/c"}) || !reflect.DeepEqual(changedKeys(ch.Entries), []string{"g/a"}) {
		t.Errorf("KVChanges(since 10) after reap = %v full %v keys %v, want [g/a] full with keys [g/a g/c]", changedKeys(ch.Entries), ch.Full, ch.Keys)
	}
	if _, ch, _ = KVChanges(tx, nil, ChangesRequest{Prefix: "g/", Since: 13}); ch.Full {
		t.Errorf("KVChanges(since 13) after reaping up to 13 is full, want incremental")
	}
}

// TestKVChangesMaxBytes: a bounded answer stops at an index boundary,
// says there is more, and answers the index it is complete up to; the
// changes of one index are never split.
func TestKVChangesMaxBytes(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	set(t, db, 10, "g/a", "1234567890")      // 13 bytes with its key
	apply(t, db, func(tx *memdb.Txn) error { // two keys at one index
		if err := KVSet(tx, 11, &DirEntry{Key: "g/b", Value: []byte("1234567890")}); err != nil {
			return err
		}
		return KVSet(tx, 11, &DirEntry{Key: "g/c", Value: []byte("1234567890")})
	})
	apply(t, db, func(tx *memdb.Txn) error { return KVDelete(tx, 12, "g/a") })
	set(t, db, 13, "g/d", "1234567890")

	tests := []struct {
		name     string
		since    uint64
		maxBytes int
		wantIdx  uint64
		wantKeys []string
		wantDel  int
		wantMore bool
	}{
		{"unbounded", 9, 0, 13, []string{"g/b", "g/c", "g/d"}, 1, false},
		{"an index is never split", 9, 13, 11, []string{"g/b", "g/c"}, 0, true},
		{"up to the deletion", 9, 29, 12, []string{"g/b", "g/c"}, 1, true},
		{"all fits", 9, 1000, 13, []string{"g/b", "g/c", "g/d"}, 1, false},
		{"a deletion first", 11, 1, 12, []string{}, 1, true},
		{"the last index", 12, 1, 13, []string{"g/d"}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tx := db.Txn(false)
			defer tx.Abort()
			idx, ch, err := KVChanges(tx, nil, ChangesRequest{Prefix: "g/", Since: tc.since, MaxBytes: tc.maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			if got := changedKeys(ch.Entries); idx != tc.wantIdx || ch.More != tc.wantMore || !reflect.DeepEqual(got, tc.wantKeys) || len(ch.Deleted) != tc.wantDel {
				t.Errorf("KVChanges(since %d, max %d) = index %d more %v %v deleted %v; want index %d more %v %v and %d deleted",
					tc.since, tc.maxBytes, idx, ch.More, got, ch.Deleted, tc.wantIdx, tc.wantMore, tc.wantKeys, tc.wantDel)
			}
		})
	}
}
