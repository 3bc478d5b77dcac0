package server

import (
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
)

// state holds the server's one go-memdb database. A snapshot restore swaps in
// a new database and closes the old one's abandon channel, so blocking
// queries parked on the old database wake up and read the new one.
type state struct {
	cur atomic.Pointer[stateDB]

	// batch, while set, is the one write transaction every write of a
	// Raft batch goes into; batchFailed records that one of them failed.
	// Only the FSM's goroutine touches them.
	batch       *memdb.Txn
	batchFailed bool
}

type stateDB struct {
	db      *memdb.MemDB
	abandon chan struct{}
}

// schema is the union of every package's tables.
func schema() *memdb.DBSchema {
	tables := map[string]*memdb.TableSchema{}
	for name, t := range catalog.Tables() {
		tables[name] = t
	}
	for name, t := range kvstore.Tables() {
		tables[name] = t
	}
	return &memdb.DBSchema{Tables: tables}
}

func newStateDB() (*stateDB, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("create state store: %w", err)
	}
	return &stateDB{db: db, abandon: make(chan struct{})}, nil
}

func newState() (*state, error) {
	sdb, err := newStateDB()
	if err != nil {
		return nil, err
	}
	s := &state{}
	s.cur.Store(sdb)
	return s, nil
}

// read returns a read transaction and the channel that closes when the
// database it reads is replaced.
func (s *state) read() (*memdb.Txn, <-chan struct{}) {
	sdb := s.cur.Load()
	return sdb.db.Txn(false), sdb.abandon
}

// write runs fn in a write transaction and commits it when fn succeeds. Only
// the FSM writes.
func (s *state) write(fn func(tx *memdb.Txn) error) error {
	if s.batch != nil {
		if err := fn(s.batch); err != nil {
			s.batchFailed = true
			return err
		}
		return nil
	}
	tx := s.cur.Load().db.Txn(true)
	if err := fn(tx); err != nil {
		tx.Abort()
		return err
	}
	tx.Commit()
	return nil
}

// beginBatch makes the writes that follow share one transaction.
func (s *state) beginBatch() {
	s.batch = s.cur.Load().db.Txn(true)
	s.batchFailed = false
}

// endBatch commits the batch's transaction, or aborts it when a write of
// the batch failed (a failed write may have left partial changes in it);
// it reports whether it committed.
func (s *state) endBatch() bool {
	tx, failed := s.batch, s.batchFailed
	s.batch, s.batchFailed = nil, false
	if failed {
		tx.Abort()
		return false
	}
	tx.Commit()
	return true
}

// replace installs a restored database and wakes every query of the old one.
func (s *state) replace(sdb *stateDB) {
	old := s.cur.Swap(sdb)
	close(old.abandon)
}
