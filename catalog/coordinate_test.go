package catalog

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// at is a valid coordinate at x on the first axis, with no height, so
// distances between such coordinates are the differences of x in seconds.
func at(x float64) *Coord {
	v := make([]float64, CoordDimension)
	v[0] = x
	return &Coord{Vec: v}
}

func readCoordinates(t *testing.T, db *memdb.MemDB) (uint64, []CoordinateEntry) {
	t.Helper()
	idx, cs, err := Coordinates(db.Txn(false), nil)
	if err != nil {
		t.Fatalf("Coordinates: %v", err)
	}
	return idx, cs
}

func TestCoordValidate(t *testing.T) {
	t.Parallel()
	nan := at(0)
	nan.Vec[3] = math.NaN()
	inf := at(0)
	inf.Height = math.Inf(1)
	tests := []struct {
		name string
		c    *Coord
		ok   bool
	}{
		{"valid", at(0.01), true},
		{"nil", nil, false},
		{"short vector", &Coord{Vec: []float64{1, 2, 3}}, false},
		{"NaN component", nan, false},
		{"infinite height", inf, false},
		{"NaN error", &Coord{Vec: make([]float64, CoordDimension), Error: math.NaN()}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tc.c, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("Validate(%+v) = %v, want it to wrap ErrInvalidRequest", tc.c, err)
			}
		})
	}
}

func TestUpdateCoordinates(t *testing.T) {
	t.Parallel()
	db := fixture(t) // n1, n2, n3 at indexes 10..13

	ws := memdb.NewWatchSet()
	if _, _, err := Coordinates(db.Txn(false), ws); err != nil {
		t.Fatal(err)
	}
	apply(t, db, func(tx *memdb.Txn) error {
		return UpdateCoordinates(tx, 20, []CoordinateEntry{
			{Node: "N1", Coord: at(0.001)},                 // spelled otherwise: stored as n1
			{Node: "n2", Coord: at(0.002)},                 // stored
			{Node: "ghost", Coord: at(0.003)},              // not in the catalog: skipped
			{Node: "n3", Coord: &Coord{Vec: []float64{1}}}, // invalid: skipped
			{Node: "n3"}, // no coordinate: skipped
		})
	})
	if !fired(ws) {
		t.Errorf("Coordinates watch did not fire on an update")
	}
	idx, cs := readCoordinates(t, db)
	want := []CoordinateEntry{{Node: "n1", Coord: at(0.001)}, {Node: "n2", Coord: at(0.002)}}
	if idx != 20 || !reflect.DeepEqual(cs, want) {
		t.Fatalf("Coordinates = %d, %+v; want 20, %+v", idx, cs, want)
	}

	// The same coordinates again change nothing.
	ws = memdb.NewWatchSet()
	if _, _, err := Coordinates(db.Txn(false), ws); err != nil {
		t.Fatal(err)
	}
	apply(t, db, func(tx *memdb.Txn) error {
		return UpdateCoordinates(tx, 21, []CoordinateEntry{{Node: "n1", Coord: at(0.001)}})
	})
	if fired(ws) {
		t.Errorf("Coordinates watch fired on an unchanged update")
	}
	if idx, _ := readCoordinates(t, db); idx != 20 {
		t.Errorf("Coordinates index after an unchanged update = %d, want 20", idx)
	}

	c, err := NodeCoordinate(db.Txn(false), "N2")
	if err != nil || !reflect.DeepEqual(c, at(0.002)) {
		t.Errorf("NodeCoordinate(N2) = %+v, %v; want %+v", c, err, at(0.002))
	}
	if c, err := NodeCoordinate(db.Txn(false), "n3"); err != nil || c != nil {
		t.Errorf("NodeCoordinate(n3) = %+v, %v; want nil", c, err)
	}

	// Deleting a node deletes its coordinate and moves the index.
	apply(t, db, func(tx *memdb.Txn) error { return DeleteNode(tx, 30, "n1") })
	idx, cs = readCoordinates(t, db)
	if idx != 30 || len(cs) != 1 || cs[0].Node != "n2" {
		t.Errorf("Coordinates after deleting n1 = %d, %+v; want 30 and only n2", idx, cs)
	}
}

func TestUpdateCoordinatesCopies(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	c := at(0.5)
	apply(t, db, func(tx *memdb.Txn) error {
		return UpdateCoordinates(tx, 20, []CoordinateEntry{{Node: "n1", Coord: c}})
	})
	c.Vec[0] = 9
	if got, _ := NodeCoordinate(db.Txn(false), "n1"); got.Vec[0] != 0.5 {
		t.Errorf("stored coordinate changed with the caller's: Vec[0] = %v, want 0.5", got.Vec[0])
	}
}

func TestSortByDistance(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	for i, n := range []string{"a", "b", "c", "d", "e"} {
		register(t, db, uint64(i+1), node(n, "10.0.0.1", nil))
	}
	// a at 0, b at 30ms, c at 10ms, d at 20ms; e has none.
	apply(t, db, func(tx *memdb.Txn) error {
		return UpdateCoordinates(tx, 10, []CoordinateEntry{
			{Node: "a", Coord: at(0)}, {Node: "b", Coord: at(0.030)},
			{Node: "c", Coord: at(0.010)}, {Node: "d", Coord: at(0.020)},
		})
	})
	tests := []struct {
		name  string
		from  string
		items []string
		want  []string
	}{
		{"from a", "a", []string{"e", "b", "c", "a", "d"}, []string{"a", "c", "d", "b", "e"}},
		{"from b", "B", []string{"a", "b", "c", "d"}, []string{"b", "d", "c", "a"}},
		{"from d: ties keep order", "d", []string{"b", "c", "e", "x", "D"}, []string{"D", "b", "c", "e", "x"}},
		{"from a node without coordinate", "e", []string{"d", "a", "b"}, []string{"d", "a", "b"}},
		{"from an unknown node", "zz", []string{"d", "a", "b"}, []string{"d", "a", "b"}},
		{"no near", "", []string{"d", "a", "b"}, []string{"d", "a", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.Clone(tc.items)
			if err := SortByDistance(db.Txn(false), tc.from, got, func(s string) string { return s }); err != nil {
				t.Fatalf("SortByDistance: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("SortByDistance(%q, %v) = %v, want %v", tc.from, tc.items, got, tc.want)
			}
		})
	}
}

func TestCoordDistanceTo(t *testing.T) {
	t.Parallel()
	a, b := at(0), at(0.003)
	b.Height = 0.001
	if d, ok := a.DistanceTo(b); !ok || d != 4*time.Millisecond {
		t.Errorf("DistanceTo = %v, %v; want 4ms", d, ok)
	}
	if _, ok := a.DistanceTo(&Coord{Vec: []float64{1}}); ok {
		t.Errorf("DistanceTo of another dimension = ok, want false")
	}
}

func TestSnapshotRestoreCoordinates(t *testing.T) {
	t.Parallel()
	for _, c := range []codec{
		{"gob", func(b *bytes.Buffer) Encoder { return gob.NewEncoder(b) }, func(b *bytes.Buffer) Decoder { return gob.NewDecoder(b) }},
		{"json", func(b *bytes.Buffer) Encoder { return json.NewEncoder(b) }, func(b *bytes.Buffer) Decoder { return json.NewDecoder(b) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src := fixture(t)
			apply(t, src, func(tx *memdb.Txn) error {
				return UpdateCoordinates(tx, 20, []CoordinateEntry{{Node: "n1", Coord: at(0.001)}, {Node: "n3", Coord: at(0.2)}})
			})
			var buf bytes.Buffer
			enc := c.enc(&buf)
			tx := src.Txn(false)
			if err := Snapshot(tx, enc); err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if err := SnapshotCoordinates(tx, enc); err != nil {
				t.Fatalf("SnapshotCoordinates: %v", err)
			}
			if err := enc.Encode("next section"); err != nil {
				t.Fatal(err)
			}
			dst := newDB(t)
			dec := c.dec(&buf)
			apply(t, dst, func(tx *memdb.Txn) error {
				if err := Restore(tx, dec); err != nil {
					return err
				}
				return RestoreCoordinates(tx, dec)
			})
			var trailer string
			if err := dec.Decode(&trailer); err != nil || trailer != "next section" {
				t.Errorf("Decode after RestoreCoordinates = %q, %v; want %q", trailer, err, "next section")
			}
			wantIdx, want := readCoordinates(t, src)
			gotIdx, got := readCoordinates(t, dst)
			if gotIdx != wantIdx || !reflect.DeepEqual(got, want) {
				t.Errorf("Coordinates after restore = %d, %+v; want %d, %+v", gotIdx, got, wantIdx, want)
			}
			// The restored rows keep working: deleting the node removes its coordinate.
			apply(t, dst, func(tx *memdb.Txn) error { return DeleteNode(tx, 40, "n3") })
			if idx, cs := readCoordinates(t, dst); idx != 40 || len(cs) != 1 {
				t.Errorf("Coordinates after deleting n3 = %d, %+v; want 40 and one entry", idx, cs)
			}
		})
	}
}

func TestRestoreCoordinatesRejectsForeignStream(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(map[string]any{"Format": "meridian-catalog", "Version": 1}); err != nil {
		t.Fatal(err)
	}
	tx := newDB(t).Txn(true)
	defer tx.Abort()
	if err := RestoreCoordinates(tx, json.NewDecoder(&buf)); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("RestoreCoordinates(catalog header) = %v, want %v", err, ErrBadSnapshot)
	}
}
