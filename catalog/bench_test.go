package catalog

import (
	"fmt"
	"testing"
)

// BenchmarkCheckServiceNodes reads /v1/health/service/web with 20 instances,
// each on its own node with a serfHealth check and one service check, next
// to 20 instances of another service.
func BenchmarkCheckServiceNodes(b *testing.B) {
	db := newDB(b)
	idx := uint64(1)
	for i := range 20 {
		for _, name := range []string{"web", "db"} {
			n := fmt.Sprintf("node-%s-%02d", name, i)
			r := svc(n, fmt.Sprintf("10.0.%d.%d", len(name), i), name, fmt.Sprintf("%s-%d", name, i), 8080, "v1")
			r.Checks = []*HealthCheck{chk(n, "serfHealth", "", HealthPassing), chk(n, name+"-check", r.Service.ID, HealthPassing)}
			register(b, db, idx, r)
			idx++
		}
	}
	tx := db.Txn(false)
	for _, q := range []ServiceQuery{{}, {Passing: true, Tags: []string{"v1"}}} {
		b.Run(fmt.Sprintf("passing=%v", q.Passing), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, out, err := CheckServiceNodes(tx, nil, "web", q)
				if err != nil || len(out) != 20 {
					b.Fatalf("CheckServiceNodes(web) = %d entries, %v, want 20", len(out), err)
				}
			}
		})
	}
}

// BenchmarkCheckFlip flips one check per transaction in a catalog of
// 2,000 nodes of 5 services with 2 checks each: the write agents send
// most.
func BenchmarkCheckFlip(b *testing.B) {
	db := newDB(b)
	const nodes = 2000
	registerAll(b, db, literalRequests(nodes))
	status := []string{HealthCritical, HealthPassing}
	idx := uint64(1 << 20)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		node := fmt.Sprintf("node-%05d", i%nodes)
		c := &HealthCheck{Node: node, CheckID: "service:web-0", Name: "Service 'web' check", ServiceID: "web-0",
			Status: status[(i/nodes)%2], Type: "ttl", Definition: HealthCheckDefinition{TTL: "30s"}}
		idx++
		tx := db.Txn(true)
		if err := EnsureCheck(tx, idx, c); err != nil {
			b.Fatal(err)
		}
		tx.Commit()
		i++
	}
}
