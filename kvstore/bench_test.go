package kvstore

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/go-msgpack/v2/codec"
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

// BenchmarkKVMemory reports, per key, the heap that MERIDIAN_KV_KEYS keys
// (default 100,000) of 100 bytes under 13-byte keys keep (heap-B/key, after
// a collection) and what writing them allocated in all (alloc-B/key, the
// garbage included): written by KVSet in transactions of 64 keys, as
// bench/snapshot-figures.sh writes them, and restored from a snapshot of
// them, as a server does.
func BenchmarkKVMemory(b *testing.B) {
	n := 100_000
	if v := os.Getenv("MERIDIAN_KV_KEYS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("MERIDIAN_KV_KEYS=%q is not a positive count", v)
		}
	}
	value := bytes.Repeat([]byte("v"), 100)
	write := func(b *testing.B) *memdb.MemDB {
		db := newDB(b)
		for start := 0; start < n; start += 64 {
			tx := db.Txn(true)
			for k := start; k < min(start+64, n); k++ {
				if err := KVSet(tx, uint64(start/64+1), &DirEntry{Key: fmt.Sprintf("bench/%07d", k), Value: value}); err != nil {
					b.Fatalf("KVSet: %v", err)
				}
			}
			tx.Commit()
		}
		return db
	}
	measure := func(b *testing.B, build func() *memdb.MemDB) {
		for b.Loop() {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			db := build()
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-B/key")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n), "alloc-B/key")
			runtime.KeepAlive(db)
		}
	}
	b.Run("set", func(b *testing.B) { measure(b, func() *memdb.MemDB { return write(b) }) })
	b.Run("restore", func(b *testing.B) {
		mh := &codec.MsgpackHandle{}
		mh.RawToString = true
		var snap bytes.Buffer
		if err := Snapshot(write(b).Txn(false), codec.NewEncoder(&snap, mh)); err != nil {
			b.Fatalf("Snapshot: %v", err)
		}
		measure(b, func() *memdb.MemDB {
			db := newDB(b)
			tx := db.Txn(true)
			if err := Restore(tx, codec.NewDecoder(bytes.NewReader(snap.Bytes()), mh)); err != nil {
				b.Fatalf("Restore: %v", err)
			}
			tx.Commit()
			return db
		})
	})
}
