package server

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

// TestOpenLogKeepsBoltDataDirs: a new data dir gets the write-ahead log; one
// made by an earlier version, with raft.db, keeps bolt and its entries.
func TestOpenLogKeepsBoltDataDirs(t *testing.T) {
	fresh := t.TempDir()
	logs, _, closer, err := openLog(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := logs.(*wal.WAL); !ok {
		t.Errorf("openLog(new dir) = %T, want *wal.WAL", logs)
	}
	if err := logs.StoreLog(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	closer.Close()
	// Reopening in the same process (a restarted server) must not block on
	// the meta store's lock, and finds the entry.
	reopened := make(chan error, 1)
	go func() {
		logs, _, closer, err := openLog(fresh)
		if err == nil {
			var got raft.Log
			if err = logs.GetLog(1, &got); err == nil && string(got.Data) != "first" {
				err = fmt.Errorf("entry 1 = %q, want first", got.Data)
			}
			closer.Close()
		}
		reopened <- err
	}()
	select {
	case err := <-reopened:
		if err != nil {
			t.Errorf("reopen the write-ahead log: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reopening the write-ahead log blocked")
	}

	old := t.TempDir()
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(old, "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := bolt.StoreLog(&raft.Log{Index: 7, Term: 2, Type: raft.LogCommand, Data: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	bolt.Close()
	logs, _, closer, err = openLog(old)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	var got raft.Log
	if err := logs.GetLog(7, &got); err != nil || string(got.Data) != "kept" {
		t.Errorf("entry 7 of the bolt dir = %q, %v; want kept", got.Data, err)
	}
	if _, err := os.Stat(filepath.Join(old, "wal")); !os.IsNotExist(err) {
		t.Errorf("a wal dir appeared beside raft.db (stat: %v)", err)
	}
}

// TestOpenLogAfterTailTruncation: a follower whose log tail was cut (an
// old leader's unreplicated entries) reads its log again after a restart.
// raft-wal v0.4.0 marked the cut segment sealed without its index block,
// and every read of it failed after a reopen (hashicorp/raft-wal#31).
func TestOpenLogAfterTailTruncation(t *testing.T) {
	dir := t.TempDir()
	logs, _, closer, err := openLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := logs.StoreLogs(entries(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := logs.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	if err := logs.StoreLogs(entries(8, 9)); err != nil { // the new leader's entries
		t.Fatal(err)
	}
	closer.Close()

	logs, _, closer, err = openLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	for i := uint64(1); i <= 9; i++ {
		var got raft.Log
		if err := logs.GetLog(i, &got); err != nil || got.Data[0] != byte(i) {
			t.Errorf("GetLog(%d) after a restart = %v, %v", i, got.Data, err)
		}
	}
	if last, err := logs.LastIndex(); err != nil || last != 9 {
		t.Errorf("LastIndex after a restart = %d, %v; want 9", last, err)
	}
}

// TestPartialSnapshotsRemovedAtStart: a server killed while Raft wrote a
// snapshot leaves its directory with the .tmp suffix (raft renames it only
// once complete), which raft never looks at again; opening the stores
// removes it and keeps the complete snapshots.
func TestPartialSnapshotsRemovedAtStart(t *testing.T) {
	dataDir := t.TempDir()
	dir := filepath.Join(dataDir, "raft")
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	complete, err := snaps.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := complete.Write([]byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := complete.Close(); err != nil {
		t.Fatal(err)
	}
	// What a kill during the next snapshot leaves behind.
	partial := filepath.Join(dir, "snapshots", "1-20-1764000000000.tmp")
	if err := os.MkdirAll(partial, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, "state.bin"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	_, _, _, store, closer, err := raftStores(dataDir, nil, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("partial snapshot %s still there after the start (stat: %v)", partial, err)
	}
	list, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != complete.ID() {
		t.Errorf("snapshots after the start = %v, want only %s", list, complete.ID())
	}
}
