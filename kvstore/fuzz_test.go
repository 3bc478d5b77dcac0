package kvstore

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

// FuzzKeys writes three keys and checks ValidateKey and KVKeys against
// a plain reading of Consul's rules: every answer starts with the prefix,
// answers are sorted and distinct, a key without the separator past the
// prefix is answered whole, and one with it is cut just past its first
// occurrence there.
func FuzzKeys(f *testing.F) {
	f.Add("foo/a", "foo/b/c", "foo/e/", "foo/", "/")
	f.Add("/lead", "a//b", "a/b", "a", "//")
	f.Add("x", "xx", "x\x00y", "", "")
	f.Add("ünï/çødé", "ünï/x", "ü", "ün", "ï")
	f.Fuzz(func(t *testing.T, k1, k2, k3, prefix, sep string) {
		db := newDB(t)
		var stored []string
		for i, k := range []string{k1, k2, k3} {
			err := ValidateKey(k)
			if (err == nil) != (k != "") {
				t.Fatalf("ValidateKey(%q) = %v, want error only for the empty key", k, err)
			}
			if err != nil {
				continue
			}
			apply(t, db, func(tx *memdb.Txn) error { return KVSet(tx, uint64(i+1), &DirEntry{Key: k}) })
			stored = append(stored, k)
		}
		_, got, err := KVKeys(db.Txn(false), nil, prefix, sep)
		if err != nil {
			t.Fatalf("KVKeys(%q, %q): %v", prefix, sep, err)
		}
		var want []string
		for _, k := range stored {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			if i := strings.Index(k[len(prefix):], sep); sep != "" && i >= 0 {
				k = k[:len(prefix)+i+len(sep)]
			}
			want = append(want, k)
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("KVKeys(%q, %q) over %q = %q, want %q", prefix, sep, stored, got, want)
		}
	})
}

// FuzzSnapshotRecord feeds parseSnapshotRecord, which reads untrusted
// archives, any bytes: it must not panic, and a record it accepts must
// come back byte for byte through the tree's record.
func FuzzSnapshotRecord(f *testing.F) {
	for _, e := range []*DirEntry{
		{Key: "k"},
		{Key: "k", Value: []byte{}},
		{Key: "dir/k", Value: []byte("value"), Flags: 1 << 63, LockIndex: 300, Session: "sess", CreateIndex: 1, ModifyIndex: 1 << 40},
	} {
		fl := entryFields(e)
		f.Add(appendSnapshotRecord(nil, &fl))
	}
	f.Add([]byte{0, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := parseSnapshotRecord(b)
		if err != nil {
			return
		}
		r := record(appendRecord(nil, &fl))
		if r.key() != string(fl.key) {
			t.Fatalf("record key %q, want %q", r.key(), fl.key)
		}
		rf := r.fields()
		if got := appendSnapshotRecord(nil, &rf); !bytes.Equal(got, b) {
			// Uvarints have one shortest form; a longer one in b is
			// accepted and written back shortest.
			again, err := parseSnapshotRecord(got)
			if err != nil || !reflect.DeepEqual(again.nums, fl.nums) || !bytes.Equal(again.value, fl.value) ||
				!bytes.Equal(again.key, fl.key) || !bytes.Equal(again.session, fl.session) || again.nilValue != fl.nilValue {
				t.Fatalf("snapshot record %x came back as %x", b, got)
			}
		}
	})
}
