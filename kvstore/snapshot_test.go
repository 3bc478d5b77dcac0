package kvstore

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"reflect"
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
		{"future version", map[string]any{"Format": "meridian-kvstore", "Version": 2}},
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
