package catalog

import (
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

func newDB(t testing.TB) *memdb.MemDB {
	t.Helper()
	db, err := memdb.NewMemDB(&memdb.DBSchema{Tables: Tables()})
	if err != nil {
		t.Fatalf("NewMemDB: %v", err)
	}
	return db
}

// apply runs fn in a write transaction and commits it, failing the test on
// error.
func apply(t testing.TB, db *memdb.MemDB, fn func(tx *memdb.Txn) error) {
	t.Helper()
	tx := db.Txn(true)
	if err := fn(tx); err != nil {
		tx.Abort()
		t.Fatalf("write: %v", err)
	}
	tx.Commit()
}

func register(t testing.TB, db *memdb.MemDB, idx uint64, reqs ...*RegisterRequest) {
	t.Helper()
	apply(t, db, func(tx *memdb.Txn) error {
		for _, r := range reqs {
			if err := Register(tx, idx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// fired reports whether any channel of ws is closed. memdb closes them
// inside Commit, so no waiting is needed.
func fired(ws memdb.WatchSet) bool {
	for ch := range ws {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

func node(name, addr string, meta map[string]string) *RegisterRequest {
	return &RegisterRequest{Node: name, Address: addr, Datacenter: "dc1", NodeMeta: meta}
}

func svc(nodeName, addr, name, id string, port int, tags ...string) *RegisterRequest {
	return &RegisterRequest{
		Node: nodeName, Address: addr, Datacenter: "dc1",
		Service: &Service{ID: id, Service: name, Port: port, Tags: tags},
	}
}

func chk(nodeName, id, serviceID, status string) *HealthCheck {
	return &HealthCheck{Node: nodeName, CheckID: id, Name: id, ServiceID: serviceID, Status: status}
}

// fixture registers:
//
//	n1 (rack=a): serfHealth passing; web "web1" [primary v1] with check web1-http passing
//	n2 (rack=b): serfHealth passing; web "web2" [secondary] with check web2-http warning; db "db1" with db1-tcp passing
//	n3 (rack=a): serfHealth critical; web "web3" [Primary] with no check
func fixture(t testing.TB) *memdb.MemDB {
	t.Helper()
	db := newDB(t)
	r1 := svc("n1", "10.0.0.1", "web", "web1", 80, "primary", "v1")
	r1.NodeMeta = map[string]string{"rack": "a"}
	r1.Checks = []*HealthCheck{chk("n1", "serfHealth", "", HealthPassing), chk("n1", "web1-http", "web1", HealthPassing)}
	r2 := svc("n2", "10.0.0.2", "web", "web2", 80, "secondary")
	r2.NodeMeta = map[string]string{"rack": "b"}
	r2.Checks = []*HealthCheck{chk("n2", "serfHealth", "", HealthPassing), chk("n2", "web2-http", "web2", HealthWarning)}
	r2db := svc("n2", "10.0.0.2", "db", "db1", 5432)
	r2db.NodeMeta = map[string]string{"rack": "b"}
	r2db.Check = chk("", "db1-tcp", "db1", HealthPassing)
	r3 := svc("n3", "10.0.0.3", "web", "web3", 80, "Primary")
	r3.NodeMeta = map[string]string{"rack": "a"}
	r3.Check = chk("n3", "serfHealth", "", HealthCritical)
	register(t, db, 10, r1)
	register(t, db, 11, r2)
	register(t, db, 12, r2db)
	register(t, db, 13, r3)
	return db
}
