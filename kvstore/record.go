package kvstore

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// A record is one entry as the tree of entries holds it (tree.go), in one
// allocation: the key's length (a uvarint) and the key, a flags byte (bit
// 0: Value is nil rather than empty; the other bits are zero), LockIndex,
// Flags, CreateIndex and ModifyIndex as uvarints, the session's length
// and the session, and the value: the rest. It is the snapshot's entry
// record (snapshot.go) with the key moved to the front, so that the tree
// compares keys without reading the rest. A 100-byte value under a
// 13-byte key takes a record of 124 bytes.
type record string

const recordNilValue = 1

// bytestring is what an entry's key, session and value may be read from
// or written from: the strings of a record or a DirEntry, or the bytes of
// a snapshot record.
type bytestring interface{ ~string | ~[]byte }

// fields are an entry's parts, as read from a record, a snapshot record
// or a DirEntry, whose bytes key, session and value still share.
type fields[S, V bytestring] struct {
	key, session S
	value        V
	nilValue     bool
	// nums are LockIndex, Flags, CreateIndex and ModifyIndex.
	nums [4]uint64
}

// entryFields are e's parts.
func entryFields(e *DirEntry) fields[string, []byte] {
	return fields[string, []byte]{
		key: e.Key, session: e.Session, value: e.Value, nilValue: e.Value == nil,
		nums: [4]uint64{e.LockIndex, e.Flags, e.CreateIndex, e.ModifyIndex},
	}
}

// newRecord returns e's record. Its value is copied: the caller keeps e.
func newRecord(e *DirEntry) record {
	var buf [256]byte
	f := entryFields(e)
	return record(appendRecord(buf[:0], &f))
}

// appendRecord appends the record of f to b.
func appendRecord[S, V bytestring](b []byte, f *fields[S, V]) []byte {
	b = binary.AppendUvarint(b, uint64(len(f.key)))
	b = append(b, f.key...)
	b = append(b, f.flags())
	for _, n := range f.nums {
		b = binary.AppendUvarint(b, n)
	}
	b = binary.AppendUvarint(b, uint64(len(f.session)))
	b = append(b, f.session...)
	return append(b, f.value...)
}

func (f *fields[S, V]) flags() byte {
	if f.nilValue {
		return recordNilValue
	}
	return 0
}

// probe is the record the tree is searched with for key: the key alone.
func probe(key string) record {
	var n [binary.MaxVarintLen64]byte
	var sb strings.Builder
	sb.Grow(binary.MaxVarintLen64 + len(key))
	sb.Write(binary.AppendUvarint(n[:0], uint64(len(key))))
	sb.WriteString(key)
	return record(sb.String())
}

// key returns r's key, sharing r's bytes.
func (r record) key() string {
	l, n := uvarint(r)
	return string(r[n : n+int(l)])
}

// lessRecord orders records by key, the order of the tree.
func lessRecord(a, b record) bool { return a.key() < b.key() }

// fields returns r's parts. r was made by this package, so it is not
// checked.
func (r record) fields() fields[string, string] {
	var f fields[string, string]
	l, n := uvarint(r)
	f.key, r = string(r[n:n+int(l)]), r[n+int(l):]
	f.nilValue, r = r[0]&recordNilValue != 0, r[1:]
	for i := range f.nums {
		f.nums[i], n = uvarint(r)
		r = r[n:]
	}
	l, n = uvarint(r)
	f.session, f.value = string(r[n:n+int(l)]), string(r[n+int(l):])
	return f
}

// entry returns the DirEntry r holds, with a copy of its value; the key
// and session share r's bytes.
func (r record) entry() *DirEntry {
	f := r.fields()
	e := &DirEntry{
		Key: f.key, Session: f.session,
		LockIndex: f.nums[0], Flags: f.nums[1], CreateIndex: f.nums[2], ModifyIndex: f.nums[3],
	}
	if !f.nilValue {
		e.Value = []byte(f.value)
	}
	return e
}

// modifyIndex returns r's ModifyIndex without copying anything.
func (r record) modifyIndex() uint64 {
	f := r.fields()
	return f.nums[3]
}

// An entry record of a snapshot is a DirEntry as a byte string: the flags
// byte, then LockIndex, Flags, CreateIndex and ModifyIndex as uvarints,
// the Key and the Session each as a uvarint length and its bytes, and the
// Value: the rest.

// appendSnapshotRecord appends the snapshot's entry record of f to b.
func appendSnapshotRecord[S, V bytestring](b []byte, f *fields[S, V]) []byte {
	b = append(b, f.flags())
	for _, n := range f.nums {
		b = binary.AppendUvarint(b, n)
	}
	b = binary.AppendUvarint(b, uint64(len(f.key)))
	b = append(b, f.key...)
	b = binary.AppendUvarint(b, uint64(len(f.session)))
	b = append(b, f.session...)
	return append(b, f.value...)
}

// errBadRecord is what parseSnapshotRecord reports of a record it cannot
// read.
var errBadRecord = fmt.Errorf("malformed entry record: %w", ErrBadSnapshot)

// parseSnapshotRecord reads a snapshot's entry record; the fields share
// b's bytes.
func parseSnapshotRecord(b []byte) (fields[[]byte, []byte], error) {
	var f fields[[]byte, []byte]
	if len(b) == 0 || b[0]&^recordNilValue != 0 {
		return f, errBadRecord
	}
	f.nilValue, b = b[0]&recordNilValue != 0, b[1:]
	for i := range f.nums {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return f, errBadRecord
		}
		f.nums[i], b = v, b[n:]
	}
	for _, s := range []*[]byte{&f.key, &f.session} {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return f, errBadRecord
		}
		*s, b = b[n:n+int(l)], b[n+int(l):]
	}
	if len(f.key) == 0 {
		return f, fmt.Errorf("entry record without a key: %w", ErrBadSnapshot)
	}
	if f.nilValue && len(b) > 0 {
		return f, errBadRecord
	}
	f.value = b
	return f, nil
}

// uvarint decodes the uvarint at the start of s, as binary.Uvarint does,
// from a string too. s holds a valid one.
func uvarint[S bytestring](s S) (uint64, int) {
	var x uint64
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x80 {
			return x | uint64(b)<<(7*i), i + 1
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return x, len(s)
}
