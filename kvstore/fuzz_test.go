package kvstore

import (
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
