package catalog

import (
	"fmt"
	"strings"

	memdb "github.com/hashicorp/go-memdb"
)

// Table names. They carry the package's prefix because kvstore adds its
// tables to the same database. tableChecks names no table any more (checks
// live in their node's row) but still keys the checks' index row.
const (
	tableNodes    = "catalog_nodes"
	tableServices = "catalog_services"
	tableChecks   = "catalog_checks"
	tableIndex    = "catalog_index"
)

// Prefixes of the per-key rows of tableIndex; the other rows are keyed by
// table name. Nodes keep their index in their row (nodeRow.index); the
// "node.<name>" rows exist only in snapshots, for other versions.
const (
	serviceIndexPrefix = "service."
	nodeIndexPrefix    = "node."
)

// indexRow is what tableIndex stores: the highest Raft index at which the
// thing named by Key changed.
type indexRow struct {
	Key   string
	Value uint64
}

// Tables returns the schemas of the catalog's go-memdb tables, to be merged
// with other packages' tables into one memdb.DBSchema:
//
//   - "catalog_nodes": *nodeRow rows, a node with its services and checks
//     (store.go); index "id" (node name, case-insensitive).
//   - "catalog_node_ids": one row, the node IDs (case-insensitive) with the
//     names of their nodes, in a B-tree (store.go).
//   - "catalog_services": *serviceSetRow rows, the nodes hosting each
//     service name; index "id" (service name, case-insensitive).
//   - "catalog_index": the index rows: one per kind of row (keyed
//     "catalog_nodes", "catalog_services" and "catalog_checks") and
//     "service.<name>" (lower case).
//   - "catalog_coordinates": LAN coordinates; index "id" (node name,
//     case-insensitive). See coordinate_table.go.
//   - "catalog_interns": the intern table of repeated values (intern.go).
//   - "catalog_queries": *PreparedQuery rows; indexes "id", "name",
//     "template" (templates by name, for longest-prefix matches) and
//     "session". See query.go.
//
// A service instance costs no index entry of its own: each entry costs a
// radix leaf and node with their watch channels (about 450 bytes with the
// keys), and the fourteen entries an instance had with a table per kind of
// row were most of its 5.5 KB (issue 18).
//
// Each call returns fresh values that the caller may keep.
func Tables() map[string]*memdb.TableSchema {
	nodeName := func(obj any) (string, bool) { return obj.(*nodeRow).node.Node, true }
	setKey := func(obj any) (string, bool) { return obj.(*serviceSetRow).key, true }
	idxKey := func(obj any) (string, bool) { return obj.(*indexRow).Key, true }

	return map[string]*memdb.TableSchema{
		tableNodes: {
			Name: tableNodes,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &keyIndexer{fn: nodeName, lower: true}},
			},
		},
		tableServices: {
			Name: tableServices,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &keyIndexer{fn: setKey, lower: true}},
			},
		},
		tableNodeIDs:     nodeIDsTable(),
		tableCoordinates: coordinatesTable(),
		tableQueries:     queryTableSchema(),
		tableInterns:     internsTable(),
		tableIndex: {
			Name: tableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &keyIndexer{fn: idxKey}},
			},
		},
	}
}

// join builds the value of a compound key. The separator cannot occur in
// names, so ("a", "b\x00c") and ("a\x00b", "c") never both exist.
func join(parts ...string) string { return strings.Join(parts, "\x00") }

// keyIndexer indexes a string computed by fn without reflection. Every key
// ends in a NUL so that a lookup of "web" does not match "web1" in a
// non-unique index (memdb appends the primary key to those).
type keyIndexer struct {
	fn    func(obj any) (string, bool)
	lower bool
}

var _ memdb.SingleIndexer = (*keyIndexer)(nil)

// FromObject implements memdb.SingleIndexer.
func (k *keyIndexer) FromObject(obj any) (bool, []byte, error) {
	v, ok := k.fn(obj)
	if !ok {
		return false, nil, nil
	}
	return true, k.key(v), nil
}

// FromArgs implements memdb.Indexer: one string.
func (k *keyIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("index takes 1 argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("index argument %v: want a string, got %T", args[0], args[0])
	}
	return k.key(s), nil
}

func (k *keyIndexer) key(v string) []byte {
	b := make([]byte, 0, len(v)+1)
	if k.lower {
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c >= 0x80 {
				// Rare: fall back to full Unicode folding.
				b = append(b[:0], strings.ToLower(v)...)
				return append(b, 0)
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		return append(b, 0)
	}
	b = append(b, v...)
	return append(b, 0)
}
