package kvstore

import (
	"fmt"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

// BenchmarkKVSet writes one 128-byte value per write transaction, over a
// store of 10,000 keys, cycling over 1,000 of them.
func BenchmarkKVSet(b *testing.B) {
	db := benchDB(b)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("service/web/config/%05d", i*10)
	}
	value := make([]byte, 128)
	b.ReportAllocs()
	idx := uint64(100_000)
	for b.Loop() {
		idx++
		tx := db.Txn(true)
		value[0] = byte(idx)
		if err := KVSet(tx, idx, &DirEntry{Key: keys[idx%1000], Value: value}); err != nil {
			b.Fatalf("KVSet: %v", err)
		}
		tx.Commit()
	}
}

// BenchmarkKVApply is BenchmarkKVSet through KVApply, the FSM's entry for
// a KV write command, with a CAS on every other write.
func BenchmarkKVApply(b *testing.B) {
	db := benchDB(b)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("service/web/config/%05d", i*10)
	}
	value := make([]byte, 128)
	b.ReportAllocs()
	idx := uint64(100_000)
	for b.Loop() {
		idx++
		tx := db.Txn(true)
		value[0] = byte(idx)
		req := &KVRequest{Op: VerbSet, Key: keys[idx%1000], Value: value}
		if idx%2 == 0 {
			req.Op = VerbCAS // index 0: set only if absent, refused here
		}
		if _, err := KVApply(tx, idx, req); err != nil {
			b.Fatalf("KVApply: %v", err)
		}
		tx.Commit()
	}
}

// BenchmarkKVGet reads one key of 10,000 with and without a watch set.
func BenchmarkKVGet(b *testing.B) {
	db := benchDB(b)
	tx := db.Txn(false)
	for _, watch := range []bool{false, true} {
		b.Run(fmt.Sprintf("watch=%v", watch), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var ws memdb.WatchSet
				if watch {
					ws = memdb.NewWatchSet()
				}
				_, e, err := KVGet(tx, ws, "service/web/config/05000")
				if err != nil || e == nil {
					b.Fatalf("KVGet = %v, %v, want an entry", e, err)
				}
			}
		})
	}
}

func benchDB(b *testing.B) *memdb.MemDB {
	db := newDB(b)
	tx := db.Txn(true)
	for i := range 10_000 {
		if err := KVSet(tx, uint64(i+1), &DirEntry{Key: fmt.Sprintf("service/web/config/%05d", i), Value: make([]byte, 128)}); err != nil {
			b.Fatalf("KVSet: %v", err)
		}
	}
	tx.Commit()
	return db
}
