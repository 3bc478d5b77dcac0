package catalog

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

const (
	querySnapshotFormat  = "meridian-queries"
	querySnapshotVersion = 1
)

// querySnapshotHeader opens the prepared queries' section of a snapshot.
type querySnapshotHeader struct {
	Format  string
	Version int
	Queries int
}

// SnapshotQueries writes every prepared query visible in tx to enc: a
// header with the count, then the queries. Their table's index row travels
// in the catalog section (Snapshot), with the others.
func SnapshotQueries(tx *memdb.Txn, enc Encoder) error {
	qs, err := collect[*PreparedQuery](tx, tableQueries, "id")
	if err != nil {
		return fmt.Errorf("snapshot prepared queries: %w", err)
	}
	h := querySnapshotHeader{Format: querySnapshotFormat, Version: querySnapshotVersion, Queries: len(qs)}
	if err := enc.Encode(&h); err != nil {
		return fmt.Errorf("snapshot prepared queries header: %w", err)
	}
	for _, q := range qs {
		if err := enc.Encode(q); err != nil {
			return fmt.Errorf("snapshot prepared query %q: %w", q.ID, err)
		}
	}
	return nil
}

// RestoreQueries reads one section written by SnapshotQueries from dec into
// tx, a write transaction on a database without queries, keeping every
// stored index. It reads nothing past the section.
func RestoreQueries(tx *memdb.Txn, dec Decoder) error {
	var h querySnapshotHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("restore prepared queries header: %w", err)
	}
	if h.Format != querySnapshotFormat || h.Version != querySnapshotVersion {
		return fmt.Errorf("restore prepared queries: format %q version %d: %w", h.Format, h.Version, ErrBadSnapshot)
	}
	for i := 0; i < h.Queries; i++ {
		q := new(PreparedQuery)
		if err := dec.Decode(q); err != nil {
			return fmt.Errorf("restore prepared query %d of %d: %w", i+1, h.Queries, err)
		}
		if q.ID == "" {
			return fmt.Errorf("restore prepared query %d of %d: no ID: %w", i+1, h.Queries, ErrBadSnapshot)
		}
		if err := tx.Insert(tableQueries, q); err != nil {
			return fmt.Errorf("restore prepared query %q: %w", q.ID, err)
		}
	}
	return nil
}
