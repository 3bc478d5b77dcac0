package catalog

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

// allReads runs every read the package offers and returns their results.
func allReads(t *testing.T, db *memdb.MemDB) map[string]any {
	t.Helper()
	tx := db.Txn(false)
	out := map[string]any{}
	add := func(name string, idx uint64, v any, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = []any{idx, v}
	}
	i, nodes, err := Nodes(tx, nil, nil)
	add("nodes", i, nodes, err)
	i, svcs, err := Services(tx, nil, nil)
	add("services", i, svcs, err)
	for _, n := range []string{"n1", "n2", "n3", "n9"} {
		i, ns, err := GetNodeServices(tx, nil, n)
		add("node "+n, i, ns, err)
		i, cs, err := NodeChecks(tx, nil, n)
		add("node checks "+n, i, cs, err)
	}
	for _, s := range []string{"web", "db", "none"} {
		i, sn, err := ServiceNodes(tx, nil, s, ServiceQuery{})
		add("catalog "+s, i, sn, err)
		i, csn, err := CheckServiceNodes(tx, nil, s, ServiceQuery{})
		add("health "+s, i, csn, err)
		i, cs, err := ServiceChecks(tx, nil, s, nil)
		add("checks "+s, i, cs, err)
	}
	i, cs, err := ChecksInState(tx, nil, HealthAny, nil)
	add("state any", i, cs, err)
	return out
}

type codec struct {
	name string
	enc  func(*bytes.Buffer) Encoder
	dec  func(*bytes.Buffer) Decoder
}

func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	codecs := []codec{
		{"gob", func(b *bytes.Buffer) Encoder { return gob.NewEncoder(b) }, func(b *bytes.Buffer) Decoder { return gob.NewDecoder(b) }},
		{"json", func(b *bytes.Buffer) Encoder { return json.NewEncoder(b) }, func(b *bytes.Buffer) Decoder { return json.NewDecoder(b) }},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src := fixture(t)
			// Leave deleted-service and renamed-service traces in the index table.
			apply(t, src, func(tx *memdb.Txn) error { return DeleteService(tx, 30, "n2", "db1") })
			want := allReads(t, src)

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
				t.Errorf("Decode after Restore = %q, %v, want %q", trailer, err, "next section")
			}
			got := allReads(t, dst)
			for k := range want {
				if !reflect.DeepEqual(got[k], want[k]) {
					t.Errorf("%s after Restore = %+v, want %+v", k, got[k], want[k])
				}
			}
			// The restored database keeps working: an unchanged write is a no-op.
			before := got["health web"]
			apply(t, dst, func(tx *memdb.Txn) error {
				return EnsureCheck(tx, 40, chk("n1", "web1-http", "web1", HealthPassing))
			})
			if after := allReads(t, dst)["health web"]; !reflect.DeepEqual(after, before) {
				t.Errorf("health web after no-op write on restored db = %+v, want %+v", after, before)
			}
		})
	}
}

func TestRestoreRejectsForeignStream(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(map[string]any{"Format": "kvstore", "Version": 1}); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	tx := newDB(t).Txn(true)
	defer tx.Abort()
	if err := Restore(tx, json.NewDecoder(&buf)); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("Restore(kvstore header) = %v, want %v", err, ErrBadSnapshot)
	}
}

// TestRestoreCutShort: a catalog section cut anywhere after its header
// fails to restore, whether the decoder or the store meets the end first,
// and Restore returns only once its decoding goroutine has.
func TestRestoreCutShort(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	registerAll(t, db, bigCatalogRequests(30))
	var buf bytes.Buffer
	if err := Snapshot(db.Txn(false), json.NewEncoder(&buf)); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	header := bytes.IndexByte(data, '\n') + 1
	for _, n := range []int{header, header + 1, len(data) / 3, len(data) / 2, len(data) - 2} {
		tx := newDB(t).Txn(true)
		err := Restore(tx, json.NewDecoder(bytes.NewReader(data[:n])))
		tx.Abort()
		if err == nil {
			t.Errorf("Restore(cut to %d of %d bytes) = nil, want an error", n, len(data))
		}
	}
	// When the store stops (its insert failed), the decoder stops at its
	// next batch rather than blocking on it.
	var rows bytes.Buffer
	enc := json.NewEncoder(&rows)
	for range 2 * restoreBatch {
		if err := enc.Encode(&HealthCheck{Node: "n", CheckID: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	close(stop)
	h := snapshotHeader{Checks: 2 * restoreBatch}
	if err := decodeRows(json.NewDecoder(&rows), &h, make(chan []any), stop); err != nil {
		t.Errorf("decodeRows after stop = %v, want nil", err)
	}
}
