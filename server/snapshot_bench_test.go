package server

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// snapshotBenchKeys is how many keys the snapshot benchmarks hold:
// MERIDIAN_SNAPSHOT_KEYS, or 100,000.
func snapshotBenchKeys(b *testing.B) int {
	n := 100_000
	if v := os.Getenv("MERIDIAN_SNAPSHOT_KEYS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("MERIDIAN_SNAPSHOT_KEYS=%q is not a positive count", v)
		}
	}
	return n
}

// benchSnapshot returns the FSM snapshot of n keys of 100 bytes, as
// bench/snapshot-figures.sh writes them.
func benchSnapshot(b *testing.B, n int) []byte {
	st, err := newState()
	if err != nil {
		b.Fatal(err)
	}
	val := bytes.Repeat([]byte("v"), 100)
	for start := 0; start < n; start += 10_000 {
		if err := st.write(func(tx *memdb.Txn) error {
			for k := start; k < min(start+10_000, n); k++ {
				if err := kvstore.KVSet(tx, uint64(k+1), &kvstore.DirEntry{Key: fmt.Sprintf("bench/%08d", k), Value: val}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	f := &fsm{state: st}
	snap, err := f.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		b.Fatal(err)
	}
	return sink.Bytes()
}

// BenchmarkSnapshotRestore measures the FSM's restore of a KV snapshot
// and the heap it keeps, per key.
func BenchmarkSnapshotRestore(b *testing.B) {
	n := snapshotBenchKeys(b)
	data := benchSnapshot(b, n)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		st, err := newState()
		if err != nil {
			b.Fatal(err)
		}
		f := &fsm{state: st}
		if err := f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/float64(n), "heap-B/key")
		runtime.KeepAlive(st)
		b.StartTimer()
	}
}

// BenchmarkSnapshotScan measures the check of an archive's state before
// a restore.
func BenchmarkSnapshotScan(b *testing.B) {
	n := snapshotBenchKeys(b)
	data := benchSnapshot(b, n)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		if _, err := scanState(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotPersist measures writing the FSM snapshot.
func BenchmarkSnapshotPersist(b *testing.B) {
	n := snapshotBenchKeys(b)
	data := benchSnapshot(b, n)
	st, err := newState()
	if err != nil {
		b.Fatal(err)
	}
	f := &fsm{state: st}
	if err := f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		snap, _ := f.Snapshot()
		var sink memSink
		if err := snap.Persist(&sink); err != nil {
			b.Fatal(err)
		}
		snap.Release()
	}
}

// benchCatalogState is a state holding a catalog of nodes nodes, each with
// a serfHealth check and 5 services of 2 checks each, registered through
// msgpack-decoded requests as the FSM applies them.
func benchCatalogState(b *testing.B, nodes int) *state {
	st, err := newState()
	if err != nil {
		b.Fatal(err)
	}
	names := []string{"web", "api", "db", "cache", "queue"}
	idx := uint64(0)
	decoded := func(r *catalog.RegisterRequest) *catalog.RegisterRequest {
		body, err := rpc.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		out := new(catalog.RegisterRequest)
		if err := rpc.Unmarshal(body, out); err != nil {
			b.Fatal(err)
		}
		return out
	}
	for start := 0; start < nodes; start += 100 {
		if err := st.write(func(tx *memdb.Txn) error {
			for i := start; i < min(start+100, nodes); i++ {
				node := fmt.Sprintf("node-%05d", i)
				addr := fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)
				reqs := []*catalog.RegisterRequest{{
					ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), Node: node, Address: addr, Datacenter: "dc1",
					NodeMeta: map[string]string{"rack": fmt.Sprintf("r%d", i%20)},
					Checks:   []*catalog.HealthCheck{{CheckID: catalog.SerfCheckID, Name: "Serf Health Status", Status: catalog.HealthPassing}},
				}}
				for j, name := range names {
					id := fmt.Sprintf("%s-%d", name, j)
					reqs = append(reqs, &catalog.RegisterRequest{
						Node: node, Address: addr, Datacenter: "dc1", SkipNodeUpdate: true,
						Service: &catalog.Service{ID: id, Service: name, Tags: []string{"v1", "primary"}, Port: 8000 + j, Meta: map[string]string{"version": "1.2.3"}},
						Checks: []*catalog.HealthCheck{
							{CheckID: "service:" + id, Name: "Service '" + name + "' check", Status: catalog.HealthPassing, ServiceID: id, Type: "ttl",
								Definition: catalog.HealthCheckDefinition{TTL: "30s"}},
							{CheckID: "service:" + id + ":http", Name: "HTTP on " + name, Status: catalog.HealthPassing, ServiceID: id, Type: "http",
								Interval: "10s", Definition: catalog.HealthCheckDefinition{HTTP: "http://" + addr + ":8000/health", Interval: "10s", Timeout: "5s"}},
						},
					})
				}
				for _, r := range reqs {
					idx++
					if err := catalog.Register(tx, idx, decoded(r)); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// BenchmarkCatalogSnapshot measures, for a catalog of
// MERIDIAN_CATALOG_NODES nodes (default 10,000) of 5 instances each, the
// server's heap per instance, the Raft snapshot's size and the time to
// take it (Persist) and to restore it (what a restarting server does
// before it serves, besides replaying the log after the snapshot).
func BenchmarkCatalogSnapshot(b *testing.B) {
	nodes := 10_000
	if v := os.Getenv("MERIDIAN_CATALOG_NODES"); v != "" {
		var err error
		if nodes, err = strconv.Atoi(v); err != nil || nodes <= 0 {
			b.Fatalf("MERIDIAN_CATALOG_NODES=%q is not a positive count", v)
		}
	}
	instances := float64(nodes * 5)
	for range b.N {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		st := benchCatalogState(b, nodes)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/instances, "heap-B/instance")

		start := time.Now()
		snap, _ := (&fsm{state: st}).Snapshot()
		var sink memSink
		if err := snap.Persist(&sink); err != nil {
			b.Fatal(err)
		}
		snap.Release()
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "persist-ms")
		b.ReportMetric(float64(sink.Len())/(1<<20), "snapshot-MiB")

		restored, err := newState()
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := (&fsm{state: restored}).Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "restore-ms")
		runtime.KeepAlive(st)
	}
}
