package kvstore

import (
	"fmt"
	"strings"

	memdb "github.com/hashicorp/go-memdb"
)

// Table names. They carry the package's prefixes because catalog adds its
// tables to the same database.
const (
	tableKV         = "kv_entries"
	tableLocks      = "kv_locks"
	tableTombstones = "kv_tombstones"
	tableLockDelays = "kv_lock_delays"
	tableIndex      = "kv_index"
	tableSessions   = "session_sessions"
)

// Rows of tableIndex that are not keyed by a table name.
const (
	// indexReaped holds the highest index up to which tombstones have been
	// reaped; prefix reads never answer below it (see prefixIndex).
	indexReaped = "kv_tombstones_reaped"
)

// tombstone records that Key was deleted at Index, so that a recursive read
// of a prefix that lost a key still sees its index move.
type tombstone struct {
	Key   string
	Index uint64
}

// lockRow records that Session holds Key, so that SessionDestroy finds
// the keys a session holds.
type lockRow struct {
	Key     string
	Session string
}

// lockDelay says that Key may not be locked by any session before Until
// (Unix nanoseconds of the leader's clock as carried by the commands).
type lockDelay struct {
	Key   string
	Until int64
}

// indexRow is what tableIndex stores: the highest Raft index at which the
// thing named by Key changed.
type indexRow struct {
	Key   string
	Value uint64
}

// Tables returns the schemas of kvstore's go-memdb tables, to be merged with
// catalog.Tables() into one memdb.DBSchema:
//
//   - "kv_entries": one row, every entry (tree.go); index "id".
//   - "kv_locks": the keys a session holds, with the session; indexes "id"
//     (the key) and "session".
//   - "kv_tombstones": deleted keys and the index they were deleted at,
//     until KVReapTombstones removes them; index "id" (prefix lookups too).
//   - "kv_lock_delays": keys that no session may lock before a time, set
//     when a session holding them is destroyed; index "id".
//   - "session_sessions": *Session rows; indexes "id", "node"
//     (case-insensitive) and "check" ((node, check ID), case-insensitive,
//     one entry per node check and service check).
//   - "kv_index": the index rows: "kv_entries" (every KV change, deletes
//     included), "session_sessions", and the tombstone reap watermark.
//
// Each call returns fresh values that the caller may keep.
func Tables() map[string]*memdb.TableSchema {
	kvID := func(any) (string, bool) { return kvRowID, true }
	lockKey := func(obj any) (string, bool) { return obj.(*lockRow).Key, true }
	lockSession := func(obj any) (string, bool) { return obj.(*lockRow).Session, true }
	tombKey := func(obj any) (string, bool) { return obj.(*tombstone).Key, true }
	delayKey := func(obj any) (string, bool) { return obj.(*lockDelay).Key, true }
	idxKey := func(obj any) (string, bool) { return obj.(*indexRow).Key, true }
	sessID := func(obj any) (string, bool) { return obj.(*Session).ID, true }
	sessNode := func(obj any) (string, bool) { return obj.(*Session).Node, true }

	return map[string]*memdb.TableSchema{
		tableKV: {
			Name: tableKV,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &stringIndexer{fn: kvID}},
			},
		},
		tableLocks: {
			Name: tableLocks,
			Indexes: map[string]*memdb.IndexSchema{
				"id":      {Name: "id", Unique: true, Indexer: &stringIndexer{fn: lockKey}},
				"session": {Name: "session", Indexer: &stringIndexer{fn: lockSession, term: true}},
			},
		},
		tableTombstones: {
			Name: tableTombstones,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &stringIndexer{fn: tombKey}},
			},
		},
		tableLockDelays: {
			Name: tableLockDelays,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &stringIndexer{fn: delayKey}},
			},
		},
		tableIndex: {
			Name: tableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &stringIndexer{fn: idxKey}},
			},
		},
		tableSessions: {
			Name: tableSessions,
			Indexes: map[string]*memdb.IndexSchema{
				"id":    {Name: "id", Unique: true, Indexer: &stringIndexer{fn: sessID}},
				"node":  {Name: "node", Indexer: &stringIndexer{fn: sessNode, term: true, lower: true}},
				"check": {Name: "check", AllowMissing: true, Indexer: checkIndexer{}},
			},
		},
	}
}

// stringIndexer indexes the string computed by fn, without reflection.
// With term set every value ends in a NUL, so that a lookup of "web" in a
// non-unique index does not match "web1" (memdb appends the primary key to
// those). Unique indexes leave it off so that prefix lookups see raw keys.
type stringIndexer struct {
	fn    func(obj any) (string, bool)
	term  bool
	lower bool
}

var (
	_ memdb.SingleIndexer = (*stringIndexer)(nil)
	_ memdb.PrefixIndexer = (*stringIndexer)(nil)
)

// FromObject implements memdb.SingleIndexer.
func (s *stringIndexer) FromObject(obj any) (bool, []byte, error) {
	v, ok := s.fn(obj)
	if !ok {
		return false, nil, nil
	}
	return true, s.key(v, s.term), nil
}

// FromArgs implements memdb.Indexer.
func (s *stringIndexer) FromArgs(args ...any) ([]byte, error) {
	v, err := oneString(args)
	if err != nil {
		return nil, err
	}
	return s.key(v, s.term), nil
}

// PrefixFromArgs implements memdb.PrefixIndexer: the value without its
// terminator.
func (s *stringIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	v, err := oneString(args)
	if err != nil {
		return nil, err
	}
	return s.key(v, false), nil
}

func (s *stringIndexer) key(v string, term bool) []byte {
	if s.lower {
		v = strings.ToLower(v)
	}
	b := make([]byte, 0, len(v)+1)
	b = append(b, v...)
	if term {
		b = append(b, 0)
	}
	return b
}

func oneString(args []any) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("index takes 1 argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return "", fmt.Errorf("index argument %v: want a string, got %T", args[0], args[0])
	}
	return s, nil
}

// checkIndexer indexes a session under (node, check ID) for each check it
// is bound to, lower-cased: node checks, legacy Checks and service checks
// (which are checks on the session's node too).
type checkIndexer struct{}

var _ memdb.MultiIndexer = checkIndexer{}

// FromObject implements memdb.MultiIndexer.
func (checkIndexer) FromObject(obj any) (bool, [][]byte, error) {
	s := obj.(*Session)
	ids := s.checkIDs()
	if len(ids) == 0 {
		return false, nil, nil
	}
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		out = append(out, checkKey(s.Node, id))
	}
	return true, out, nil
}

// FromArgs implements memdb.Indexer: (node, check ID).
func (checkIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("index takes 2 arguments, got %d", len(args))
	}
	node, ok1 := args[0].(string)
	id, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("index arguments %v: want two strings", args)
	}
	return checkKey(node, id), nil
}

func checkKey(node, id string) []byte {
	return []byte(strings.ToLower(node) + "\x00" + strings.ToLower(id) + "\x00")
}
