package server

import (
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
)

// state holds the server's one go-memdb database. A snapshot restore swaps in
// a new database and closes the old one's abandon channel, so blocking
// queries parked on the old database wake up and read the new one.
type state struct {
	cur atomic.Pointer[stateDB]

	// batch, while the FSM applies a batch of entries, is the one write
	// transaction they share; failed records that a command's write failed
	// in it. Only the FSM goroutine touches either.
	batch  *memdb.Txn
	failed bool
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
	for name, t := range acl.Tables() {
		tables[name] = t
	}
	for name, t := range autopilotTables() {
		tables[name] = t
	}
	for name, t := range kvReplicationTables() {
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
// the FSM writes. Inside writeBatch, fn runs in the shared transaction and a
// failure marks the whole batch failed.
func (s *state) write(fn func(tx *memdb.Txn) error) error {
	if s.batch != nil {
		if err := fn(s.batch); err != nil {
			s.failed = true
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

// writeBatch runs apply(i) for i from 0 to n-1 with every write sharing one
// transaction, committed once: the radix tree's path copies and the commit's
// notifications are paid once per batch rather than once per command. It
// stops at the first failed write, aborts everything and reports false; the
// caller then applies the commands one by one, so that the failed one
// leaves nothing half-done and the others their own effects.
func (s *state) writeBatch(n int, apply func(i int)) bool {
	s.batch = s.cur.Load().db.Txn(true)
	s.failed = false
	defer func() { s.batch = nil }()
	for i := 0; i < n && !s.failed; i++ {
		apply(i)
	}
	if s.failed {
		s.batch.Abort()
		return false
	}
	s.batch.Commit()
	return true
}

// replace installs a restored database and wakes every query of the old one.
func (s *state) replace(sdb *stateDB) {
	old := s.cur.Swap(sdb)
	close(old.abandon)
}
