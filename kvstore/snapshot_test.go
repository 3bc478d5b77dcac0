package kvstore

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/go-msgpack/v2/codec"
)

// snapshotFixture holds entries, locks, sessions, tombstones, a reap
// watermark and a lock delay.
func snapshotFixture(t *testing.T) *memdb.MemDB {
	t.Helper()
	db := txnFixture(t)
	createSession(t, db, 14, &Session{ID: "s3", Node: "n2", LockDelay: 20 * time.Second, Behavior: BehaviorDelete,
		TTL: "30s", Checks: []string{"legacy"}, ServiceChecks: []ServiceCheck{{ID: "web"}}})
	lock(t, db, 15, at(0), "dir/z", "s3")
	apply(t, db, func(tx *memdb.Txn) error { return KVDelete(tx, 16, "dir/x") })
	apply(t, db, func(tx *memdb.Txn) error { return KVDelete(tx, 17, "gone") })
	set(t, db, 18, "gone", "")
	apply(t, db, func(tx *memdb.Txn) error { return KVDelete(tx, 19, "gone") })
	apply(t, db, func(tx *memdb.Txn) error { return KVReapTombstones(tx, 20, 16) })
	apply(t, db, func(tx *memdb.Txn) error { return SessionDestroy(tx, 21, at(0), "s3") })
	return db
}

func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	mh := &codec.MsgpackHandle{}
	mh.RawToString = true
	mh.WriteExt = true
	codecs := []struct {
		name string
		enc  func(*bytes.Buffer) Encoder
		dec  func(*bytes.Buffer) Decoder
	}{
		{"gob", func(b *bytes.Buffer) Encoder { return gob.NewEncoder(b) }, func(b *bytes.Buffer) Decoder { return gob.NewDecoder(b) }},
		{"json", func(b *bytes.Buffer) Encoder { return json.NewEncoder(b) }, func(b *bytes.Buffer) Decoder { return json.NewDecoder(b) }},
		{"msgpack", func(b *bytes.Buffer) Encoder { return codec.NewEncoder(b, mh) }, func(b *bytes.Buffer) Decoder { return codec.NewDecoder(b, mh) }},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src := snapshotFixture(t)
			want := dump(t, src)
			if n := len(want[tableLockDelays].([]any)); n != 1 {
				t.Fatalf("fixture has %d lock delays, want 1", n)
			}

			var buf bytes.Buffer
			enc := c.enc(&buf)
			if err := Snapshot(src.Txn(false), enc); err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if err := enc.Encode("next section"); err != nil {
				t.Fatalf("Encode trailer: %v", err)
			}
			dst := newDB(t)
			dec := c.dec(&buf)
			apply(t, dst, func(tx *memdb.Txn) error { return Restore(tx, dec) })
			var trailer string
			if err := dec.Decode(&trailer); err != nil || trailer != "next section" {
				t.Errorf("Decode after Restore = %q, %v, want %q: Restore read past its section", trailer, err, "next section")
			}
			if got := dump(t, dst); !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Errorf("Restore(Snapshot()) = %+v, want %+v", got, want)
			}
			for _, prefix := range []string{"", "dir/", "gone", "a"} {
				wi, wk := list(t, src, prefix)
				gi, gk := list(t, dst, prefix)
				if gi != wi || !reflect.DeepEqual(gk, wk) {
					t.Errorf("KVList(%q) after restore = %d, %q, want %d, %q", prefix, gi, gk, wi, wk)
				}
			}
			// The restored session indexes work.
			if ss, err := SessionsForCheck(dst.Txn(false), "n1", "serfHealth"); err != nil || len(ss) != 2 {
				t.Errorf("SessionsForCheck(n1, serfHealth) after restore = %d sessions, %v, want 2", len(ss), err)
			}
			if got := lock(t, dst, 30, at(time.Second), "dir/z", "s1"); got {
				t.Errorf("KVLock(dir/z) during the restored lock delay = true, want false")
			}
		})
	}
}

// normalize makes empty and nil byte slices and string slices compare
// equal: codecs do not all keep the difference.
func normalize(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, rows := range m {
		var norm []any
		for _, r := range rows.([]any) {
			switch v := r.(type) {
			case *DirEntry:
				c := *v
				if len(c.Value) == 0 {
					c.Value = nil
				}
				r = &c
			case *Session:
				c := v.clone()
				for _, s := range []*[]string{&c.Checks, &c.NodeChecks} {
					if len(*s) == 0 {
						*s = nil
					}
				}
				if len(c.ServiceChecks) == 0 {
					c.ServiceChecks = nil
				}
				r = c
			}
			norm = append(norm, r)
		}
		out[k] = norm
	}
	return out
}

func TestRestoreBadHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header any
	}{
		{"catalog section", map[string]any{"Format": "meridian-catalog", "Version": 1}},
		{"future version", map[string]any{"Format": "meridian-kvstore", "Version": 3}},
		{"negative count", map[string]any{"Format": "meridian-kvstore", "Version": 1, "Entries": -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := json.NewEncoder(&buf).Encode(tc.header); err != nil {
				t.Fatalf("Encode: %v", err)
			}
			tx := newDB(t).Txn(true)
			defer tx.Abort()
			if err := Restore(tx, json.NewDecoder(&buf)); !errors.Is(err, ErrBadSnapshot) {
				t.Errorf("Restore(%s) = %v, want %v", tc.name, err, ErrBadSnapshot)
			}
		})
	}
}

// TestRestoreVersion1 restores a section of version 1, which wrote each
// entry as a struct: snapshots taken before version 2 must still restore.
func TestRestoreVersion1(t *testing.T) {
	t.Parallel()
	mh := &codec.MsgpackHandle{}
	mh.RawToString = true
	mh.WriteExt = true
	entries := []*DirEntry{
		{Key: "a", Value: []byte("1"), Flags: 7, CreateIndex: 3, ModifyIndex: 4},
		{Key: "b/c", Value: []byte("22"), LockIndex: 1, Session: "s1", CreateIndex: 5, ModifyIndex: 6},
	}
	var buf bytes.Buffer
	enc := codec.NewEncoder(&buf, mh)
	rows := []any{snapshotHeader{Format: snapshotFormat, Version: 1, Entries: len(entries), Indexes: 1}}
	for _, e := range entries {
		rows = append(rows, e)
	}
	rows = append(rows, &indexRow{Key: tableKV, Value: 6})
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	db := newDB(t)
	apply(t, db, func(tx *memdb.Txn) error { return Restore(tx, codec.NewDecoder(&buf, mh)) })
	for _, want := range entries {
		_, got, err := KVGet(db.Txn(false), nil, want.Key)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("KVGet(%q) after restoring version 1 = %+v, %v; want %+v", want.Key, got, err, want)
		}
	}
}

// TestEntryRecord round-trips entries through their record and their
// snapshot record, keeping a nil value apart from an empty one, and
// refuses snapshot records that are cut short or carry unknown flags.
func TestEntryRecord(t *testing.T) {
	t.Parallel()
	for _, e := range []*DirEntry{
		{Key: "k"},
		{Key: "k", Value: []byte{}},
		{Key: "dir/k", Value: []byte("value"), Flags: 1 << 63, LockIndex: 300, Session: "sess", CreateIndex: 1, ModifyIndex: 1 << 40},
		{Key: strings.Repeat("long/", 100), Value: bytes.Repeat([]byte("v"), 1000), ModifyIndex: 7},
	} {
		r := newRecord(e)
		if got := r.entry(); !reflect.DeepEqual(got, e) || (got.Value == nil) != (e.Value == nil) {
			t.Errorf("newRecord(%+v).entry() = %+v", e, got)
		}
		if r.key() != e.Key || r.modifyIndex() != e.ModifyIndex {
			t.Errorf("newRecord(%+v): key %q, modify index %d", e, r.key(), r.modifyIndex())
		}
		f := entryFields(e)
		rec := appendSnapshotRecord(nil, &f)
		sf, err := parseSnapshotRecord(rec)
		if err != nil {
			t.Errorf("parseSnapshotRecord(appendSnapshotRecord(%+v)): %v", e, err)
			continue
		}
		if got := record(appendRecord(nil, &sf)); got != r {
			t.Errorf("record of the snapshot record of %+v = %q, want %q", e, got, r)
		}
		for n := range len(rec) - len(e.Value) - 1 {
			if got, err := parseSnapshotRecord(rec[:n]); !errors.Is(err, ErrBadSnapshot) {
				t.Errorf("parseSnapshotRecord(%q cut to %d bytes) = %+v, %v; want %v", e.Key, n, got, err, ErrBadSnapshot)
			}
		}
	}
	f := entryFields(&DirEntry{Key: "k"})
	if got, err := parseSnapshotRecord(append([]byte{2}, appendSnapshotRecord(nil, &f)[1:]...)); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("parseSnapshotRecord(unknown flag) = %+v, %v; want %v", got, err, ErrBadSnapshot)
	}
}

// TestRestoreRuns restores more entries than a loader holds at once, some
// of them locked, and a section that holds a key twice, which is refused.
func TestRestoreRuns(t *testing.T) {
	t.Parallel()
	mh := &codec.MsgpackHandle{}
	mh.RawToString = true
	n := 2*loadRun + 17
	src := newDB(t)
	createSession(t, src, 1, session("s1", "n1", 0, ""))
	apply(t, src, func(tx *memdb.Txn) error {
		for i := range n {
			e := &DirEntry{Key: fmt.Sprintf("k/%06d", i), Value: []byte(fmt.Sprint(i))}
			if i%1000 == 0 {
				e.Session = "s1"
				if ok, err := KVLock(tx, 2, at(0), e); !ok || err != nil {
					return fmt.Errorf("lock %s: %v, %v", e.Key, ok, err)
				}
				continue
			}
			if err := KVSet(tx, 2, e); err != nil {
				return err
			}
		}
		return nil
	})
	var buf bytes.Buffer
	if err := Snapshot(src.Txn(false), codec.NewEncoder(&buf, mh)); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	dst := newDB(t)
	apply(t, dst, func(tx *memdb.Txn) error { return Restore(tx, codec.NewDecoder(bytes.NewReader(buf.Bytes()), mh)) })
	if got, want := dump(t, dst), dump(t, src); !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Errorf("Restore(Snapshot()) of %d entries differs from the source", n)
	}
	apply(t, dst, func(tx *memdb.Txn) error { return SessionDestroy(tx, 3, at(0), "s1") })
	if _, e := get(t, dst, "k/001000"); e == nil || e.Session != "" {
		t.Errorf("k/001000 after its restored holder was destroyed = %+v, want released", e)
	}

	var dup bytes.Buffer
	enc := codec.NewEncoder(&dup, mh)
	rows := []any{snapshotHeader{Format: snapshotFormat, Version: snapshotVersion, Entries: loadRun + 2}}
	for i := range loadRun + 2 {
		f := entryFields(&DirEntry{Key: fmt.Sprintf("k/%06d", i%(loadRun+1))})
		rows = append(rows, appendSnapshotRecord(nil, &f))
	}
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	tx := newDB(t).Txn(true)
	defer tx.Abort()
	if err := Restore(tx, codec.NewDecoder(&dup, mh)); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("Restore(a key twice) = %v, want %v", err, ErrBadSnapshot)
	}
}
