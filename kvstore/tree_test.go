package kvstore

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// TestTreeVersions writes random sets and deletes in transactions, a
// quarter of them aborted, and checks that every read transaction opened
// along the way still reads the entries of its own snapshot: writes copy
// the nodes they change and never touch a committed version.
func TestTreeVersions(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]string{}
	type version struct {
		tx   *memdb.Txn
		want map[string]string
	}
	var versions []version
	idx := uint64(0)
	for range 60 {
		tx := db.Txn(true)
		next := maps.Clone(model)
		for range 1 + rng.IntN(300) {
			idx++
			key := fmt.Sprintf("k/%04d", rng.IntN(3000))
			if rng.IntN(4) == 0 {
				if err := KVDelete(tx, idx, key); err != nil {
					t.Fatalf("KVDelete(%q): %v", key, err)
				}
				delete(next, key)
				continue
			}
			value := fmt.Sprintf("v%d", idx)
			if err := KVSet(tx, idx, &DirEntry{Key: key, Value: []byte(value)}); err != nil {
				t.Fatalf("KVSet(%q): %v", key, err)
			}
			next[key] = value
		}
		if rng.IntN(4) == 0 {
			tx.Abort()
		} else {
			tx.Commit()
			model = next
		}
		versions = append(versions, version{db.Txn(false), model})
	}
	for i, v := range versions {
		_, entries, err := KVList(v.tx, nil, "")
		if err != nil {
			t.Fatalf("KVList: %v", err)
		}
		got := map[string]string{}
		var keys []string
		for _, e := range entries {
			got[e.Key] = string(e.Value)
			keys = append(keys, e.Key)
		}
		if !reflect.DeepEqual(got, v.want) {
			t.Errorf("version %d: read %d entries, want %d, or different values", i, len(got), len(v.want))
		}
		if !slices.IsSorted(keys) {
			t.Errorf("version %d: keys out of order", i)
		}
	}
}

// TestWatchAfterMissedWrite registers a watch from a snapshot older than
// a write that has already committed and notified: the read must wake at
// once, not wait for a change it already missed.
func TestWatchAfterMissedWrite(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	set(t, db, 1, "a", "1")
	old := db.Txn(false)
	set(t, db, 2, "a", "2")
	ws := memdb.NewWatchSet()
	if _, e, err := KVGet(old, ws, "a"); err != nil || string(e.Value) != "1" {
		t.Fatalf("KVGet(a) on the old snapshot = %+v, %v, want value 1", e, err)
	}
	if !fired(ws) {
		t.Errorf("watch of a from a snapshot before a notified write of a did not fire")
	}
	ws = memdb.NewWatchSet()
	if _, _, err := KVGet(db.Txn(false), ws, "a"); err != nil {
		t.Fatal(err)
	}
	if fired(ws) {
		t.Errorf("watch of a from the current snapshot fired with no write")
	}
}

// TestWatchAbortedWrite: an aborted write fires no watch and leaves the
// entries as they were.
func TestWatchAbortedWrite(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	set(t, db, 1, "dir/a", "1")
	ws := memdb.NewWatchSet()
	if _, _, err := KVList(db.Txn(false), ws, "dir/"); err != nil {
		t.Fatal(err)
	}
	tx := db.Txn(true)
	if err := KVSet(tx, 2, &DirEntry{Key: "dir/a", Value: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if err := KVDelete(tx, 2, "dir/a"); err != nil {
		t.Fatal(err)
	}
	tx.Abort()
	if fired(ws) {
		t.Errorf("aborted write fired the watch of dir/")
	}
	if _, e := get(t, db, "dir/a"); e == nil || string(e.Value) != "1" {
		t.Errorf("dir/a after an aborted write = %+v, want value 1", e)
	}
	set(t, db, 3, "dir/a", "3")
	if !fired(ws) {
		t.Errorf("committed write of dir/a did not fire the watch of dir/")
	}
}

// TestWatchGenerations registers watches that nobody gives up explicitly,
// as blocking reads do, and checks that the registry stays bounded, that
// its oldest watches are woken as it ages, and that a watch registered
// again survives.
func TestWatchGenerations(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	set(t, db, 1, "kept", "v")
	watchKey := func(key string) memdb.WatchSet {
		ws := memdb.NewWatchSet()
		if _, _, err := KVGet(db.Txn(false), ws, key); err != nil {
			t.Fatal(err)
		}
		return ws
	}
	first := watchKey("gone/first")
	kept := watchKey("kept")
	for i := range 10 * minWatchGeneration {
		watchKey(fmt.Sprintf("gone/%d", i))
		if i%(minWatchGeneration/2) == 0 {
			// A read woken by the aging registers again, as a blocking
			// query does when the index has not moved.
			if fired(kept) {
				kept = watchKey("kept")
			}
		}
	}
	tbl, err := readTable(db.Txn(false), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := tbl.watches
	w.mu.Lock()
	n := len(w.cur) + len(w.old)
	w.mu.Unlock()
	if n > 2*minWatchGeneration+2 {
		t.Errorf("registry holds %d watches after %d registrations, want at most %d", n, 10*minWatchGeneration, 2*minWatchGeneration+2)
	}
	if !fired(first) {
		t.Errorf("the oldest watch was never woken as the registry aged")
	}
	kept = watchKey("kept")
	set(t, db, 2, "kept", "changed")
	if !fired(kept) {
		t.Errorf("write of kept did not fire its watch")
	}
}

// TestWatchNoMissedWake runs blocking reads beside a writer: each read
// that sees a value short of the last one waits on its watch, which must
// fire (a missed wake would leave it waiting until the deadline).
func TestWatchNoMissedWake(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	const writes = 300
	set(t, db, 1, "dir/k", "0")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ws := memdb.NewWatchSet()
				var v string
				if r%2 == 0 {
					_, e, err := KVGet(db.Txn(false), ws, "dir/k")
					if err != nil {
						errs <- err
						return
					}
					v = string(e.Value)
				} else {
					_, es, err := KVList(db.Txn(false), ws, "dir/")
					if err != nil {
						errs <- err
						return
					}
					v = string(es[0].Value)
				}
				if v == fmt.Sprint(writes) {
					return
				}
				if ws.Watch(time.After(30 * time.Second)) {
					errs <- fmt.Errorf("reader %d: no wake after value %s", r, v)
					return
				}
			}
		}()
	}
	for i := range writes {
		set(t, db, uint64(i+2), "dir/k", fmt.Sprint(i+1))
		if i%3 == 0 {
			set(t, db, uint64(i+2), "other", fmt.Sprint(i))
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
