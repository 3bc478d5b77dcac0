package catalog

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sync"

	memdb "github.com/hashicorp/go-memdb"
)

// The catalog interns the values that repeat from row to row (a
// datacenter, service names and IDs, check IDs, the fields of a check
// but its output and addresses (packed in one string), and whole tag
// lists and meta maps): each row decoded from a Raft command carries its own copy of
// them, and a catalog of 50,000 instances held each one tens of thousands
// of times. A check's node name, service name and tags are its node's and
// service's (nodeRow), and its status is a number.
//
// The table counts, for each value, the rows that hold it, and forgets it
// when the last one goes, so deregistering leaves nothing behind. Counts
// change only when a write transaction commits (memdb's Txn.Defer): an
// aborted write leaves them as they were. Until then the values the
// transaction brought are shared by its own later rows (pending); the
// pending values of a transaction that aborted are dropped when the next
// one writes.

// tableInterns holds one row, the database's intern table. Readers never
// look at it.
const tableInterns = "catalog_interns"

// internsRow is tableInterns' one row.
type internsRow struct{ t *interns }

func internsTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableInterns,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &keyIndexer{fn: func(any) (string, bool) { return "interns", true }}},
		},
	}
}

// interns is the table of one database. The FSM is its one writer, but
// deferred functions run after memdb has let the next writer in, so it
// has a lock of its own.
type interns struct {
	mu   sync.Mutex
	strs pool[string]
	tags pool[[]string]
	maps pool[map[string]string]
	// cur is the write transaction whose values are pending.
	cur *memdb.Txn
}

// pool holds the interned values of one kind by their keys.
type pool[V any] struct {
	m       map[string]*internEntry[V]
	pending map[string]V
}

type internEntry[V any] struct {
	v    V
	refs int
}

// held lists the interned values a row holds.
type held struct {
	strs []string
	tags [][]string
	maps []map[string]string
}

func (h *held) add(o held) {
	h.strs = append(h.strs, o.strs...)
	h.tags = append(h.tags, o.tags...)
	h.maps = append(h.maps, o.maps...)
}

// internsOf returns the intern table of tx's database, creating it in a
// database that has none yet.
func internsOf(tx *memdb.Txn) (*interns, error) {
	raw, err := tx.First(tableInterns, "id", "interns")
	if err != nil {
		return nil, fmt.Errorf("lookup intern table: %w", err)
	}
	if r, ok := raw.(*internsRow); ok {
		return r.t, nil
	}
	t := &interns{}
	if err := tx.Insert(tableInterns, &internsRow{t: t}); err != nil {
		return nil, fmt.Errorf("create intern table: %w", err)
	}
	return t, nil
}

// Len is how many distinct values the table holds.
func (t *interns) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.strs.m) + len(t.tags.m) + len(t.maps.m)
}

// lookup returns the table's copy of v (key k), remembering v as pending
// in tx when the table has none. Callers hold t.mu.
func lookup[V any](t *interns, p *pool[V], tx *memdb.Txn, k string, v V) V {
	if e := p.m[k]; e != nil {
		return e.v
	}
	if t.cur != tx {
		t.cur = tx
		t.strs.pending, t.tags.pending, t.maps.pending = nil, nil, nil
	}
	if pv, ok := p.pending[k]; ok {
		return pv
	}
	if p.pending == nil {
		p.pending = map[string]V{}
	}
	p.pending[k] = v
	return v
}

// count adds delta to the count of each value h lists once tx commits.
func count[V any](p *pool[V], k string, v V, delta int) {
	e := p.m[k]
	if e == nil {
		if delta < 0 {
			return
		}
		if p.m == nil {
			p.m = map[string]*internEntry[V]{}
		}
		e = &internEntry[V]{v: v}
		p.m[k] = e
	}
	if e.refs += delta; e.refs <= 0 {
		delete(p.m, k)
	}
}

// of returns the table's copy of s.
func (t *interns) of(tx *memdb.Txn, s string) string {
	if s == "" {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return lookup(t, &t.strs, tx, s, s)
}

// tagsOf returns the table's copy of a tag list (never empty).
func (t *interns) tagsOf(tx *memdb.Txn, tags []string) []string {
	if len(tags) == 0 {
		return tags
	}
	for i := range tags {
		tags[i] = t.of(tx, tags[i])
	}
	k := listKey(tags)
	t.mu.Lock()
	defer t.mu.Unlock()
	return lookup(t, &t.tags, tx, k, tags)
}

// metaOf returns the table's copy of a string map.
func (t *interns) metaOf(tx *memdb.Txn, m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	k := mapKey(m)
	t.mu.Lock()
	if e := t.maps.m[k]; e != nil {
		t.mu.Unlock()
		return e.v
	}
	t.mu.Unlock()
	m = t.internMap(tx, m)
	t.mu.Lock()
	defer t.mu.Unlock()
	return lookup(t, &t.maps, tx, k, m)
}

// count adds delta to the count of each value h lists once tx commits.
func (t *interns) count(tx *memdb.Txn, h held, delta int) {
	if len(h.strs) == 0 && len(h.tags) == 0 && len(h.maps) == 0 {
		return
	}
	tx.Defer(func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.cur == tx {
			t.cur = nil
			t.strs.pending, t.tags.pending, t.maps.pending = nil, nil, nil
		}
		for _, s := range h.strs {
			if s != "" {
				count(&t.strs, s, s, delta)
			}
		}
		for _, tags := range h.tags {
			if len(tags) > 0 {
				count(&t.tags, listKey(tags), tags, delta)
			}
		}
		for _, m := range h.maps {
			if len(m) > 0 {
				count(&t.maps, mapKey(m), m, delta)
			}
		}
	})
}

// listKey and mapKey are the keys of a tag list and a map: each string
// with its length before it, so that no two contents share a key.
func listKey(l []string) string {
	var b []byte
	for _, s := range l {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return string(b)
}

func mapKey(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	var b []byte
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		v := m[k]
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return string(b)
}

// internMap returns m with its keys and values interned.
func (t *interns) internMap(tx *memdb.Txn, m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[t.of(tx, k)] = t.of(tx, v)
	}
	return out
}

func appendMap[V any](strs []string, m map[string]V, value func(V) string) []string {
	for k, v := range m {
		strs = append(strs, k)
		if value != nil {
			strs = append(strs, value(v))
		}
	}
	return strs
}

func same(s string) string { return s }

// internNode interns a node's repeated values, before it is stored.
func (t *interns) internNode(tx *memdb.Txn, n *Node) {
	n.Datacenter = t.of(tx, n.Datacenter)
	n.Meta = t.metaOf(tx, n.Meta)
	n.TaggedAddresses = t.internMap(tx, n.TaggedAddresses)
}

func nodeHeld(n *Node) held {
	strs := []string{n.Datacenter}
	strs = appendMap(strs, n.Meta, same)
	return held{strs: appendMap(strs, n.TaggedAddresses, same), maps: []map[string]string{n.Meta}}
}

// internService interns a service's repeated values.
func (t *interns) internService(tx *memdb.Txn, s *Service) {
	s.Kind, s.ID, s.Service = t.of(tx, s.Kind), t.of(tx, s.ID), t.of(tx, s.Service)
	s.Tags = t.tagsOf(tx, s.Tags)
	s.Meta = t.metaOf(tx, s.Meta)
	if len(s.TaggedAddresses) > 0 {
		m := make(map[string]ServiceAddress, len(s.TaggedAddresses))
		for k, v := range s.TaggedAddresses {
			m[t.of(tx, k)] = v
		}
		s.TaggedAddresses = m
	}
}

func serviceHeld(s *Service) held {
	strs := append([]string{s.Kind, s.ID, s.Service}, s.Tags...)
	strs = appendMap(strs, s.Meta, same)
	return held{
		strs: appendMap[ServiceAddress](strs, s.TaggedAddresses, nil),
		tags: [][]string{s.Tags},
		maps: []map[string]string{s.Meta},
	}
}

// internCheck interns a check row's repeated values.
func (t *interns) internCheck(tx *memdb.Txn, c *checkRow) {
	for _, p := range checkFields(c) {
		*p = t.of(tx, *p)
	}
}

func checkFields(c *checkRow) []*string {
	return []*string{&c.id, &c.serviceID, &c.common}
}

func checkHeld(c *checkRow) held {
	fields := checkFields(c)
	strs := make([]string, len(fields))
	for i, p := range fields {
		strs[i] = *p
	}
	return held{strs: strs}
}
