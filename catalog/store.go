package catalog

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/btree"
	memdb "github.com/hashicorp/go-memdb"
)

// How the catalog is stored (issue 18: at most 1 KiB of heap per service
// instance). Every go-memdb index entry costs a radix leaf and node with
// two watch channels, about 450 bytes, so rows are few and fat:
//
//   - one nodeRow per node holds the node, its services and its checks;
//     a write to any of them stores a new copy of the row (its slices are
//     a node's few pointers), and the row's radix leaf is the watch channel
//     of everything on the node;
//   - one serviceSetRow per service name holds the names of the nodes
//     that host an instance of it, in a copy-on-write B-tree: a write
//     clones the tree (O(1)), changes the clone and stores it in a new
//     row, so readers keep the tree their transaction saw and the change
//     commits or aborts with the rest of the transaction;
//   - the node IDs are a B-tree held in one row of tableNodeIDs, the same
//     way;
//   - checks are stored as checkRow, without the strings they share with
//     their node and service and with most fields packed in two strings
//     (check_row.go), and are built into HealthCheck values by reads.

// nodeRow is what tableNodes stores.
type nodeRow struct {
	node     *Node
	services []*Service  // by lower-case service ID
	checks   []*checkRow // by lower-case check ID
	// index is the highest Raft index at which the node, one of its
	// services or one of its checks changed (the "node.<name>" index).
	index uint64
}

// serviceSetRow is what tableServices stores: the lower-case names of the
// nodes that host an instance of the service named key (lower case).
type serviceSetRow struct {
	key   string
	nodes *btree.BTreeG[string]
}

// treeDegree is the degree of the catalog's B-trees: nodes of 31 to 63
// entries.
const treeDegree = 32

// newTree makes a B-tree without a free list: by default each tree (and
// every clone of it) keeps up to 32 freed nodes for reuse, kilobytes per
// service name for the life of the set.
func newTree[T any](less btree.LessFunc[T]) *btree.BTreeG[T] {
	return btree.NewWithFreeListG(treeDegree, less, btree.NewFreeListG[T](0))
}

// newNodeSet makes an empty set of node names for a service.
func newNodeSet() *btree.BTreeG[string] { return newTree(btree.Less[string]()) }

// lower returns s in lower case, s itself when it has no upper case.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || ('A' <= c && c <= 'Z') {
			return strings.ToLower(s)
		}
	}
	return s
}

// cmpFold orders strings as their lower-case forms, without allocating
// for ASCII.
func cmpFold(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := a[i], b[i]
		if x >= 0x80 || y >= 0x80 {
			return strings.Compare(strings.ToLower(a), strings.ToLower(b))
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	for _, s := range []string{a[n:], b[n:]} {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return strings.Compare(strings.ToLower(a), strings.ToLower(b))
			}
		}
	}
	return len(a) - len(b)
}

// getRow returns the row of the node named name (case-insensitive), or nil.
func getRow(tx *memdb.Txn, name string) (*nodeRow, error) {
	raw, err := tx.First(tableNodes, "id", name)
	if err != nil {
		return nil, fmt.Errorf("lookup node: %w", err)
	}
	r, _ := raw.(*nodeRow)
	return r, nil
}

func getNode(tx *memdb.Txn, name string) (*Node, error) {
	r, err := getRow(tx, name)
	if r == nil {
		return nil, err
	}
	return r.node, nil
}

// serviceAt finds the service with that ID (case-insensitive): its
// position, or where it would go.
func (r *nodeRow) serviceAt(id string) (int, bool) {
	return slices.BinarySearchFunc(r.services, id, func(s *Service, id string) int { return cmpFold(s.ID, id) })
}

// checkAt finds the check with that ID (case-insensitive) as serviceAt.
func (r *nodeRow) checkAt(id string) (int, bool) {
	return slices.BinarySearchFunc(r.checks, id, func(c *checkRow, id string) int { return cmpFold(c.id, id) })
}

func (r *nodeRow) service(id string) *Service {
	if i, ok := r.serviceAt(id); ok {
		return r.services[i]
	}
	return nil
}

func (r *nodeRow) check(id string) *checkRow {
	if i, ok := r.checkAt(id); ok {
		return r.checks[i]
	}
	return nil
}

// healthChecks builds the HealthCheck of each of the node's checks that
// keep accepts (nil: all), by check ID.
func (r *nodeRow) healthChecks(keep func(*checkRow) bool) []*HealthCheck {
	n := 0
	for _, c := range r.checks {
		if keep == nil || keep(c) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]*HealthCheck, 0, n)
	slab := make([]HealthCheck, n) // one allocation for the node's checks
	for _, c := range r.checks {
		if keep == nil || keep(c) {
			h := &slab[len(out)]
			r.fillCheck(h, c)
			out = append(out, h)
		}
	}
	return out
}

// serviceChecks returns the checks of the service with that ID ("" for
// the node-level ones).
func (r *nodeRow) serviceChecks(serviceID string) []*HealthCheck {
	return r.healthChecks(func(c *checkRow) bool { return strings.EqualFold(c.serviceID, serviceID) })
}

// serviceNames lists the distinct service names on the node.
func (r *nodeRow) serviceNames() []string {
	var names []string
	for _, s := range r.services {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, s.Service) }) {
			names = append(names, s.Service)
		}
	}
	return names
}

// hosts reports whether the node has an instance of the named service.
func (r *nodeRow) hosts(name string) bool {
	return slices.ContainsFunc(r.services, func(s *Service) bool { return strings.EqualFold(s.Service, name) })
}

// copyRow returns a copy of r that may be changed and stored at idx.
func (r *nodeRow) copyRow(idx uint64) *nodeRow {
	c := *r
	c.index = max(r.index, idx)
	return &c
}

// putService stores s in the row (a copy), replacing the service with its
// ID.
func (r *nodeRow) putService(s *Service) {
	i, ok := r.serviceAt(s.ID)
	if ok {
		r.services = slices.Clone(r.services)
		r.services[i] = s
		return
	}
	r.services = slices.Insert(slices.Clip(r.services), i, s)
}

func (r *nodeRow) putCheck(c *checkRow) {
	i, ok := r.checkAt(c.id)
	if ok {
		r.checks = slices.Clone(r.checks)
		r.checks[i] = c
		return
	}
	r.checks = slices.Insert(slices.Clip(r.checks), i, c)
}

// dropChecks removes the checks drop accepts, and returns them.
func (r *nodeRow) dropChecks(drop func(*checkRow) bool) []*checkRow {
	var gone []*checkRow
	kept := make([]*checkRow, 0, len(r.checks))
	for _, c := range r.checks {
		if drop(c) {
			gone = append(gone, c)
		} else {
			kept = append(kept, c)
		}
	}
	if gone != nil {
		r.checks = kept
	}
	return gone
}

func putRow(tx *memdb.Txn, r *nodeRow) error {
	return tx.Insert(tableNodes, r)
}

// serviceSet returns the set of nodes hosting the service (any spelling
// of name), or nil.
func serviceSet(tx *memdb.Txn, name string) (*serviceSetRow, error) {
	raw, err := tx.First(tableServices, "id", name)
	if err != nil {
		return nil, fmt.Errorf("lookup service %q: %w", name, err)
	}
	s, _ := raw.(*serviceSetRow)
	return s, nil
}

// addToServiceSet records that node hosts an instance of the service.
func addToServiceSet(tx *memdb.Txn, name, node string) error {
	set, err := serviceSet(tx, name)
	if err != nil {
		return err
	}
	key := lower(node)
	var tree *btree.BTreeG[string]
	if set == nil {
		tree = newNodeSet()
	} else {
		if set.nodes.Has(key) {
			return nil
		}
		tree = set.nodes.Clone()
	}
	tree.ReplaceOrInsert(key)
	if err := tx.Insert(tableServices, &serviceSetRow{key: lower(name), nodes: tree}); err != nil {
		return fmt.Errorf("store service %q: %w", name, err)
	}
	return nil
}

// removeFromServiceSet records that node hosts no instance of the service
// any more; the set goes with its last node.
func removeFromServiceSet(tx *memdb.Txn, name, node string) error {
	set, err := serviceSet(tx, name)
	if err != nil || set == nil {
		return err
	}
	key := lower(node)
	if !set.nodes.Has(key) {
		return nil
	}
	if set.nodes.Len() == 1 {
		if err := tx.Delete(tableServices, set); err != nil {
			return fmt.Errorf("delete service %q: %w", name, err)
		}
		return nil
	}
	tree := set.nodes.Clone()
	tree.Delete(key)
	if err := tx.Insert(tableServices, &serviceSetRow{key: set.key, nodes: tree}); err != nil {
		return fmt.Errorf("store service %q: %w", name, err)
	}
	return nil
}

// eachRow calls fn for each node row in lower-case name order until fn
// returns false or an error.
func eachRow(tx *memdb.Txn, fn func(*nodeRow) (bool, error)) error {
	it, err := tx.Get(tableNodes, "id")
	if err != nil {
		return fmt.Errorf("scan nodes: %w", err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		more, err := fn(raw.(*nodeRow))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// tableNodeIDs holds one row, the node IDs: a node-ID index in memdb cost
// a radix entry per node, the B-tree's entry costs a tenth of it.
const tableNodeIDs = "catalog_node_ids"

// nodeIDsRow is tableNodeIDs' one row: each node ID (lower case) with the
// name of the node holding it.
type nodeIDsRow struct {
	ids *btree.BTreeG[nodeID]
}

type nodeID struct{ key, name string }

func nodeIDsTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableNodeIDs,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &keyIndexer{fn: func(any) (string, bool) { return "ids", true }}},
		},
	}
}

func newNodeIDs() *btree.BTreeG[nodeID] {
	return newTree(func(a, b nodeID) bool { return a.key < b.key })
}

func nodeIDs(tx *memdb.Txn) (*btree.BTreeG[nodeID], error) {
	raw, err := tx.First(tableNodeIDs, "id", "ids")
	if err != nil {
		return nil, fmt.Errorf("lookup node IDs: %w", err)
	}
	if r, ok := raw.(*nodeIDsRow); ok {
		return r.ids, nil
	}
	return nil, nil
}

// nodeNameOf returns the name of the node with that ID (case-insensitive),
// or "".
func nodeNameOf(tx *memdb.Txn, id string) (string, error) {
	ids, err := nodeIDs(tx)
	if err != nil || ids == nil {
		return "", err
	}
	e, _ := ids.Get(nodeID{key: lower(id)})
	return e.name, nil
}

// moveNodeID records that the node named name changed its ID from old to
// id (either may be "").
func moveNodeID(tx *memdb.Txn, name, old, id string) error {
	if lower(old) == lower(id) {
		return nil
	}
	ids, err := nodeIDs(tx)
	if err != nil {
		return err
	}
	if ids == nil {
		ids = newNodeIDs()
	} else {
		ids = ids.Clone()
	}
	if old != "" {
		ids.Delete(nodeID{key: lower(old)})
	}
	if id != "" {
		ids.ReplaceOrInsert(nodeID{key: lower(id), name: name})
	}
	if err := tx.Insert(tableNodeIDs, &nodeIDsRow{ids: ids}); err != nil {
		return fmt.Errorf("store node IDs: %w", err)
	}
	return nil
}
