package catalog

import (
	"errors"
	"fmt"

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
// counts, then the nodes, services, checks and index rows. The caller may
// write other sections before or after it on the same stream.
func Snapshot(tx *memdb.Txn, enc Encoder) error {
	nodes, err := collect[*Node](tx, tableNodes, "id")
	if err != nil {
		return fmt.Errorf("snapshot catalog: %w", err)
	}
	svcs, err := collect[*serviceRow](tx, tableServices, "id")
	if err != nil {
		return fmt.Errorf("snapshot catalog: %w", err)
	}
	checks, err := collect[*HealthCheck](tx, tableChecks, "id")
	if err != nil {
		return fmt.Errorf("snapshot catalog: %w", err)
	}
	idxs, err := collect[*indexRow](tx, tableIndex, "id")
	if err != nil {
		return fmt.Errorf("snapshot catalog: %w", err)
	}
	h := snapshotHeader{
		Format: snapshotFormat, Version: snapshotVersion,
		Nodes: len(nodes), Services: len(svcs), Checks: len(checks), Indexes: len(idxs),
	}
	if err := enc.Encode(&h); err != nil {
		return fmt.Errorf("snapshot catalog header: %w", err)
	}
	for _, n := range nodes {
		if err := enc.Encode(n); err != nil {
			return fmt.Errorf("snapshot node %q: %w", n.Node, err)
		}
	}
	for _, r := range svcs {
		if err := enc.Encode(&serviceRecord{Node: r.node, Service: r.svc}); err != nil {
			return fmt.Errorf("snapshot service %q on node %q: %w", r.svc.ID, r.node, err)
		}
	}
	for _, c := range checks {
		if err := enc.Encode(c); err != nil {
			return fmt.Errorf("snapshot check %q on node %q: %w", c.CheckID, c.Node, err)
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
// was. It reads nothing past the section.
func Restore(tx *memdb.Txn, dec Decoder) error {
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("restore catalog header: %w", err)
	}
	if h.Format != snapshotFormat || h.Version != snapshotVersion {
		return fmt.Errorf("restore catalog: format %q version %d: %w", h.Format, h.Version, ErrBadSnapshot)
	}
	for i := 0; i < h.Nodes; i++ {
		n := new(Node)
		if err := dec.Decode(n); err != nil {
			return fmt.Errorf("restore node %d of %d: %w", i+1, h.Nodes, err)
		}
		if err := tx.Insert(tableNodes, n); err != nil {
			return fmt.Errorf("restore node %q: %w", n.Node, err)
		}
	}
	for i := 0; i < h.Services; i++ {
		r := new(serviceRecord)
		if err := dec.Decode(r); err != nil {
			return fmt.Errorf("restore service %d of %d: %w", i+1, h.Services, err)
		}
		if r.Service == nil {
			return fmt.Errorf("restore service %d of %d: no service: %w", i+1, h.Services, ErrBadSnapshot)
		}
		canonicalService(r.Service)
		if err := tx.Insert(tableServices, &serviceRow{node: r.Node, svc: r.Service}); err != nil {
			return fmt.Errorf("restore service %q on node %q: %w", r.Service.ID, r.Node, err)
		}
	}
	for i := 0; i < h.Checks; i++ {
		c := new(HealthCheck)
		if err := dec.Decode(c); err != nil {
			return fmt.Errorf("restore check %d of %d: %w", i+1, h.Checks, err)
		}
		canonicalCheck(c)
		if err := tx.Insert(tableChecks, c); err != nil {
			return fmt.Errorf("restore check %q on node %q: %w", c.CheckID, c.Node, err)
		}
	}
	for i := 0; i < h.Indexes; i++ {
		r := new(indexRow)
		if err := dec.Decode(r); err != nil {
			return fmt.Errorf("restore index %d of %d: %w", i+1, h.Indexes, err)
		}
		if err := tx.Insert(tableIndex, r); err != nil {
			return fmt.Errorf("restore index %q: %w", r.Key, err)
		}
	}
	return nil
}
