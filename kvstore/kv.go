package kvstore

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// KVSet creates or updates e.Key with e's Value and Flags. The lock holder
// and LockIndex of an existing key are kept whatever e says (taking or
// dropping a lock is KVLock's and KVUnlock's job), as is CreateIndex. A set
// that changes nothing moves no index and fires no watch.
func KVSet(tx *memdb.Txn, idx uint64, e *DirEntry) error {
	_, err := kvSet(tx, idx, e)
	return err
}

func kvSet(tx *memdb.Txn, idx uint64, e *DirEntry) (*DirEntry, error) {
	if err := validateEntry(e); err != nil {
		return nil, fmt.Errorf("set key: %w", err)
	}
	existing, err := getEntry(tx, e.Key)
	if err != nil {
		return nil, fmt.Errorf("set key %q: %w", e.Key, err)
	}
	return setEntry(tx, idx, e, existing, false)
}

// KVSetCAS is KVSet on a condition: with e.ModifyIndex 0 the key must not
// exist; otherwise it must exist with that ModifyIndex. It reports whether
// the write happened; a failed condition is not an error.
func KVSetCAS(tx *memdb.Txn, idx uint64, e *DirEntry) (bool, error) {
	_, ok, err := kvSetCAS(tx, idx, e)
	return ok, err
}

func kvSetCAS(tx *memdb.Txn, idx uint64, e *DirEntry) (*DirEntry, bool, error) {
	if err := validateEntry(e); err != nil {
		return nil, false, fmt.Errorf("cas key: %w", err)
	}
	existing, err := getEntry(tx, e.Key)
	if err != nil {
		return nil, false, fmt.Errorf("cas key %q: %w", e.Key, err)
	}
	switch {
	case e.ModifyIndex == 0 && existing != nil:
		return nil, false, nil
	case e.ModifyIndex != 0 && (existing == nil || existing.ModifyIndex != e.ModifyIndex):
		return nil, false, nil
	}
	out, err := setEntry(tx, idx, e, existing, false)
	return out, err == nil, err
}

// KVLock acquires e.Key for session e.Session and writes e's Value and
// Flags, as a PUT with ?acquire does. The session must exist
// (ErrSessionNotFound). It reports false, and changes nothing, when another
// session holds the key or when the key is under a lock delay that lasts
// past now. now is the leader's clock when the request was made, carried in
// the Raft command so that every server decides alike; never the local
// clock of the server applying it. LockIndex counts acquisitions: it moves
// unless the session already held the key.
func KVLock(tx *memdb.Txn, idx uint64, now time.Time, e *DirEntry) (bool, error) {
	_, r, err := kvLock(tx, idx, now, e)
	return r == lockGranted && err == nil, err
}

// lockResult says whether kvLock took the lock and, if not, why: Txn
// words the two refusals differently.
type lockResult int

const (
	lockGranted lockResult = iota
	lockHeld
	lockDelayed
)

func kvLock(tx *memdb.Txn, idx uint64, now time.Time, e *DirEntry) (*DirEntry, lockResult, error) {
	if err := validateEntry(e); err != nil {
		return nil, lockHeld, fmt.Errorf("lock key: %w", err)
	}
	if err := sessionMustExist(tx, e.Session); err != nil {
		return nil, lockHeld, fmt.Errorf("lock key %q: %w", e.Key, err)
	}
	existing, err := getEntry(tx, e.Key)
	if err != nil {
		return nil, lockHeld, fmt.Errorf("lock key %q: %w", e.Key, err)
	}
	ne := *e
	switch {
	case existing == nil:
		ne.LockIndex = 1
	case existing.Session == e.Session:
		ne.LockIndex = existing.LockIndex
	case existing.Session != "":
		return nil, lockHeld, nil
	default:
		ne.LockIndex = existing.LockIndex + 1
	}
	if existing == nil || existing.Session != e.Session {
		delayed, err := checkLockDelay(tx, e.Key, now)
		if err != nil {
			return nil, lockHeld, fmt.Errorf("lock key %q: %w", e.Key, err)
		}
		if delayed {
			return nil, lockDelayed, nil
		}
	}
	out, err := setEntry(tx, idx, &ne, existing, true)
	return out, lockGranted, err
}

// KVUnlock releases e.Key if session e.Session holds it, writing e's Value
// and Flags and clearing the holder, as a PUT with ?release does. It
// reports false when the key is absent or held by someone else.
func KVUnlock(tx *memdb.Txn, idx uint64, e *DirEntry) (bool, error) {
	_, ok, err := kvUnlock(tx, idx, e)
	return ok, err
}

func kvUnlock(tx *memdb.Txn, idx uint64, e *DirEntry) (*DirEntry, bool, error) {
	if err := validateEntry(e); err != nil {
		return nil, false, fmt.Errorf("unlock key: %w", err)
	}
	if e.Session == "" {
		return nil, false, fmt.Errorf("unlock key %q: missing session: %w", e.Key, ErrSessionNotFound)
	}
	existing, err := getEntry(tx, e.Key)
	if err != nil {
		return nil, false, fmt.Errorf("unlock key %q: %w", e.Key, err)
	}
	if existing == nil || existing.Session != e.Session {
		return nil, false, nil
	}
	ne := *e
	ne.LockIndex = existing.LockIndex
	ne.Session = ""
	out, err := setEntry(tx, idx, &ne, existing, true)
	return out, err == nil, err
}

// KVDelete deletes key, leaving a tombstone. An absent key is not an error.
func KVDelete(tx *memdb.Txn, idx uint64, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	existing, err := getEntry(tx, key)
	if err != nil || existing == nil {
		return wrapIf(err, "delete key %q", key)
	}
	return deleteEntry(tx, idx, existing.Key, existing.Session)
}

// KVDeleteCAS deletes key if its ModifyIndex is cas. Like Consul it reports
// true for a key that does not exist.
func KVDeleteCAS(tx *memdb.Txn, idx uint64, cas uint64, key string) (bool, error) {
	if err := ValidateKey(key); err != nil {
		return false, fmt.Errorf("delete-cas key: %w", err)
	}
	existing, err := getEntry(tx, key)
	if err != nil {
		return false, fmt.Errorf("delete-cas key %q: %w", key, err)
	}
	if existing == nil {
		return true, nil
	}
	if existing.ModifyIndex != cas {
		return false, nil
	}
	return true, deleteEntry(tx, idx, existing.Key, existing.Session)
}

// KVDeleteTree deletes every key that starts with prefix ("" deletes every
// key), leaving a tombstone for each.
func KVDeleteTree(tx *memdb.Txn, idx uint64, prefix string) error {
	t, err := readTable(tx, nil)
	if err != nil {
		return fmt.Errorf("delete tree %q: %w", prefix, err)
	}
	var doomed []record
	t.under(prefix, func(r record) bool {
		doomed = append(doomed, r)
		return true
	})
	for _, r := range doomed {
		f := r.fields()
		if err := deleteEntry(tx, idx, f.key, f.session); err != nil {
			return fmt.Errorf("delete tree %q: %w", prefix, err)
		}
	}
	return nil
}

// KVReapTombstones removes the tombstones of deletes made at or before
// index upTo, which the leader chooses once no blocking query can still be
// waiting on them (Consul waits tombstone_ttl). idx is the Raft index of the
// reap itself; no index moves, and no watch fires. Prefix reads keep
// answering at least the highest reaped index, so their index never goes
// backwards.
func KVReapTombstones(tx *memdb.Txn, idx uint64, upTo uint64) error {
	_ = idx // The reap changes no answer, so it is recorded at no index.
	stones, err := collect[*tombstone](tx, tableTombstones, "id")
	if err != nil {
		return fmt.Errorf("reap tombstones: %w", err)
	}
	var reaped uint64
	for _, s := range stones {
		if s.Index > upTo {
			continue
		}
		if err := tx.Delete(tableTombstones, s); err != nil {
			return fmt.Errorf("reap tombstone %q: %w", s.Key, err)
		}
		reaped = max(reaped, s.Index)
	}
	if reaped == 0 {
		return nil
	}
	return wrapIf(bumpIndex(tx, indexReaped, reaped), "reap tombstones")
}

// KVGet returns the entry for key, or nil and no error when there is none.
// The index is the entry's ModifyIndex, or for a missing key the KV table's
// index, so a 404 still carries X-Consul-Index. ws receives the key's own
// watch channel: writes to other keys do not fire it (before the first
// write of any key, the first write fires it).
func KVGet(tx *memdb.Txn, ws memdb.WatchSet, key string) (uint64, *DirEntry, error) {
	t, err := readTable(tx, ws)
	if err != nil {
		return 0, nil, fmt.Errorf("get key %q: %w", key, err)
	}
	t.watch(ws, key, false)
	if r, ok := t.get(key); ok {
		e := r.entry()
		return max(e.ModifyIndex, 1), e, nil
	}
	idx, err := indexValue(tx, tableKV)
	if err != nil {
		return 0, nil, fmt.Errorf("get key %q: %w", key, err)
	}
	return idx, nil, nil
}

// KVList returns every entry whose key starts with prefix, in key order.
// The index is the highest ModifyIndex under the prefix, tombstones of
// deleted keys included, or the KV table's index when the prefix is empty
// or nothing under it was ever seen. ws receives the prefix's channel,
// which fires when anything under it changes.
func KVList(tx *memdb.Txn, ws memdb.WatchSet, prefix string) (uint64, []*DirEntry, error) {
	t, err := readTable(tx, ws)
	if err != nil {
		return 0, nil, fmt.Errorf("list prefix %q: %w", prefix, err)
	}
	t.watch(ws, prefix, true)
	out := entriesUnder(t, prefix)
	var high uint64
	for _, e := range out {
		high = max(high, e.ModifyIndex)
	}
	idx, err := prefixIndex(tx, prefix, high)
	if err != nil {
		return 0, nil, fmt.Errorf("list prefix %q: %w", prefix, err)
	}
	return idx, out, nil
}

// KVKeys returns the keys that start with prefix, in order. With a
// separator, a key that holds it after the prefix is cut just past its
// first occurrence there and repeats are dropped: over foo/a, foo/b/c,
// foo/b/d and foo/e/, prefix "foo/" and separator "/" give foo/a, foo/b/
// and foo/e/. Index and watch are KVList's.
func KVKeys(tx *memdb.Txn, ws memdb.WatchSet, prefix, separator string) (uint64, []string, error) {
	t, err := readTable(tx, ws)
	if err != nil {
		return 0, nil, fmt.Errorf("keys of prefix %q: %w", prefix, err)
	}
	t.watch(ws, prefix, true)
	out := []string{}
	var high uint64
	t.under(prefix, func(r record) bool {
		high = max(high, r.modifyIndex())
		out = appendKey(out, r.key(), prefix, separator)
		return true
	})
	idx, err := prefixIndex(tx, prefix, high)
	if err != nil {
		return 0, nil, fmt.Errorf("keys of prefix %q: %w", prefix, err)
	}
	return idx, out, nil
}

// KVIndex returns the KV table's index: the highest index at which a key
// was written or deleted (at least 1).
func KVIndex(tx *memdb.Txn) (uint64, error) {
	return indexValue(tx, tableKV)
}

// entriesUnder returns the entries of t under prefix, in key order. Their
// structs and values are allocated together, two allocations in all.
func entriesUnder(t *kvTable, prefix string) []*DirEntry {
	var n, size int
	t.under(prefix, func(r record) bool {
		f := r.fields()
		n, size = n+1, size+len(f.value)
		return true
	})
	out := make([]*DirEntry, 0, n)
	if n == 0 {
		return out
	}
	structs := make([]DirEntry, n)
	values := make([]byte, 0, size)
	t.under(prefix, func(r record) bool {
		f := r.fields()
		e := &structs[len(out)]
		*e = DirEntry{
			Key: f.key, Session: f.session,
			LockIndex: f.nums[0], Flags: f.nums[1], CreateIndex: f.nums[2], ModifyIndex: f.nums[3],
		}
		if !f.nilValue {
			start := len(values)
			values = append(values, f.value...)
			e.Value = values[start:len(values):len(values)]
		}
		out = append(out, e)
		return len(out) < n
	})
	return out
}

// appendKey adds key (which starts with prefix) to keys, cut after the
// first separator past the prefix. Keys arrive sorted, so everything cut to
// the same string is adjacent and comparing with the last suffices.
func appendKey(keys []string, key, prefix, separator string) []string {
	if separator != "" {
		if i := strings.Index(key[len(prefix):], separator); i >= 0 {
			key = key[:len(prefix)+i+len(separator)]
			if n := len(keys); n > 0 && keys[n-1] == key {
				return keys
			}
		}
	}
	return append(keys, key)
}

// prefixIndex is the index a read of prefix answers with, given the highest
// ModifyIndex of the live entries under it.
func prefixIndex(tx *memdb.Txn, prefix string, high uint64) (uint64, error) {
	table, err := indexValue(tx, tableKV)
	if err != nil || prefix == "" {
		return table, err
	}
	it, err := tx.Get(tableTombstones, "id_prefix", prefix)
	if err != nil {
		return 0, fmt.Errorf("tombstones: %w", err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		high = max(high, raw.(*tombstone).Index)
	}
	if high == 0 {
		return table, nil
	}
	raw, err := tx.First(tableIndex, "id", indexReaped)
	if err != nil {
		return 0, fmt.Errorf("read index %q: %w", indexReaped, err)
	}
	if r, ok := raw.(*indexRow); ok {
		high = max(high, r.Value)
	}
	return high, nil
}

// setEntry writes e over existing (nil if absent). With session false the
// lock holder and LockIndex of existing are kept; with it true e's are
// written. It returns the stored entry.
func setEntry(tx *memdb.Txn, idx uint64, e, existing *DirEntry, session bool) (*DirEntry, error) {
	ne := *e
	if existing != nil {
		ne.CreateIndex = existing.CreateIndex
		if !session {
			ne.Session = existing.Session
			ne.LockIndex = existing.LockIndex
		}
		if sameEntry(existing, &ne) {
			return existing, nil
		}
	} else {
		ne.CreateIndex = idx
		if !session {
			ne.Session, ne.LockIndex = "", 0
		}
	}
	ne.ModifyIndex = idx
	t, err := writeTable(tx)
	if err != nil {
		return nil, fmt.Errorf("write key %q: %w", ne.Key, err)
	}
	t.put(newRecord(&ne))
	var held string
	if existing != nil {
		held = existing.Session
	}
	if err := setHolder(tx, ne.Key, held, ne.Session); err != nil {
		return nil, fmt.Errorf("write key %q: %w", ne.Key, err)
	}
	if existing == nil {
		// Only a key that did not exist can have a tombstone.
		stone, err := tx.First(tableTombstones, "id", ne.Key)
		if err == nil && stone != nil {
			err = tx.Delete(tableTombstones, stone)
		}
		if err != nil {
			return nil, fmt.Errorf("write key %q: clear tombstone: %w", ne.Key, err)
		}
	}
	if err := bumpIndex(tx, tableKV, idx); err != nil {
		return nil, fmt.Errorf("write key %q: %w", ne.Key, err)
	}
	return &ne, nil
}

// sameEntry reports whether writing b over a would change nothing a reader
// can see.
func sameEntry(a, b *DirEntry) bool {
	return a.Key == b.Key && a.Flags == b.Flags && a.Session == b.Session &&
		a.LockIndex == b.LockIndex && bytes.Equal(a.Value, b.Value) &&
		(a.Value == nil) == (b.Value == nil)
}

// deleteEntry removes key, which session holds ("": none), and leaves a
// tombstone at idx.
func deleteEntry(tx *memdb.Txn, idx uint64, key, session string) error {
	t, err := writeTable(tx)
	if err != nil {
		return fmt.Errorf("delete key %q: %w", key, err)
	}
	t.remove(key)
	if err := setHolder(tx, key, session, ""); err != nil {
		return fmt.Errorf("delete key %q: %w", key, err)
	}
	if err := tx.Insert(tableTombstones, &tombstone{Key: key, Index: idx}); err != nil {
		return fmt.Errorf("delete key %q: tombstone: %w", key, err)
	}
	return wrapIf(bumpIndex(tx, tableKV, idx), "delete key %q", key)
}

// setHolder records that session now holds key, in place of was ("":
// none).
func setHolder(tx *memdb.Txn, key, was, session string) error {
	switch {
	case session == was:
		return nil
	case session != "":
		return wrapIf(tx.Insert(tableLocks, &lockRow{Key: key, Session: session}), "record lock")
	}
	return wrapIf(tx.Delete(tableLocks, &lockRow{Key: key, Session: was}), "clear lock")
}

func getEntry(tx *memdb.Txn, key string) (*DirEntry, error) {
	t, err := readTable(tx, nil)
	if err != nil {
		return nil, fmt.Errorf("lookup key: %w", err)
	}
	if r, ok := t.get(key); ok {
		return r.entry(), nil
	}
	return nil, nil
}

// indexValue reads an index row: at least 1, so that a blocking query with
// index 0 returns at once and X-Consul-Index is never 0.
func indexValue(tx *memdb.Txn, key string) (uint64, error) {
	raw, err := tx.First(tableIndex, "id", key)
	if err != nil {
		return 0, fmt.Errorf("read index %q: %w", key, err)
	}
	if r, ok := raw.(*indexRow); ok {
		return max(r.Value, 1), nil
	}
	return 1, nil
}

// watchIndex is indexValue that also adds the row's channel to ws, for
// reads whose answer is a whole table.
func watchIndex(tx *memdb.Txn, ws memdb.WatchSet, key string) (uint64, error) {
	ch, raw, err := tx.FirstWatch(tableIndex, "id", key)
	if err != nil {
		return 0, fmt.Errorf("read index %q: %w", key, err)
	}
	ws.Add(ch)
	if r, ok := raw.(*indexRow); ok {
		return max(r.Value, 1), nil
	}
	return 1, nil
}

// bumpIndex raises the index row key to idx; it never lowers it.
func bumpIndex(tx *memdb.Txn, key string, idx uint64) error {
	raw, err := tx.First(tableIndex, "id", key)
	if err != nil {
		return fmt.Errorf("read index %q: %w", key, err)
	}
	if r, ok := raw.(*indexRow); ok && r.Value >= idx {
		return nil
	}
	if err := tx.Insert(tableIndex, &indexRow{Key: key, Value: idx}); err != nil {
		return fmt.Errorf("write index %q: %w", key, err)
	}
	return nil
}

// collect reads every row of a lookup into a slice, so that the caller may
// then modify the table (memdb iterators must not see writes).
func collect[T any](tx *memdb.Txn, table, index string, args ...any) ([]T, error) {
	it, err := tx.Get(table, index, args...)
	if err != nil {
		return nil, fmt.Errorf("scan %s by %s: %w", table, index, err)
	}
	var out []T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(T))
	}
	return out, nil
}

func wrapIf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
