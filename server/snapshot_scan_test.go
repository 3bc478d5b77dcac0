package server

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// scanFixture is the FSM snapshot of a few nodes, services, checks, keys
// and a session.
func scanFixture(t *testing.T) []byte {
	t.Helper()
	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.write(func(tx *memdb.Txn) error {
		for i := range 3 {
			node := fmt.Sprintf("n%d", i)
			err := catalog.Register(tx, uint64(10+i), &catalog.RegisterRequest{
				Node: node, Address: "10.0.0.1",
				Service: &catalog.Service{ID: "web", Service: "web", Tags: []string{"a", "b"}, Port: 80, Meta: map[string]string{"k": "v"}},
				Checks:  []*catalog.HealthCheck{{CheckID: "c", Name: "c", Status: "passing", ServiceID: "web"}},
			})
			if err != nil {
				return err
			}
		}
		for i := range 5 {
			if err := kvstore.KVSet(tx, uint64(20+i), &kvstore.DirEntry{Key: fmt.Sprintf("k/%d", i), Value: []byte("v"), Flags: 1 << 40}); err != nil {
				return err
			}
		}
		return kvstore.SessionCreate(tx, 30, &kvstore.Session{ID: "s1", Node: "n0", Behavior: kvstore.BehaviorRelease, NodeChecks: []string{}})
	}); err != nil {
		t.Fatal(err)
	}
	snap, _ := (&fsm{state: st}).Snapshot()
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// TestScanStateCounts: the scanner's counts are the section headers',
// and it reads exactly the whole stream.
func TestScanStateCounts(t *testing.T) {
	t.Parallel()
	data := scanFixture(t)
	counts, err := scanState(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("scanState = %v", err)
	}
	got := map[string]int{}
	for _, c := range counts {
		got[c.Table] = c.Count
	}
	want := map[string]int{"catalog.Nodes": 3, "catalog.Services": 3, "catalog.Checks": 3, "kvstore.Entries": 5, "kvstore.Sessions": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("scanState count %s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
}

// TestScanStateRefuses: a stream cut anywhere, a byte that opens no
// value, an unknown section and a header count that is not one are each
// refused with ErrBadArchive.
func TestScanStateRefuses(t *testing.T) {
	t.Parallel()
	data := scanFixture(t)
	for n := 0; n < len(data); n++ {
		if _, err := scanState(bytes.NewReader(data[:n])); !errors.Is(err, ErrBadArchive) {
			t.Fatalf("scanState(cut to %d of %d bytes) = %v, want %v", n, len(data), err, ErrBadArchive)
		}
	}
	encode := func(vs ...any) []byte {
		var b bytes.Buffer
		enc := rpc.NewEncoder(&b)
		for _, v := range vs {
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"old version", encode(2, "")},
		{"unknown section", encode(snapshotVersion, "from-the-future")},
		{"negative count", encode(snapshotVersion, "kvstore", map[string]any{"Format": "meridian-kvstore", "Version": 2, "Entries": -1})},
		{"count not a number", encode(snapshotVersion, "kvstore", map[string]any{"Format": "meridian-kvstore", "Version": 2, "Entries": "many"})},
		{"no value", append(encode(snapshotVersion, "kvstore", map[string]any{"Format": "meridian-kvstore", "Version": 2, "Entries": 1}), 0xc1)},
	}
	for _, tc := range tests {
		if _, err := scanState(bytes.NewReader(tc.data)); !errors.Is(err, ErrBadArchive) {
			t.Errorf("scanState(%s) = %v, want %v", tc.name, err, ErrBadArchive)
		}
	}
}

// TestScanStateSkipsEveryKind: the scanner skips each msgpack kind the
// codec writes exactly as the codec reads it, so the value after it is
// found where it is.
func TestScanStateSkipsEveryKind(t *testing.T) {
	t.Parallel()
	type row struct {
		S   string
		B   []byte
		I   []int64
		U   uint64
		F   float64
		M   map[string]any
		Nil *int
		T   time.Time
	}
	long := string(bytes.Repeat([]byte("x"), 70000))
	rows := []any{
		row{S: long, B: bytes.Repeat([]byte{1}, 300), I: []int64{-1, -200, -70000, -1 << 40, 5, 300, 70000, 1 << 40}, U: 1 << 63, F: 1.5, T: time.Unix(1700000000, 5),
			M: map[string]any{"t": true, "f": false, "n": nil, "a": make([]any, 20)}},
		make([]any, 70000),
		map[string]int{"a": 1},
		float32(2.5),
	}
	header := map[string]any{"Format": "meridian-kvstore", "Version": 2, "Entries": len(rows)}
	var b bytes.Buffer
	enc := rpc.NewEncoder(&b)
	for _, v := range append(append([]any{snapshotVersion, "kvstore", header}, rows...), "") {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	counts, err := scanState(bytes.NewReader(b.Bytes()))
	want := []TableCount{{"kvstore.Entries", len(rows)}}
	if err != nil || !reflect.DeepEqual(counts, want) {
		t.Errorf("scanState = %v, %v; want %v", counts, err, want)
	}
}
