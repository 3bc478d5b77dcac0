package kvstore

import (
	"errors"
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Encoder writes one value to a snapshot stream; *gob.Encoder,
// *json.Encoder and go-msgpack's encoder satisfy it (and catalog.Encoder).
type Encoder interface {
	Encode(v any) error
}

// Decoder reads one value from a snapshot stream, as written by the matching
// Encoder.
type Decoder interface {
	Decode(v any) error
}

// ErrBadSnapshot is returned by Restore when the stream does not start with
// a kvstore section this version can read.
var ErrBadSnapshot = errors.New("not a kvstore snapshot")

const (
	snapshotFormat  = "meridian-kvstore"
	snapshotVersion = 1
)

// snapshotHeader opens kvstore's section of a snapshot and says how many
// records of each kind follow, so Restore reads exactly what Snapshot wrote.
type snapshotHeader struct {
	Format     string
	Version    int
	Entries    int
	Tombstones int
	Sessions   int
	LockDelays int
	Indexes    int
}

// sessionRecord is a session in a snapshot. It is not a Session so that
// LockDelay round-trips as plain nanoseconds through every codec (Session's
// JSON decoding reads small numbers as seconds).
type sessionRecord struct {
	ID            string
	Name          string
	Node          string
	LockDelay     int64
	Behavior      string
	TTL           string
	Checks        []string
	NodeChecks    []string
	ServiceChecks []ServiceCheck
	CreateIndex   uint64
	ModifyIndex   uint64
}

// Snapshot writes every kvstore row visible in tx to enc: a header with the
// counts, then the entries, tombstones, sessions, lock delays and index
// rows. Lock delays are replicated state here (KVLock consults them on
// every server), so they are written too. The caller writes catalog's
// section before it on the same stream.
func Snapshot(tx *memdb.Txn, enc Encoder) error {
	entries, err := collect[*DirEntry](tx, tableKV, "id")
	if err != nil {
		return fmt.Errorf("snapshot kvstore: %w", err)
	}
	stones, err := collect[*tombstone](tx, tableTombstones, "id")
	if err != nil {
		return fmt.Errorf("snapshot kvstore: %w", err)
	}
	sessions, err := collect[*Session](tx, tableSessions, "id")
	if err != nil {
		return fmt.Errorf("snapshot kvstore: %w", err)
	}
	delays, err := collect[*lockDelay](tx, tableLockDelays, "id")
	if err != nil {
		return fmt.Errorf("snapshot kvstore: %w", err)
	}
	idxs, err := collect[*indexRow](tx, tableIndex, "id")
	if err != nil {
		return fmt.Errorf("snapshot kvstore: %w", err)
	}
	h := snapshotHeader{
		Format: snapshotFormat, Version: snapshotVersion,
		Entries: len(entries), Tombstones: len(stones), Sessions: len(sessions),
		LockDelays: len(delays), Indexes: len(idxs),
	}
	if err := enc.Encode(&h); err != nil {
		return fmt.Errorf("snapshot kvstore header: %w", err)
	}
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("snapshot key %q: %w", e.Key, err)
		}
	}
	for _, s := range stones {
		if err := enc.Encode(s); err != nil {
			return fmt.Errorf("snapshot tombstone %q: %w", s.Key, err)
		}
	}
	for _, s := range sessions {
		r := sessionRecord{
			ID: s.ID, Name: s.Name, Node: s.Node, LockDelay: int64(s.LockDelay),
			Behavior: s.Behavior, TTL: s.TTL, Checks: s.Checks, NodeChecks: s.NodeChecks,
			ServiceChecks: s.ServiceChecks, CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex,
		}
		if err := enc.Encode(&r); err != nil {
			return fmt.Errorf("snapshot session %q: %w", s.ID, err)
		}
	}
	for _, d := range delays {
		if err := enc.Encode(d); err != nil {
			return fmt.Errorf("snapshot lock delay %q: %w", d.Key, err)
		}
	}
	for _, r := range idxs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("snapshot index %q: %w", r.Key, err)
		}
	}
	return nil
}

// Restore reads one kvstore section written by Snapshot from dec into tx,
// a write transaction on a database without kvstore rows, keeping every
// stored index as it was. It reads nothing past the section.
func Restore(tx *memdb.Txn, dec Decoder) error {
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("restore kvstore header: %w", err)
	}
	if h.Format != snapshotFormat || h.Version != snapshotVersion {
		return fmt.Errorf("restore kvstore: format %q version %d: %w", h.Format, h.Version, ErrBadSnapshot)
	}
	if err := restoreRows(dec, h.Entries, "key", func(e *DirEntry) error { return tx.Insert(tableKV, e) }); err != nil {
		return err
	}
	if err := restoreRows(dec, h.Tombstones, "tombstone", func(s *tombstone) error { return tx.Insert(tableTombstones, s) }); err != nil {
		return err
	}
	err := restoreRows(dec, h.Sessions, "session", func(r *sessionRecord) error {
		return tx.Insert(tableSessions, &Session{
			ID: r.ID, Name: r.Name, Node: r.Node, LockDelay: time.Duration(r.LockDelay),
			Behavior: r.Behavior, TTL: r.TTL, Checks: r.Checks, NodeChecks: r.NodeChecks,
			ServiceChecks: r.ServiceChecks, CreateIndex: r.CreateIndex, ModifyIndex: r.ModifyIndex,
		})
	})
	if err != nil {
		return err
	}
	if err := restoreRows(dec, h.LockDelays, "lock delay", func(d *lockDelay) error { return tx.Insert(tableLockDelays, d) }); err != nil {
		return err
	}
	return restoreRows(dec, h.Indexes, "index", func(r *indexRow) error { return tx.Insert(tableIndex, r) })
}

// restoreRows decodes n records of type T and stores each with insert.
func restoreRows[T any](dec Decoder, n int, what string, insert func(*T) error) error {
	if n < 0 {
		return fmt.Errorf("restore kvstore: %d %ss: %w", n, what, ErrBadSnapshot)
	}
	for i := range n {
		v := new(T)
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("restore %s %d of %d: %w", what, i+1, n, err)
		}
		if err := insert(v); err != nil {
			return fmt.Errorf("restore %s %d of %d: %w", what, i+1, n, err)
		}
	}
	return nil
}
