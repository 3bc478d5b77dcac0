package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/btree"
	memdb "github.com/hashicorp/go-memdb"
)

// Encoder writes one value to a snapshot stream; *gob.Encoder,
// *json.Encoder and go-msgpack's encoder satisfy it.
type Encoder interface {
	Encode(v any) error
}

// Decoder reads one value from a snapshot stream, as written by the matching
// Encoder.
type Decoder interface {
	Decode(v any) error
}

// ErrBadSnapshot is returned by Restore when the stream does not start with
// a catalog section this version can read.
var ErrBadSnapshot = errors.New("not a catalog snapshot")

const (
	snapshotFormat  = "meridian-catalog"
	snapshotVersion = 1
)

// snapshotHeader opens the catalog's section of a snapshot and says how many
// records of each kind follow, so Restore reads exactly what Snapshot wrote.
type snapshotHeader struct {
	Format   string
	Version  int
	Nodes    int
	Services int
	Checks   int
	Indexes  int
}

// serviceRecord is a service row in a snapshot.
type serviceRecord struct {
	Node    string
	Service *Service
}

// Snapshot writes every catalog row visible in tx to enc: a header with the
// counts, then the nodes, services, checks and index rows (each node's
// index as a "node.<name>" row, as versions with a row per kind wrote it).
// The caller may write other sections before or after it on the same
// stream.
func Snapshot(tx *memdb.Txn, enc Encoder) error {
	idxs, err := collect[*indexRow](tx, tableIndex, "id")
	if err != nil {
		return fmt.Errorf("snapshot catalog: %w", err)
	}
	h := snapshotHeader{Format: snapshotFormat, Version: snapshotVersion}
	err = eachRow(tx, func(r *nodeRow) (bool, error) {
		h.Nodes++
		h.Services += len(r.services)
		h.Checks += len(r.checks)
		idxs = append(idxs, &indexRow{Key: nodeIndexPrefix + strings.ToLower(r.node.Node), Value: r.index})
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("snapshot catalog: %w", err)
	}
	h.Indexes = len(idxs)
	slices.SortFunc(idxs, func(a, b *indexRow) int { return strings.Compare(a.Key, b.Key) })
	if err := enc.Encode(&h); err != nil {
		return fmt.Errorf("snapshot catalog header: %w", err)
	}
	// Three passes over the rows, so that the records come kind by kind
	// and checks are built one at a time.
	passes := []func(r *nodeRow) error{
		func(r *nodeRow) error {
			return wrapIf(enc.Encode(r.node), "snapshot node %q", r.node.Node)
		},
		func(r *nodeRow) error {
			for _, s := range r.services {
				if err := enc.Encode(&serviceRecord{Node: r.node.Node, Service: s}); err != nil {
					return fmt.Errorf("snapshot service %q on node %q: %w", s.ID, r.node.Node, err)
				}
			}
			return nil
		},
		func(r *nodeRow) error {
			for _, c := range r.checks {
				if err := enc.Encode(r.healthCheck(c)); err != nil {
					return fmt.Errorf("snapshot check %q on node %q: %w", c.id, r.node.Node, err)
				}
			}
			return nil
		},
	}
	for _, pass := range passes {
		if err := eachRow(tx, func(r *nodeRow) (bool, error) { return true, pass(r) }); err != nil {
			return err
		}
	}
	for _, r := range idxs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("snapshot index %q: %w", r.Key, err)
		}
	}
	return nil
}

// Restore reads one catalog section written by Snapshot from dec into tx, a
// write transaction on an empty database, keeping every stored index as it
// was. It reads nothing past the section. The rows are decoded on a
// goroutine of their own while this one stores them (decoding by
// reflection took as long as storing), and that goroutine has ended when
// Restore returns.
func Restore(tx *memdb.Txn, dec Decoder) error {
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("restore catalog header: %w", err)
	}
	if h.Format != snapshotFormat || h.Version != snapshotVersion {
		return fmt.Errorf("restore catalog: format %q version %d: %w", h.Format, h.Version, ErrBadSnapshot)
	}
	t, err := internsOf(tx)
	if err != nil {
		return fmt.Errorf("restore catalog: %w", err)
	}
	batches := make(chan []any, 4)
	stop := make(chan struct{})
	decoded := make(chan error, 1)
	go func() {
		decoded <- decodeRows(dec, &h, batches, stop)
		close(batches)
	}()
	err = storeRows(tx, t, &h, batches)
	if err != nil {
		close(stop)
		for range batches { // let the decoder see stop
		}
		<-decoded
		return err
	}
	return <-decoded
}

// restoreBatch is how many rows the decoder hands over at a time.
const restoreBatch = 256

// decodeRows decodes the section's rows in order (nodes, services, checks,
// index rows) and sends them in batches, until they are all sent or stop
// closes.
func decodeRows(dec Decoder, h *snapshotHeader, batches chan<- []any, stop <-chan struct{}) error {
	kinds := []struct {
		n    int
		what string
		v    func() any
	}{
		{h.Nodes, "node", func() any { return new(Node) }},
		{h.Services, "service", func() any { return new(serviceRecord) }},
		{h.Checks, "check", func() any { return new(HealthCheck) }},
		{h.Indexes, "index", func() any { return new(indexRow) }},
	}
	batch := make([]any, 0, restoreBatch)
	for _, k := range kinds {
		for i := 0; i < k.n; i++ {
			v := k.v()
			if err := dec.Decode(v); err != nil {
				return fmt.Errorf("restore %s %d of %d: %w", k.what, i+1, k.n, err)
			}
			if r, ok := v.(*serviceRecord); ok && r.Service == nil {
				return fmt.Errorf("restore service %d of %d: no service: %w", i+1, k.n, ErrBadSnapshot)
			}
			if batch = append(batch, v); len(batch) == restoreBatch {
				select {
				case batches <- batch:
				case <-stop:
					return nil
				}
				batch = make([]any, 0, restoreBatch)
			}
		}
	}
	if len(batch) > 0 {
		select {
		case batches <- batch:
		case <-stop:
		}
	}
	return nil
}

// storeRows stores the decoded rows once they are all read: a node's
// services and checks come after every node, and its row is stored whole.
func storeRows(tx *memdb.Txn, t *interns, h *snapshotHeader, batches <-chan []any) error {
	rows := make(map[string]*nodeRow, max(0, min(h.Nodes, 1<<16)))
	var order []*nodeRow
	var hold held // every interned value stored, counted at commit
	for batch := range batches {
		for _, v := range batch {
			switch r := v.(type) {
			case *Node:
				t.internNode(tx, r)
				row := &nodeRow{node: r, index: r.ModifyIndex}
				rows[strings.ToLower(r.Node)] = row
				order = append(order, row)
				hold.add(nodeHeld(r))
			case *serviceRecord:
				row := rows[strings.ToLower(r.Node)]
				if row == nil {
					return fmt.Errorf("restore service %q: node %q not in the snapshot: %w", r.Service.ID, r.Node, ErrBadSnapshot)
				}
				canonicalService(r.Service)
				t.internService(tx, r.Service)
				row.services = append(row.services, r.Service)
				row.index = max(row.index, r.Service.ModifyIndex)
				hold.add(serviceHeld(r.Service))
			case *HealthCheck:
				row := rows[strings.ToLower(r.Node)]
				if row == nil {
					return fmt.Errorf("restore check %q: node %q not in the snapshot: %w", r.CheckID, r.Node, ErrBadSnapshot)
				}
				c := newCheckRow(r)
				t.internCheck(tx, c)
				row.checks = append(row.checks, c)
				row.index = max(row.index, c.modifyIndex)
				hold.add(checkHeld(c))
			case *indexRow:
				if name, ok := strings.CutPrefix(r.Key, nodeIndexPrefix); ok {
					if row := rows[name]; row != nil {
						row.index = max(row.index, r.Value)
					}
					continue
				}
				if err := tx.Insert(tableIndex, r); err != nil {
					return fmt.Errorf("restore index %q: %w", r.Key, err)
				}
			}
		}
	}
	sets := map[string]*btree.BTreeG[string]{}
	ids := newNodeIDs()
	for _, row := range order {
		if row.node.ID != "" {
			ids.ReplaceOrInsert(nodeID{key: lower(row.node.ID), name: row.node.Node})
		}
		slices.SortStableFunc(row.services, func(a, b *Service) int { return cmpFold(a.ID, b.ID) })
		slices.SortStableFunc(row.checks, func(a, b *checkRow) int { return cmpFold(a.id, b.id) })
		if err := putRow(tx, row); err != nil {
			return fmt.Errorf("restore node %q: %w", row.node.Node, err)
		}
		for _, s := range row.services {
			k := lower(s.Service)
			if sets[k] == nil {
				sets[k] = newNodeSet()
			}
			sets[k].ReplaceOrInsert(lower(row.node.Node))
		}
	}
	if ids.Len() > 0 {
		if err := tx.Insert(tableNodeIDs, &nodeIDsRow{ids: ids}); err != nil {
			return fmt.Errorf("restore node IDs: %w", err)
		}
	}
	for k, tree := range sets {
		if err := tx.Insert(tableServices, &serviceSetRow{key: k, nodes: tree}); err != nil {
			return fmt.Errorf("restore service %q: %w", k, err)
		}
	}
	t.count(tx, hold, 1)
	return nil
}
