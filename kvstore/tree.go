package kvstore

import (
	"fmt"
	"strings"
	"weak"

	"github.com/google/btree"
	memdb "github.com/hashicorp/go-memdb"
)

// The entries are not memdb rows: a radix tree costs some 500 bytes a key
// in nodes, leaves and watch channels. They live in a copy-on-write B-tree
// of records (record.go), 148 to 168 bytes of heap for a 100-byte value
// under a 13-byte key (128 its record, the rest its slot in a node that is
// nearly full after a restore, half full after writes in key order), whose
// current version is the one row of tableKV. A write transaction clones
// the tree (at once: nodes are copied as they are first written), changes
// the clone in place and stores it as a new version of the row, so that it
// commits or aborts with every other change of the memdb transaction, and
// each read transaction reads the version of its snapshot. Blocking reads
// watch keys and prefixes in a registry (watches.go) that a write tells,
// once committed, which keys it changed.

// treeDegree is the B-tree's degree: nodes hold 31 to 63 records (16 bytes
// each, a string header). A write copies the nodes on its path, some 4 of
// 1.5 KB for a million keys, once per transaction.
const treeDegree = 32

// kvRowID is the ID of tableKV's one row.
const kvRowID = "entries"

// kvTable is a version of tableKV's one row: every entry as of some
// transaction.
type kvTable struct {
	entries *btree.BTreeG[record]
	// seq counts the write transactions that changed an entry; reads
	// register watches with the seq of their snapshot.
	seq uint64
	// watches is the watch registry of the database, shared by every
	// version of the row.
	watches *watches
	// owner is the write transaction that made this version: it alone
	// changes entries in place, any other clones them first. A weak
	// pointer compares equal only with one made from the same transaction
	// and keeps none alive.
	owner weak.Pointer[memdb.Txn]
	// changed lists the keys the owner changed, for the watches once it
	// commits; then it is dropped.
	changed []string
}

func newTree() *btree.BTreeG[record] { return btree.NewG(treeDegree, lessRecord) }

// readTable returns the entries tx sees. Before the first write there is
// no row: ws then receives the channel that fires when the row is made.
func readTable(tx *memdb.Txn, ws memdb.WatchSet) (*kvTable, error) {
	ch, raw, err := tx.FirstWatch(tableKV, "id", kvRowID)
	if err != nil {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	if t, ok := raw.(*kvTable); ok {
		return t, nil
	}
	ws.Add(ch)
	return &kvTable{entries: newTree()}, nil
}

// writeTable returns the entries tx may change: its own version of the
// row, made on its first call. The watches hear of the changes recorded
// in changed when tx commits.
func writeTable(tx *memdb.Txn) (*kvTable, error) {
	raw, err := tx.First(tableKV, "id", kvRowID)
	if err != nil {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	cur, _ := raw.(*kvTable)
	me := weak.Make(tx)
	if cur != nil && cur.owner == me {
		return cur, nil
	}
	t := &kvTable{owner: me}
	if cur == nil {
		t.entries, t.watches = newTree(), newWatches()
	} else {
		t.entries, t.watches, t.seq = cur.entries.Clone(), cur.watches, cur.seq
	}
	t.seq++
	if err := tx.Insert(tableKV, t); err != nil {
		return nil, fmt.Errorf("write entries: %w", err)
	}
	tx.Defer(func() {
		t.watches.notify(t.seq, t.changed)
		t.changed = nil
	})
	return t, nil
}

// watch adds to ws the channel that fires when key changes or, with
// prefix, when any key under it does.
func (t *kvTable) watch(ws memdb.WatchSet, key string, prefix bool) {
	if ws != nil && t.watches != nil {
		t.watches.add(ws, t.seq, key, prefix)
	}
}

// get returns the record of key.
func (t *kvTable) get(key string) (record, bool) {
	return t.entries.Get(probe(key))
}

// under calls fn for each record whose key starts with prefix, in key
// order, until fn returns false.
func (t *kvTable) under(prefix string, fn func(r record) bool) {
	t.entries.AscendGreaterOrEqual(probe(prefix), func(r record) bool {
		return strings.HasPrefix(r.key(), prefix) && fn(r)
	})
}

// put stores r, which replaces the record of its key if any.
func (t *kvTable) put(r record) {
	t.entries.ReplaceOrInsert(r)
	t.changed = append(t.changed, r.key())
}

// remove deletes the record of key.
func (t *kvTable) remove(key string) {
	t.entries.Delete(probe(key))
	t.changed = append(t.changed, key)
}
