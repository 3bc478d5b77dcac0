package server

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// TestRestoreOlderAndNewerSnapshots restores a version 2 snapshot (written
// by earlier builds, still in users' data dirs) and refuses a section it
// does not know rather than skipping state.
func TestRestoreOlderAndNewerSnapshots(t *testing.T) {
	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.write(func(tx *memdb.Txn) error {
		if err := catalog.EnsureNode(tx, 5, &catalog.Node{Node: "n1", Address: "10.0.0.1"}); err != nil {
			return err
		}
		return kvstore.KVSet(tx, 6, &kvstore.DirEntry{Key: "k", Value: []byte("v")})
	}); err != nil {
		t.Fatal(err)
	}
	tx, _ := st.read()
	defer tx.Abort()

	var v2 bytes.Buffer
	enc := rpc.NewEncoder(&v2)
	if err := enc.Encode(2); err != nil {
		t.Fatal(err)
	}
	if err := catalog.Snapshot(tx, enc); err != nil {
		t.Fatal(err)
	}
	if err := kvstore.Snapshot(tx, enc); err != nil {
		t.Fatal(err)
	}
	restored, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	f := &fsm{state: restored}
	if err := f.Restore(io.NopCloser(&v2)); err != nil {
		t.Fatalf("Restore(version 2) = %v", err)
	}
	rtx, _ := restored.read()
	defer rtx.Abort()
	if _, e, err := kvstore.KVGet(rtx, nil, "k"); err != nil || e == nil || string(e.Value) != "v" {
		t.Errorf("k after restoring version 2 = %+v, %v; want v", e, err)
	}

	var v3 bytes.Buffer
	enc = rpc.NewEncoder(&v3)
	for _, v := range []any{snapshotVersion, "from-the-future"} {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Restore(io.NopCloser(&v3)); err == nil || !strings.Contains(err.Error(), `"from-the-future" is unknown`) {
		t.Errorf("Restore(unknown section) = %v, want an error naming it", err)
	}
}
