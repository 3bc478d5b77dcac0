package catalog

import (
	"fmt"
	"strings"

	memdb "github.com/hashicorp/go-memdb"
)

// Table names. They carry the package's prefix because kvstore adds its
// tables to the same database.
const (
	tableNodes    = "catalog_nodes"
	tableServices = "catalog_services"
	tableChecks   = "catalog_checks"
	tableIndex    = "catalog_index"
)

// Prefixes of the per-key rows of tableIndex; the other rows are keyed by
// table name.
const (
	serviceIndexPrefix = "service."
	nodeIndexPrefix    = "node."
)

// serviceRow is what tableServices stores: a service and the name of the
// node (as the node record spells it) that hosts it.
type serviceRow struct {
	node string
	svc  *Service
}

// indexRow is what tableIndex stores: the highest Raft index at which the
// thing named by Key changed.
type indexRow struct {
	Key   string
	Value uint64
}

// Tables returns the schemas of the catalog's go-memdb tables, to be merged
// with other packages' tables into one memdb.DBSchema:
//
//   - "catalog_nodes": *Node rows; indexes "id" (node name, case-insensitive)
//     and "uuid" (node ID, case-insensitive, rows without ID left out).
//   - "catalog_services": service instances; indexes "id" (node, service ID),
//     "node" and "service" (service name), all case-insensitive.
//   - "catalog_checks": *HealthCheck rows; indexes "id" (node, check ID),
//     "node", "node_service" (node, service ID; node-level checks under ""),
//     "service" (service name) and "status".
//   - "catalog_index": the index rows: one per table above (keyed by table
//     name), "service.<name>" and "node.<name>" (lower case).
//   - "catalog_coordinates": LAN coordinates; index "id" (node name,
//     case-insensitive). See coordinate_table.go.
//   - "catalog_queries": *PreparedQuery rows; indexes "id", "name",
//     "template" (templates by name, for longest-prefix matches) and
//     "session". See query.go.
//
// Each call returns fresh values that the caller may keep.
func Tables() map[string]*memdb.TableSchema {
	nodeName := func(obj any) (string, bool) { return obj.(*Node).Node, true }
	nodeID := func(obj any) (string, bool) { id := obj.(*Node).ID; return id, id != "" }
	svcID := func(obj any) (string, bool) { r := obj.(*serviceRow); return join(r.node, r.svc.ID), true }
	svcNode := func(obj any) (string, bool) { return obj.(*serviceRow).node, true }
	svcName := func(obj any) (string, bool) { return obj.(*serviceRow).svc.Service, true }
	chkID := func(obj any) (string, bool) { c := obj.(*HealthCheck); return join(c.Node, c.CheckID), true }
	chkNode := func(obj any) (string, bool) { return obj.(*HealthCheck).Node, true }
	chkNodeSvc := func(obj any) (string, bool) { c := obj.(*HealthCheck); return join(c.Node, c.ServiceID), true }
	chkSvc := func(obj any) (string, bool) { n := obj.(*HealthCheck).ServiceName; return n, n != "" }
	chkStatus := func(obj any) (string, bool) { return obj.(*HealthCheck).Status, true }
	idxKey := func(obj any) (string, bool) { return obj.(*indexRow).Key, true }

	return map[string]*memdb.TableSchema{
		tableNodes: {
			Name: tableNodes,
			Indexes: map[string]*memdb.IndexSchema{
				"id":   {Name: "id", Unique: true, Indexer: &keyIndexer{fn: nodeName, args: 1, lower: true}},
				"uuid": {Name: "uuid", Unique: true, AllowMissing: true, Indexer: &keyIndexer{fn: nodeID, args: 1, lower: true}},
			},
		},
		tableServices: {
			Name: tableServices,
			Indexes: map[string]*memdb.IndexSchema{
				"id":      {Name: "id", Unique: true, Indexer: &keyIndexer{fn: svcID, args: 2, lower: true}},
				"node":    {Name: "node", Indexer: &keyIndexer{fn: svcNode, args: 1, lower: true}},
				"service": {Name: "service", Indexer: &keyIndexer{fn: svcName, args: 1, lower: true}},
			},
		},
		tableChecks: {
			Name: tableChecks,
			Indexes: map[string]*memdb.IndexSchema{
				"id":           {Name: "id", Unique: true, Indexer: &keyIndexer{fn: chkID, args: 2, lower: true}},
				"node":         {Name: "node", Indexer: &keyIndexer{fn: chkNode, args: 1, lower: true}},
				"node_service": {Name: "node_service", Indexer: &keyIndexer{fn: chkNodeSvc, args: 2, lower: true}},
				"service":      {Name: "service", AllowMissing: true, Indexer: &keyIndexer{fn: chkSvc, args: 1, lower: true}},
				"status":       {Name: "status", Indexer: &keyIndexer{fn: chkStatus, args: 1}},
			},
		},
		tableCoordinates: coordinatesTable(),
		tableQueries:     queryTableSchema(),
		tableIndex: {
			Name: tableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &keyIndexer{fn: idxKey, args: 1}},
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
	args  int
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

// FromArgs implements memdb.Indexer.
func (k *keyIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != k.args {
		return nil, fmt.Errorf("index takes %d arguments, got %d", k.args, len(args))
	}
	if k.args == 1 {
		s, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("index argument %v: want a string, got %T", args[0], args[0])
		}
		return k.key(s), nil
	}
	parts := make([]string, len(args))
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("index argument %d: want a string, got %T", i, a)
		}
		parts[i] = s
	}
	return k.key(join(parts...)), nil
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
