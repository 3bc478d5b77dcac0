package catalog

import (
	"errors"
	"strings"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

// TestTxnOps runs each verb of the node, service and check operations on
// the fixture (n1 at index 10 with web1 and its check web1-http): what it
// answers, or the error worded as Consul's.
func TestTxnOps(t *testing.T) {
	t.Parallel()
	type result struct {
		node  *Node
		svc   *Service
		check *HealthCheck
	}
	cases := []struct {
		name string
		run  func(tx *memdb.Txn) (result, error)
		want func(r result) bool
		err  string
	}{
		{"node get by name", func(tx *memdb.Txn) (result, error) {
			n, err := NodeTxn(tx, 20, &NodeTxnOp{Verb: TxnGet, Node: Node{Node: "N1"}})
			return result{node: n}, err
		}, func(r result) bool { return r.node.Node == "n1" && r.node.Address == "10.0.0.1" }, ""},
		{"node get missing", func(tx *memdb.Txn) (result, error) {
			n, err := NodeTxn(tx, 20, &NodeTxnOp{Verb: TxnGet, Node: Node{Node: "nope"}})
			return result{node: n}, err
		}, nil, `node "nope" doesn't exist`},
		{"node cas stale", func(tx *memdb.Txn) (result, error) {
			n, err := NodeTxn(tx, 20, &NodeTxnOp{Verb: TxnCAS, Node: Node{Node: "n1", Address: "x", ModifyIndex: 9}})
			return result{node: n}, err
		}, nil, `failed to set node "n1", index is stale`},
		{"node cas 0 on existing", func(tx *memdb.Txn) (result, error) {
			n, err := NodeTxn(tx, 20, &NodeTxnOp{Verb: TxnCAS, Node: Node{Node: "n1", Address: "x"}})
			return result{node: n}, err
		}, nil, `failed to set node "n1", index is stale`},
		{"node cas current", func(tx *memdb.Txn) (result, error) {
			n, err := NodeTxn(tx, 20, &NodeTxnOp{Verb: TxnCAS, Node: Node{Node: "n1", Address: "10.0.0.9", ModifyIndex: 10}})
			return result{node: n}, err
		}, func(r result) bool {
			return r.node.Address == "10.0.0.9" && r.node.ModifyIndex == 20 && r.node.CreateIndex == 10
		}, ""},
		{"node delete-cas stale", func(tx *memdb.Txn) (result, error) {
			n, err := NodeTxn(tx, 20, &NodeTxnOp{Verb: TxnDeleteCAS, Node: Node{Node: "n1", ModifyIndex: 3}})
			return result{node: n}, err
		}, nil, `failed to delete node "n1", index is stale`},
		{"node delete answers nothing", func(tx *memdb.Txn) (result, error) {
			n, err := NodeTxn(tx, 20, &NodeTxnOp{Verb: TxnDelete, Node: Node{Node: "n1"}})
			return result{node: n}, err
		}, func(r result) bool { return r.node == nil }, ""},
		{"service get", func(tx *memdb.Txn) (result, error) {
			s, err := ServiceTxn(tx, 20, &ServiceTxnOp{Verb: TxnGet, Node: "n1", Service: Service{ID: "web1"}})
			return result{svc: s}, err
		}, func(r result) bool { return r.svc.Service == "web" && r.svc.Port == 80 }, ""},
		{"service get missing", func(tx *memdb.Txn) (result, error) {
			s, err := ServiceTxn(tx, 20, &ServiceTxnOp{Verb: TxnGet, Node: "n1", Service: Service{ID: "db1"}})
			return result{svc: s}, err
		}, nil, `service "db1" on node "n1" doesn't exist`},
		{"service set on a missing node", func(tx *memdb.Txn) (result, error) {
			s, err := ServiceTxn(tx, 20, &ServiceTxnOp{Verb: TxnSet, Node: "ghost", Service: Service{Service: "db"}})
			return result{svc: s}, err
		}, nil, "node not registered"},
		{"service cas stale", func(tx *memdb.Txn) (result, error) {
			s, err := ServiceTxn(tx, 20, &ServiceTxnOp{Verb: TxnCAS, Node: "n1", Service: Service{ID: "web1", Service: "web", ModifyIndex: 1}})
			return result{svc: s}, err
		}, nil, `failed to set service "web1" on node "n1", index is stale`},
		{"service set", func(tx *memdb.Txn) (result, error) {
			s, err := ServiceTxn(tx, 20, &ServiceTxnOp{Verb: TxnSet, Node: "n1", Service: Service{ID: "web1", Service: "web", Port: 81}})
			return result{svc: s}, err
		}, func(r result) bool { return r.svc.Port == 81 && r.svc.ModifyIndex == 20 && r.svc.Weights.Passing == 1 }, ""},
		{"service delete-cas stale", func(tx *memdb.Txn) (result, error) {
			s, err := ServiceTxn(tx, 20, &ServiceTxnOp{Verb: TxnDeleteCAS, Node: "n1", Service: Service{ID: "web1", ModifyIndex: 2}})
			return result{svc: s}, err
		}, nil, `failed to delete service "web1" on node "n1", index is stale`},
		{"check get", func(tx *memdb.Txn) (result, error) {
			c, err := CheckTxn(tx, 20, &CheckTxnOp{Verb: TxnGet, Check: HealthCheck{Node: "n1", CheckID: "web1-http"}})
			return result{check: c}, err
		}, func(r result) bool { return r.check.ServiceName == "web" && r.check.Status == HealthPassing }, ""},
		{"check set of a missing service", func(tx *memdb.Txn) (result, error) {
			c, err := CheckTxn(tx, 20, &CheckTxnOp{Verb: TxnSet, Check: HealthCheck{Node: "n1", CheckID: "c", ServiceID: "nope"}})
			return result{check: c}, err
		}, nil, "service not registered"},
		{"check set defaults to critical and takes its name as ID", func(tx *memdb.Txn) (result, error) {
			c, err := CheckTxn(tx, 20, &CheckTxnOp{Verb: TxnSet, Check: HealthCheck{Node: "n1", Name: "disk"}})
			return result{check: c}, err
		}, func(r result) bool { return r.check.CheckID == "disk" && r.check.Status == HealthCritical }, ""},
		{"check delete-cas current", func(tx *memdb.Txn) (result, error) {
			c, err := CheckTxn(tx, 20, &CheckTxnOp{Verb: TxnDeleteCAS, Check: HealthCheck{Node: "n1", CheckID: "web1-http", ModifyIndex: 10}})
			return result{check: c}, err
		}, func(r result) bool { return r.check == nil }, ""},
		{"unknown verb", func(tx *memdb.Txn) (result, error) {
			c, err := CheckTxn(tx, 20, &CheckTxnOp{Verb: "frob", Check: HealthCheck{Node: "n1", CheckID: "c"}})
			return result{check: c}, err
		}, nil, `unknown Check verb "frob"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := fixture(t)
			tx := db.Txn(true)
			defer tx.Abort()
			r, err := tc.run(tx)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Fatalf("error = %v, want none", err)
			case !tc.want(r):
				t.Fatalf("answer = %+v %+v %+v, not what was wanted", r.node, r.svc, r.check)
			}
		})
	}
}

// TestTxnOpValidate: what is refused before Raft, as ErrInvalidRequest.
func TestTxnOpValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"node set without name", (&NodeTxnOp{Verb: TxnSet, Node: Node{ID: "x"}}).Validate()},
		{"node get without name or ID", (&NodeTxnOp{Verb: TxnGet}).Validate()},
		{"service without node", (&ServiceTxnOp{Verb: TxnGet, Service: Service{ID: "a"}}).Validate()},
		{"service set without name", (&ServiceTxnOp{Verb: TxnSet, Node: "n", Service: Service{ID: "a"}}).Validate()},
		{"check without ID or name", (&CheckTxnOp{Verb: TxnDelete, Check: HealthCheck{Node: "n"}}).Validate()},
		{"check set with a bad status", (&CheckTxnOp{Verb: TxnSet, Check: HealthCheck{Node: "n", CheckID: "c", Status: "sad"}}).Validate()},
	} {
		if !errors.Is(tc.err, ErrInvalidRequest) {
			t.Errorf("%s: Validate = %v, want ErrInvalidRequest", tc.name, tc.err)
		}
	}
	if err := (&NodeTxnOp{Verb: TxnDelete, Node: Node{ID: "x"}}).Validate(); err != nil {
		t.Errorf("node delete by ID: Validate = %v, want nil", err)
	}
}
