package kvstore

import (
	"cmp"
	"fmt"
	"slices"

	memdb "github.com/hashicorp/go-memdb"
)

// ChangesRequest asks for what changed under Prefix after index Since, the
// read another datacenter's leader replicates a prefix with (KVChanges).
// MaxBytes, when positive, bounds the keys and values of the entries and
// deletions answered (at least the changes of one index are answered).
type ChangesRequest struct {
	Prefix   string
	Since    uint64
	MaxBytes int
}

// Deletion is a key deleted at Index.
type Deletion struct {
	Key   string
	Index uint64
}

// Changes is what changed under a prefix after an index: the entries
// written since (their ModifyIndex is above it) and the keys deleted
// since, each list in index order. When Full is set the deletions since
// could not be told (Since was 0, or the tombstones of some were reaped):
// Keys then lists every key under the prefix, and a copy must drop the
// keys it holds that are not among them. More says that changes past the
// answer's index were left out (MaxBytes): the answer is complete up to
// its index, and the next read asks from there.
type Changes struct {
	Entries []*DirEntry
	Deleted []Deletion
	Full    bool
	Keys    []string
	More    bool
}

// KVChanges answers what changed under prefix after req.Since, and the
// index to answer with: KVList's for the prefix (so a blocking read of
// changes wakes as a blocking list would), or with More the index the
// answer is complete up to. ws receives the prefix's channel.
func KVChanges(tx *memdb.Txn, ws memdb.WatchSet, req ChangesRequest) (uint64, *Changes, error) {
	idx, entries, err := KVList(tx, ws, req.Prefix)
	if err != nil {
		return 0, nil, err
	}
	out := &Changes{Entries: []*DirEntry{}, Deleted: []Deletion{}}
	reaped, err := tombstonesReaped(tx)
	if err != nil {
		return 0, nil, fmt.Errorf("changes of prefix %q: %w", req.Prefix, err)
	}
	if req.Since == 0 || req.Since < reaped {
		out.Full = true
		out.Keys = make([]string, 0, len(entries))
		for _, e := range entries {
			out.Keys = append(out.Keys, e.Key)
		}
	} else {
		it, err := tx.Get(tableTombstones, "id_prefix", req.Prefix)
		if err != nil {
			return 0, nil, fmt.Errorf("changes of prefix %q: tombstones: %w", req.Prefix, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if s := raw.(*tombstone); s.Index > req.Since {
				out.Deleted = append(out.Deleted, Deletion{Key: s.Key, Index: s.Index})
			}
		}
	}
	for _, e := range entries {
		if e.ModifyIndex > req.Since {
			out.Entries = append(out.Entries, e)
		}
	}
	slices.SortStableFunc(out.Entries, func(a, b *DirEntry) int { return cmp.Compare(a.ModifyIndex, b.ModifyIndex) })
	slices.SortStableFunc(out.Deleted, func(a, b Deletion) int { return cmp.Compare(a.Index, b.Index) })
	if upTo, cut := changesCut(out, req.MaxBytes); cut {
		out.Entries = slices.DeleteFunc(out.Entries, func(e *DirEntry) bool { return e.ModifyIndex > upTo })
		out.Deleted = slices.DeleteFunc(out.Deleted, func(d Deletion) bool { return d.Index > upTo })
		out.More, idx = true, upTo
	}
	return idx, out, nil
}

// changesCut finds the highest index up to which the changes fit in
// maxBytes (the first index's always do), and whether any lie beyond it.
func changesCut(ch *Changes, maxBytes int) (uint64, bool) {
	if maxBytes <= 0 {
		return 0, false
	}
	var size int
	var upTo uint64
	i, j := 0, 0
	for i < len(ch.Entries) || j < len(ch.Deleted) {
		var index uint64
		var n int
		if j == len(ch.Deleted) || (i < len(ch.Entries) && ch.Entries[i].ModifyIndex <= ch.Deleted[j].Index) {
			e := ch.Entries[i]
			index, n = e.ModifyIndex, len(e.Key)+len(e.Value)
			i++
		} else {
			d := ch.Deleted[j]
			index, n = d.Index, len(d.Key)
			j++
		}
		if index != upTo && upTo != 0 && size+n > maxBytes {
			return upTo, true
		}
		size += n
		upTo = index
	}
	return 0, false
}

// tombstonesReaped is the index up to which tombstones have been reaped (0:
// none).
func tombstonesReaped(tx *memdb.Txn) (uint64, error) {
	raw, err := tx.First(tableIndex, "id", indexReaped)
	if err != nil {
		return 0, fmt.Errorf("read index %q: %w", indexReaped, err)
	}
	if r, ok := raw.(*indexRow); ok {
		return r.Value, nil
	}
	return 0, nil
}
