package server

import (
	"bytes"
	"io"
	"reflect"
	"testing"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/catalog"
)

func coordAt(x float64) *catalog.Coord {
	v := make([]float64, catalog.CoordDimension)
	v[0] = x
	return &catalog.Coord{Vec: v}
}

func TestCoordinateBatch(t *testing.T) {
	b := newCoordinateBatch()
	b.add(catalog.CoordinateEntry{Node: "b", Coord: coordAt(1)}, 2)
	b.add(catalog.CoordinateEntry{Node: "a", Coord: coordAt(2)}, 2)
	b.add(catalog.CoordinateEntry{Node: "B", Coord: coordAt(3)}, 2) // replaces b's
	b.add(catalog.CoordinateEntry{Node: "c", Coord: coordAt(4)}, 2) // full: dropped
	got, dropped := b.take()
	want := []catalog.CoordinateEntry{{Node: "B", Coord: coordAt(3)}, {Node: "a", Coord: coordAt(2)}}
	if !reflect.DeepEqual(got, want) || dropped != 1 {
		t.Errorf("take() = %+v, %d; want %+v, 1", got, dropped, want)
	}
	if got, dropped := b.take(); len(got) != 0 || dropped != 0 {
		t.Errorf("second take() = %+v, %d; want nothing", got, dropped)
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

// TestFSMCoordinates applies a coordinate batch and carries it through a
// snapshot of the whole FSM.
func TestFSMCoordinates(t *testing.T) {
	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	f := &fsm{state: st}
	apply := func(idx uint64, typ msgType, cmd any) {
		t.Helper()
		data, err := encodeCommand(typ, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if resp := f.Apply(&raft.Log{Type: raft.LogCommand, Index: idx, Data: data}); resp != nil {
			t.Fatalf("Apply(%d) = %v", typ, resp)
		}
	}
	apply(5, msgRegister, &catalog.RegisterRequest{Node: "n1", Address: "10.0.0.1"})
	apply(6, msgCoordinate, []catalog.CoordinateEntry{{Node: "n1", Coord: coordAt(0.01)}, {Node: "gone", Coord: coordAt(0.02)}})

	read := func(st *state) (uint64, []catalog.CoordinateEntry) {
		t.Helper()
		tx, _ := st.read()
		defer tx.Abort()
		idx, cs, err := catalog.Coordinates(tx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return idx, cs
	}
	idx, cs := read(st)
	want := []catalog.CoordinateEntry{{Node: "n1", Coord: coordAt(0.01)}}
	if idx != 6 || !reflect.DeepEqual(cs, want) {
		t.Fatalf("Coordinates after apply = %d, %+v; want 6, %+v", idx, cs, want)
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	snap.Release()
	restored, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	if err := (&fsm{state: restored}).Restore(io.NopCloser(&sink)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if idx, cs := read(restored); idx != 6 || !reflect.DeepEqual(cs, want) {
		t.Errorf("Coordinates after restore = %d, %+v; want 6, %+v", idx, cs, want)
	}
	// The restored table is live: deregistering the node drops its row.
	if err := restored.write(func(tx *memdb.Txn) error { return catalog.DeleteNode(tx, 9, "n1") }); err != nil {
		t.Fatal(err)
	}
	if idx, cs := read(restored); idx != 9 || len(cs) != 0 {
		t.Errorf("Coordinates after deleting n1 = %d, %+v; want 9, none", idx, cs)
	}
}
