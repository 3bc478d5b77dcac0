package server

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/rpc"
)

// TestFSMAutopilotConfig applies autopilot configurations (a plain set, a
// losing and a winning check-and-set), carries the result through a
// snapshot, and restores a snapshot written before the section existed
// with no configuration stored.
func TestFSMAutopilotConfig(t *testing.T) {
	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	f := &fsm{state: st}
	apply := func(idx uint64, req rpc.AutopilotSetRequest) any {
		t.Helper()
		data, err := encodeCommand(msgAutopilot, &req)
		if err != nil {
			t.Fatal(err)
		}
		return f.Apply(&raft.Log{Type: raft.LogCommand, Index: idx, Data: data})
	}
	cfg := rpc.DefaultAutopilotConfig()
	cfg.MaxTrailingLogs = 11
	if got := apply(10, rpc.AutopilotSetRequest{Config: cfg}); got != true {
		t.Fatalf("set = %v, want true", got)
	}
	cfg.MaxTrailingLogs = 12
	cfg.ModifyIndex = 9
	if got := apply(11, rpc.AutopilotSetRequest{Config: cfg, CAS: true}); got != false {
		t.Fatalf("CAS at a stale index = %v, want false", got)
	}
	cfg.ModifyIndex = 10
	cfg.ServerStabilizationTime = 4 * time.Second
	if got := apply(12, rpc.AutopilotSetRequest{Config: cfg, CAS: true}); got != true {
		t.Fatalf("CAS at the current index = %v, want true", got)
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	restored, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	if err := (&fsm{state: restored}).Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	tx, _ := restored.read()
	got, err := storedAutopilot(tx)
	tx.Abort()
	if err != nil || got == nil || got.MaxTrailingLogs != 12 || got.ServerStabilizationTime != 4*time.Second ||
		got.CreateIndex != 10 || got.ModifyIndex != 12 {
		t.Fatalf("restored configuration = %+v, %v", got, err)
	}

	// A version 3 snapshot from before autopilot: sections end without it.
	var old bytes.Buffer
	enc := rpc.NewEncoder(&old)
	if err := enc.Encode(snapshotVersion); err != nil {
		t.Fatal(err)
	}
	empty, _ := newState()
	etx, _ := empty.read()
	for _, sec := range snapshotSections() {
		if sec.name == "autopilot" {
			continue
		}
		if err := enc.Encode(sec.name); err != nil {
			t.Fatal(err)
		}
		if err := sec.persist(etx, enc); err != nil {
			t.Fatal(err)
		}
	}
	etx.Abort()
	if err := enc.Encode(""); err != nil {
		t.Fatal(err)
	}
	if err := (&fsm{state: restored}).Restore(io.NopCloser(&old)); err != nil {
		t.Fatalf("Restore(snapshot without autopilot) = %v", err)
	}
	tx, _ = restored.read()
	defer tx.Abort()
	if got, err := storedAutopilot(tx); err != nil || got != nil {
		t.Errorf("configuration after restoring an older snapshot = %+v, %v; want none", got, err)
	}
}
