package catalog

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

// bigCatalogRequests are the registrations of a catalog of nodes nodes,
// each with 5 services of 2 checks each (one script-style TTL check, one
// HTTP check) and a serfHealth check, in the shape agents register them:
// the service names, tags, check names and statuses repeat on every node.
// Each request is decoded from its JSON, as the FSM decodes each from its
// Raft entry, so that no two share a string.
func bigCatalogRequests(nodes int) []*RegisterRequest {
	reqs := literalRequests(nodes)
	for i, r := range reqs {
		b, err := json.Marshal(r)
		if err != nil {
			panic(err)
		}
		reqs[i] = new(RegisterRequest)
		if err := json.Unmarshal(b, reqs[i]); err != nil {
			panic(err)
		}
	}
	return reqs
}

func literalRequests(nodes int) []*RegisterRequest {
	names := []string{"web", "api", "db", "cache", "queue"}
	var reqs []*RegisterRequest
	for i := range nodes {
		node := fmt.Sprintf("node-%05d", i)
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)
		reqs = append(reqs, &RegisterRequest{
			ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), Node: node, Address: addr, Datacenter: "dc1",
			NodeMeta: map[string]string{"rack": fmt.Sprintf("r%d", i%20)},
			Checks:   []*HealthCheck{{CheckID: SerfCheckID, Name: "Serf Health Status", Status: HealthPassing, Output: "Agent alive and reachable"}},
		})
		for j, name := range names {
			id := fmt.Sprintf("%s-%d", name, j)
			reqs = append(reqs, &RegisterRequest{
				Node: node, Address: addr, Datacenter: "dc1", SkipNodeUpdate: true,
				Service: &Service{ID: id, Service: name, Tags: []string{"v1", "primary"}, Port: 8000 + j, Meta: map[string]string{"version": "1.2.3"}},
				Checks: []*HealthCheck{
					{CheckID: "service:" + id, Name: "Service '" + name + "' check", Status: HealthPassing, ServiceID: id, Type: "ttl",
						Definition: HealthCheckDefinition{TTL: "30s"}},
					{CheckID: "service:" + id + ":http", Name: "HTTP on " + name, Status: HealthPassing, ServiceID: id, Type: "http",
						Output: "HTTP GET http://" + addr + ":8000/health: 200 OK", Interval: "10s",
						Definition: HealthCheckDefinition{HTTP: "http://" + addr + ":8000/health", Interval: "10s", Timeout: "5s"}},
				},
			})
		}
	}
	return reqs
}

// heapAfterGC is the live heap, in bytes, after two collections.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// registerAll applies reqs in transactions of 1,000, as the FSM applies
// batches.
func registerAll(t testing.TB, db *memdb.MemDB, reqs []*RegisterRequest) {
	t.Helper()
	for start := 0; start < len(reqs); start += 1000 {
		apply(t, db, func(tx *memdb.Txn) error {
			for i, r := range reqs[start:min(start+1000, len(reqs))] {
				if err := Register(tx, uint64(start+i+1), r); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// heapPart is the live heap one part of the catalog holds.
type heapPart struct {
	name  string
	bytes int64
}

// catalogHeap registers the catalog of bigCatalogRequests(nodes) and
// returns the live heap it holds and where it goes: the database is
// taken apart piece by piece (memdb's radix trees and index rows, the
// intern table, the service sets, the nodes' checks, their services, the
// nodes), each piece's share being what the heap loses when it goes.
func catalogHeap(t testing.TB, nodes int) (int64, []heapPart) {
	base := heapAfterGC()
	db := newDB(t)
	// The requests go once registered, as the FSM's do: what the rows
	// keep of them (their strings) counts.
	registerAll(t, db, bigCatalogRequests(nodes))
	full := heapAfterGC()
	tx := db.Txn(false)
	var rows []*nodeRow
	if err := eachRow(tx, func(r *nodeRow) (bool, error) { rows = append(rows, r); return true, nil }); err != nil {
		t.Fatal(err)
	}
	sets, err := collect[*serviceSetRow](tx, tableServices, "id")
	if err != nil {
		t.Fatal(err)
	}
	in, err := internsOf(tx)
	if err != nil {
		t.Fatal(err)
	}
	tx.Abort()
	// Each value stays live (runtime.KeepAlive) until its step drops it.
	db, tx = nil, nil
	var parts []heapPart
	prev := full
	measured := func(name string) {
		now := heapAfterGC()
		parts = append(parts, heapPart{name, int64(prev) - int64(now)})
		prev = now
	}
	measured("memdb indexes and node IDs")
	runtime.KeepAlive(in)
	in = nil
	measured("intern table")
	runtime.KeepAlive(sets)
	sets = nil
	measured("service sets")
	for _, r := range rows {
		r.checks = nil
	}
	measured("checks")
	for _, r := range rows {
		r.services = nil
	}
	measured("services")
	runtime.KeepAlive(rows)
	rows = nil
	measured("nodes")
	parts = append(parts, heapPart{"rest", int64(prev) - int64(base)})
	return int64(full) - int64(base), parts
}

// BenchmarkCatalogHeap reports the live heap a catalog of
// MERIDIAN_CATALOG_NODES nodes (default 10,000) of 5 services with 2
// checks each holds, per service instance (issue 18's goal: at most 1 KiB),
// in all and part by part (catalogHeap).
// One iteration is enough: go test -bench CatalogHeap -benchtime 1x.
func BenchmarkCatalogHeap(b *testing.B) {
	nodes := 10_000
	if v := os.Getenv("MERIDIAN_CATALOG_NODES"); v != "" {
		var err error
		if nodes, err = strconv.Atoi(v); err != nil || nodes <= 0 {
			b.Fatalf("MERIDIAN_CATALOG_NODES=%q is not a positive count", v)
		}
	}
	instances := float64(nodes * 5)
	for range b.N {
		total, parts := catalogHeap(b, nodes)
		b.ReportMetric(float64(total)/instances, "heap-B/instance")
		b.ReportMetric(float64(total)/(1<<20), "heap-MiB")
		for _, p := range parts {
			b.ReportMetric(float64(p.bytes)/instances, strings.ReplaceAll(p.name, " ", "-")+"-B/instance")
		}
	}
}

// TestCatalogHeapBudget holds the catalog to issue 18's figure: at most
// 1 KiB of heap per service instance, on 1,000 nodes of 5 services with 2
// checks each. It does not run in parallel, so no other test's data
// counts.
func TestCatalogHeapBudget(t *testing.T) {
	const nodes = 1000
	total, parts := catalogHeap(t, nodes)
	per := total / (nodes * 5)
	for _, p := range parts {
		t.Logf("%-26s %5d B/instance", p.name, p.bytes/(nodes*5))
	}
	if per > 1024 {
		t.Errorf("the catalog holds %d B of heap per service instance, want at most 1024", per)
	}
}

// TestInternsForgetDeregistered registers a catalog, deregisters half of
// it service by service and check by check and the rest node by node, and
// finds the intern table empty again; a
// catalog restored from a snapshot counts its strings the same way.
func TestInternsForgetDeregistered(t *testing.T) {
	t.Parallel()
	const nodes = 200
	db := newDB(t)
	internLen := func() int {
		tx := db.Txn(false)
		defer tx.Abort()
		raw, err := tx.First(tableInterns, "id", "interns")
		if err != nil || raw == nil {
			t.Fatalf("intern table: %v, %v", raw, err)
		}
		return raw.(*internsRow).t.Len()
	}
	apply(t, db, func(tx *memdb.Txn) error { _, err := internsOf(tx); return err })
	empty := internLen()

	registerAll(t, db, bigCatalogRequests(nodes))
	full := internLen()
	if full <= empty {
		t.Fatalf("intern table holds %d strings after registering %d nodes, want more than %d", full, nodes, empty)
	}
	// Re-registering the same catalog changes no count.
	registerAll(t, db, bigCatalogRequests(nodes))
	if n := internLen(); n != full {
		t.Errorf("intern table holds %d strings after registering the same catalog again, want %d", n, full)
	}
	// A write that fails and is aborted changes no count either.
	tx := db.Txn(true)
	if err := Register(tx, 1, &RegisterRequest{Node: "other", Address: "10.9.9.9", Datacenter: "dc-other",
		Service: &Service{Service: "unique-name"}}); err != nil {
		t.Fatal(err)
	}
	tx.Abort()
	if n := internLen(); n != full {
		t.Errorf("intern table holds %d strings after an aborted write, want %d", n, full)
	}

	// Snapshot and restore into a new database: the same strings.
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	if err := Snapshot(db.Txn(false), enc); err != nil {
		t.Fatal(err)
	}
	restored := newDB(t)
	apply(t, restored, func(tx *memdb.Txn) error { return Restore(tx, gob.NewDecoder(&buf)) })
	rtx := restored.Txn(false)
	raw, _ := rtx.First(tableInterns, "id", "interns")
	rtx.Abort()
	if n := raw.(*internsRow).t.Len(); n != full {
		t.Errorf("restored intern table holds %d strings, want %d", n, full)
	}

	idx := uint64(1 << 20)
	for i := range nodes {
		node := fmt.Sprintf("node-%05d", i)
		var reqs []*DeregisterRequest
		if i%2 == 0 {
			for j, name := range []string{"web", "api", "db", "cache", "queue"} {
				id := fmt.Sprintf("%s-%d", name, j)
				reqs = append(reqs, &DeregisterRequest{Node: node, CheckID: "service:" + id}, &DeregisterRequest{Node: node, ServiceID: id})
			}
			reqs = append(reqs, &DeregisterRequest{Node: node, CheckID: SerfCheckID})
		}
		reqs = append(reqs, &DeregisterRequest{Node: node})
		for _, r := range reqs {
			idx++
			apply(t, db, func(tx *memdb.Txn) error { return Deregister(tx, idx, r) })
		}
	}
	if n := internLen(); n != empty {
		t.Errorf("intern table holds %d strings after deregistering everything, want %d", n, empty)
	}
}
