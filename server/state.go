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
	tx := s.cur.Load().db.Txn(true)
	if err := fn(tx); err != nil {
		tx.Abort()
		return err
	}
	tx.Commit()
	return nil
}

// replace installs a restored database and wakes every query of the old one.
func (s *state) replace(sdb *stateDB) {
	old := s.cur.Swap(sdb)
	close(old.abandon)
}
