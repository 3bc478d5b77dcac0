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

// Version 1 wrote each entry as a struct (a map of field names, decoded
// by reflection); version 2 writes each as one byte string (entryRecord),
// half the decoding time and a third less space for small values. Both
// restore.
const (
	snapshotFormat  = "meridian-kvstore"
	snapshotVersion = 2
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
	entries, err := readTable(tx, nil)
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
		Entries: entries.entries.Len(), Tombstones: len(stones), Sessions: len(sessions),
		LockDelays: len(delays), Indexes: len(idxs),
	}
	if err := enc.Encode(&h); err != nil {
		return fmt.Errorf("snapshot kvstore header: %w", err)
	}
	var rec []byte
	entries.entries.Ascend(func(r record) bool {
		f := r.fields()
		rec = appendSnapshotRecord(rec[:0], &f)
		if err = enc.Encode(rec); err != nil {
			err = fmt.Errorf("snapshot key %q: %w", f.key, err)
		}
		return err == nil
	})
	if err != nil {
		return err
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
	if h.Format != snapshotFormat || (h.Version != 1 && h.Version != snapshotVersion) {
		return fmt.Errorf("restore kvstore: format %q version %d: %w", h.Format, h.Version, ErrBadSnapshot)
	}
	t, err := writeTable(tx)
	if err != nil {
		return fmt.Errorf("restore kvstore: %w", err)
	}
	l := &loader{tx: tx, t: t}
	if h.Version == 1 {
		err = restoreRows(dec, h.Entries, "key", func(e *DirEntry) error {
			if err := validateEntry(e); err != nil {
				return fmt.Errorf("%w: %w", ErrBadSnapshot, err)
			}
			return l.add(newRecord(e))
		})
	} else {
		err = restoreEntryRecords(l, dec, h.Entries)
	}
	if err == nil {
		err = l.flush()
	}
	if err != nil {
		return err
	}
	if err := restoreRows(dec, h.Tombstones, "tombstone", func(s *tombstone) error { return tx.Insert(tableTombstones, s) }); err != nil {
		return err
	}
	err = restoreRows(dec, h.Sessions, "session", func(r *sessionRecord) error {
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

// restoreEntryRecords reads n entry records from dec into l. Each is
// decoded into one buffer, reused, and stored in one allocation of its
// own: the restore makes little garbage.
func restoreEntryRecords(l *loader, dec Decoder, n int) error {
	if n < 0 {
		return fmt.Errorf("restore kvstore: %d keys: %w", n, ErrBadSnapshot)
	}
	var rec, buf []byte
	for i := range n {
		rec = rec[:0]
		if err := dec.Decode(&rec); err != nil {
			return fmt.Errorf("restore key %d of %d: %w", i+1, n, err)
		}
		f, err := parseSnapshotRecord(rec)
		if err != nil {
			return fmt.Errorf("restore key %d of %d: %w", i+1, n, err)
		}
		buf = appendRecord(buf[:0], &f)
		if err := l.add(record(buf)); err != nil {
			return fmt.Errorf("restore key %d of %d: %w", i+1, n, err)
		}
	}
	return nil
}

// loadRun is how many records a loader holds before it inserts them.
const loadRun = 4096

// loader stores the entries of a snapshot into t, the entries of tx, and
// their lock holders into tx. The entries come in key order, and
// google/btree splits a full node in half, so inserted in that order they
// would leave every node but the last half empty. The loader holds them by
// runs of loadRun and inserts every other one, then the others, which fill
// the gaps the first left: nodes end nearly full, some 16 bytes a key
// less than in order. Entries out of order only lose that gain.
type loader struct {
	tx  *memdb.Txn
	t   *kvTable
	run []record
}

// add stores r, at the latest on flush.
func (l *loader) add(r record) error {
	if f := r.fields(); f.session != "" {
		if err := l.tx.Insert(tableLocks, &lockRow{Key: f.key, Session: f.session}); err != nil {
			return fmt.Errorf("key %q: %w", f.key, err)
		}
	}
	l.run = append(l.run, r)
	if len(l.run) == loadRun {
		return l.flush()
	}
	return nil
}

// flush inserts the records held.
func (l *loader) flush() error {
	for first := range 2 {
		for i := first; i < len(l.run); i += 2 {
			if _, dup := l.t.entries.ReplaceOrInsert(l.run[i]); dup {
				return fmt.Errorf("key %q twice: %w", l.run[i].key(), ErrBadSnapshot)
			}
		}
	}
	clear(l.run)
	l.run = l.run[:0]
	return nil
}
