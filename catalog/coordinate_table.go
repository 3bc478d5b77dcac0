package catalog

import (
	"fmt"
	"reflect"

	memdb "github.com/hashicorp/go-memdb"
)

// tableCoordinates holds one row per node with a LAN coordinate.
const tableCoordinates = "catalog_coordinates"

// coordinatesTable is the schema of tableCoordinates, for Tables.
func coordinatesTable() *memdb.TableSchema {
	node := func(obj any) (string, bool) { return obj.(*coordinateRow).Node, true }
	return &memdb.TableSchema{
		Name: tableCoordinates,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &keyIndexer{fn: node, lower: true}},
		},
	}
}

// coordinateRow is what tableCoordinates stores: a node's LAN coordinate
// (Segment is always "": network segments are not supported) and the index
// it last changed at. Its fields are exported for snapshot codecs.
type coordinateRow struct {
	Node        string
	Segment     string
	Coord       *Coord
	ModifyIndex uint64
}

// UpdateCoordinates stores a batch of LAN coordinates, each at idx. As in
// Consul, entries for nodes that are not in the catalog are skipped (the
// node may have been deregistered while its update waited in a batch), and
// so are entries whose coordinate fails Validate; an entry equal to the
// stored one changes nothing. The coordinates' index moves when any row
// changed.
func UpdateCoordinates(tx *memdb.Txn, idx uint64, entries []CoordinateEntry) error {
	changed := false
	for _, e := range entries {
		if e.Coord.Validate() != nil {
			continue
		}
		n, err := getNode(tx, e.Node)
		if err != nil {
			return fmt.Errorf("update coordinate of node %q: %w", e.Node, err)
		}
		if n == nil {
			continue
		}
		old, err := getCoordinate(tx, n.Node)
		if err != nil {
			return fmt.Errorf("update coordinate of node %q: %w", e.Node, err)
		}
		if old != nil && old.Segment == e.Segment && reflect.DeepEqual(old.Coord, e.Coord) {
			continue
		}
		row := &coordinateRow{Node: n.Node, Segment: e.Segment, Coord: cloneCoord(e.Coord), ModifyIndex: idx}
		if err := tx.Insert(tableCoordinates, row); err != nil {
			return fmt.Errorf("update coordinate of node %q: %w", e.Node, err)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return wrapIf(bumpIndex(tx, tableCoordinates, idx), "update coordinates")
}

// Coordinates returns every stored LAN coordinate, ordered by lower-case
// node name, with the coordinates' index (/v1/coordinate/nodes).
func Coordinates(tx *memdb.Txn, ws memdb.WatchSet) (uint64, []CoordinateEntry, error) {
	idx, err := tablesIndex(tx, ws, tableCoordinates)
	if err != nil {
		return 0, nil, fmt.Errorf("coordinates: %w", err)
	}
	rows, err := collect[*coordinateRow](tx, tableCoordinates, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("coordinates: %w", err)
	}
	out := make([]CoordinateEntry, 0, len(rows))
	for _, r := range rows {
		out = append(out, CoordinateEntry{Node: r.Node, Segment: r.Segment, Coord: r.Coord})
	}
	return idx, out, nil
}

// NodeCoordinate returns the LAN coordinate of the node (case-insensitive),
// or nil and no error when it has none. The value is shared with the
// database: read-only.
func NodeCoordinate(tx *memdb.Txn, node string) (*Coord, error) {
	r, err := getCoordinate(tx, node)
	if err != nil || r == nil {
		return nil, wrapIf(err, "coordinate of node %q", node)
	}
	return r.Coord, nil
}

// deleteCoordinate removes a node's coordinate, if it has one; DeleteNode
// calls it.
func deleteCoordinate(tx *memdb.Txn, idx uint64, node string) error {
	r, err := getCoordinate(tx, node)
	if err != nil || r == nil {
		return err
	}
	if err := tx.Delete(tableCoordinates, r); err != nil {
		return fmt.Errorf("delete coordinate: %w", err)
	}
	return bumpIndex(tx, tableCoordinates, idx)
}

func getCoordinate(tx *memdb.Txn, node string) (*coordinateRow, error) {
	raw, err := tx.First(tableCoordinates, "id", node)
	if err != nil {
		return nil, fmt.Errorf("lookup coordinate: %w", err)
	}
	r, _ := raw.(*coordinateRow)
	return r, nil
}

const (
	coordinatesFormat  = "meridian-coordinates"
	coordinatesVersion = 1
)

// coordinatesHeader opens the coordinates' section of a snapshot.
type coordinatesHeader struct {
	Format      string
	Version     int
	Coordinates int
}

// SnapshotCoordinates writes every stored coordinate visible in tx to enc:
// a header with the count, then the rows. The coordinates' index row is in
// Snapshot's section, with the other index rows.
func SnapshotCoordinates(tx *memdb.Txn, enc Encoder) error {
	rows, err := collect[*coordinateRow](tx, tableCoordinates, "id")
	if err != nil {
		return fmt.Errorf("snapshot coordinates: %w", err)
	}
	h := coordinatesHeader{Format: coordinatesFormat, Version: coordinatesVersion, Coordinates: len(rows)}
	if err := enc.Encode(&h); err != nil {
		return fmt.Errorf("snapshot coordinates header: %w", err)
	}
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("snapshot coordinate of node %q: %w", r.Node, err)
		}
	}
	return nil
}

// RestoreCoordinates reads one section written by SnapshotCoordinates from
// dec into tx, a write transaction on an empty database, keeping each row's
// ModifyIndex. It reads nothing past the section.
func RestoreCoordinates(tx *memdb.Txn, dec Decoder) error {
	var h coordinatesHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("restore coordinates header: %w", err)
	}
	if h.Format != coordinatesFormat || h.Version != coordinatesVersion {
		return fmt.Errorf("restore coordinates: format %q version %d: %w", h.Format, h.Version, ErrBadSnapshot)
	}
	for i := 0; i < h.Coordinates; i++ {
		r := new(coordinateRow)
		if err := dec.Decode(r); err != nil {
			return fmt.Errorf("restore coordinate %d of %d: %w", i+1, h.Coordinates, err)
		}
		if r.Coord == nil {
			return fmt.Errorf("restore coordinate %d of %d: no coordinate: %w", i+1, h.Coordinates, ErrBadSnapshot)
		}
		if err := tx.Insert(tableCoordinates, r); err != nil {
			return fmt.Errorf("restore coordinate of node %q: %w", r.Node, err)
		}
	}
	return nil
}
