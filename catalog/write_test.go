package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

// query is one read under test, reduced to its index.
type query struct {
	name string
	run  func(tx *memdb.Txn, ws memdb.WatchSet) (uint64, error)
}

func queries() []query {
	return []query{
		{"health web", func(tx *memdb.Txn, ws memdb.WatchSet) (uint64, error) {
			i, _, err := CheckServiceNodes(tx, ws, "web", ServiceQuery{})
			return i, err
		}},
		{"catalog web", func(tx *memdb.Txn, ws memdb.WatchSet) (uint64, error) {
			i, _, err := ServiceNodes(tx, ws, "web", ServiceQuery{})
			return i, err
		}},
		{"checks web", func(tx *memdb.Txn, ws memdb.WatchSet) (uint64, error) {
			i, _, err := ServiceChecks(tx, ws, "web", nil)
			return i, err
		}},
		{"health db", func(tx *memdb.Txn, ws memdb.WatchSet) (uint64, error) {
			i, _, err := CheckServiceNodes(tx, ws, "db", ServiceQuery{})
			return i, err
		}},
		{"node n1", func(tx *memdb.Txn, ws memdb.WatchSet) (uint64, error) {
			i, _, err := GetNodeServices(tx, ws, "n1")
			return i, err
		}},
		{"node checks n1", func(tx *memdb.Txn, ws memdb.WatchSet) (uint64, error) {
			i, _, err := NodeChecks(tx, ws, "n1")
			return i, err
		}},
		{"nodes", func(tx *memdb.Txn, ws memdb.WatchSet) (uint64, error) {
			i, _, err := Nodes(tx, ws, nil)
			return i, err
		}},
		{"services", func(tx *memdb.Txn, ws memdb.WatchSet) (uint64, error) {
			i, _, err := Services(tx, ws, nil)
			return i, err
		}},
		{"state any", func(tx *memdb.Txn, ws memdb.WatchSet) (uint64, error) {
			i, _, err := ChecksInState(tx, ws, HealthAny, nil)
			return i, err
		}},
	}
}

// TestWritesMoveExactIndexes applies one write after the fixture and checks,
// for every query, whether its index moved to the write's index and whether
// its watch fired: exactly for the queries whose answers the write touches.
func TestWritesMoveExactIndexes(t *testing.T) {
	t.Parallel()
	const at = 100
	tests := []struct {
		name  string
		write func(tx *memdb.Txn) error
		moved []string // queries whose index must become `at`; the rest must not move
	}{
		{"same registration again", func(tx *memdb.Txn) error {
			r := svc("n1", "10.0.0.1", "web", "web1", 80, "primary", "v1")
			r.NodeMeta = map[string]string{"rack": "a"}
			r.Checks = []*HealthCheck{chk("n1", "serfHealth", "", HealthPassing), chk("n1", "web1-http", "web1", HealthPassing)}
			return Register(tx, at, r)
		}, nil},
		{"same check result", func(tx *memdb.Txn) error {
			return EnsureCheck(tx, at, chk("n1", "web1-http", "web1", HealthPassing))
		}, nil},
		{"web check turns critical", func(tx *memdb.Txn) error {
			return EnsureCheck(tx, at, chk("n1", "web1-http", "web1", HealthCritical))
		}, []string{"health web", "catalog web", "checks web", "node n1", "node checks n1", "state any"}},
		{"serfHealth of web's node fails", func(tx *memdb.Txn) error {
			return EnsureCheck(tx, at, chk("n1", "serfHealth", "", HealthCritical))
		}, []string{"health web", "catalog web", "checks web", "node n1", "node checks n1", "state any"}},
		{"db check output changes", func(tx *memdb.Txn) error {
			c := chk("n2", "db1-tcp", "db1", HealthPassing)
			c.Output = "slow"
			return EnsureCheck(tx, at, c)
		}, []string{"health db", "state any"}},
		{"db's node changes address", func(tx *memdb.Txn) error {
			// n2 hosts web2 as well, so web moves too.
			return EnsureNode(tx, at, &Node{Node: "n2", Address: "10.0.0.22", Datacenter: "dc1", Meta: map[string]string{"rack": "b"}})
		}, []string{"health web", "catalog web", "checks web", "health db", "nodes"}},
		{"new db instance elsewhere", func(tx *memdb.Txn) error {
			r := svc("n3", "10.0.0.3", "db", "db2", 5432)
			r.SkipNodeUpdate = true // the request carries no node meta
			return Register(tx, at, r)
		}, []string{"health db", "services"}},
		{"web service tags change", func(tx *memdb.Txn) error {
			return EnsureService(tx, at, "n1", &Service{ID: "web1", Service: "web", Port: 80, Tags: []string{"primary"}})
		}, []string{"health web", "catalog web", "checks web", "node n1", "node checks n1", "services", "state any"}},
		{"deregister db", func(tx *memdb.Txn) error {
			return Deregister(tx, at, &DeregisterRequest{Node: "n2", ServiceID: "db1"})
		}, []string{"health db", "services", "state any"}},
		{"deregister node n1", func(tx *memdb.Txn) error {
			return Deregister(tx, at, &DeregisterRequest{Node: "N1"})
		}, []string{"health web", "catalog web", "checks web", "node n1", "node checks n1", "nodes", "services", "state any"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := fixture(t)
			qs := queries()
			before := make([]uint64, len(qs))
			watches := make([]memdb.WatchSet, len(qs))
			rtx := db.Txn(false)
			for i, q := range qs {
				watches[i] = memdb.NewWatchSet()
				idx, err := q.run(rtx, watches[i])
				if err != nil {
					t.Fatalf("%s before: %v", q.name, err)
				}
				before[i] = idx
			}
			apply(t, db, tc.write)
			moved := map[string]bool{}
			for _, m := range tc.moved {
				moved[m] = true
			}
			rtx = db.Txn(false)
			for i, q := range qs {
				idx, err := q.run(rtx, nil)
				if err != nil {
					t.Fatalf("%s after: %v", q.name, err)
				}
				if idx < before[i] {
					t.Errorf("%s index went back from %d to %d", q.name, before[i], idx)
				}
				wantIdx := before[i]
				if moved[q.name] {
					wantIdx = at
				}
				if idx != wantIdx {
					t.Errorf("%s index = %d, want %d", q.name, idx, wantIdx)
				}
				if got := fired(watches[i]); got != moved[q.name] {
					t.Errorf("%s watch fired = %v, want %v", q.name, got, moved[q.name])
				}
			}
		})
	}
}

func TestIdempotentWriteKeepsModifyIndex(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	register(t, db, 50, svc("n1", "10.0.0.1", "web", "web1", 80, "primary", "v1"))
	tx := db.Txn(false)
	_, ns, err := GetNodeServices(tx, nil, "n1")
	if err != nil {
		t.Fatalf("GetNodeServices(n1): %v", err)
	}
	// The node record lost its meta (the request carried none): a change.
	if ns.Node.ModifyIndex != 50 || ns.Node.CreateIndex != 10 {
		t.Errorf("node n1 indexes = %d/%d, want 10/50", ns.Node.CreateIndex, ns.Node.ModifyIndex)
	}
	if s := ns.Services["web1"]; s.CreateIndex != 10 || s.ModifyIndex != 10 {
		t.Errorf("web1 indexes = %d/%d, want 10/10", s.CreateIndex, s.ModifyIndex)
	}
	_, cs, err := NodeChecks(tx, nil, "n1")
	if err != nil {
		t.Fatalf("NodeChecks(n1): %v", err)
	}
	for _, c := range cs {
		if c.ModifyIndex != 10 {
			t.Errorf("check %q ModifyIndex = %d, want 10", c.CheckID, c.ModifyIndex)
		}
	}
}

func TestDeregisterCascades(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		req          *DeregisterRequest
		wantNodes    int
		wantServices int
		wantChecks   int
	}{
		{"node", &DeregisterRequest{Node: "n2"}, 2, 2, 3},
		{"node by other case", &DeregisterRequest{Node: "N2"}, 2, 2, 3},
		{"service", &DeregisterRequest{Node: "n2", ServiceID: "web2"}, 3, 3, 5},
		{"check", &DeregisterRequest{Node: "n2", CheckID: "serfHealth"}, 3, 4, 5},
		{"service and check", &DeregisterRequest{Node: "n2", ServiceID: "db1", CheckID: "serfHealth"}, 3, 3, 4},
		{"absent node", &DeregisterRequest{Node: "n9"}, 3, 4, 6},
		{"absent service", &DeregisterRequest{Node: "n1", ServiceID: "nope"}, 3, 4, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := fixture(t)
			apply(t, db, func(tx *memdb.Txn) error { return Deregister(tx, 20, tc.req) })
			tx := db.Txn(false)
			_, nodes, _ := Nodes(tx, nil, nil)
			var svcs []*Service
			_ = eachRow(tx, func(r *nodeRow) (bool, error) { svcs = append(svcs, r.services...); return true, nil })
			_, checks, _ := ChecksInState(tx, nil, HealthAny, nil)
			if len(nodes) != tc.wantNodes || len(svcs) != tc.wantServices || len(checks) != tc.wantChecks {
				t.Errorf("Deregister(%+v) left %d nodes, %d services, %d checks; want %d, %d, %d",
					tc.req, len(nodes), len(svcs), len(checks), tc.wantNodes, tc.wantServices, tc.wantChecks)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write func(tx *memdb.Txn) error
		want  error
	}{
		{"service on absent node", func(tx *memdb.Txn) error {
			return EnsureService(tx, 20, "n9", &Service{Service: "x"})
		}, ErrMissingNode},
		{"check on absent node", func(tx *memdb.Txn) error {
			return EnsureCheck(tx, 20, chk("n9", "c", "", HealthPassing))
		}, ErrMissingNode},
		{"check for absent service", func(tx *memdb.Txn) error {
			return EnsureCheck(tx, 20, chk("n1", "c", "nope", HealthPassing))
		}, ErrMissingService},
		{"check for service on another node", func(tx *memdb.Txn) error {
			return EnsureCheck(tx, 20, chk("n1", "c", "db1", HealthPassing))
		}, ErrMissingService},
		{"register check for absent service", func(tx *memdb.Txn) error {
			r := node("n1", "10.0.0.1", nil)
			r.Check = chk("", "c", "nope", HealthPassing)
			return Register(tx, 20, r)
		}, ErrMissingService},
		{"register without address", func(tx *memdb.Txn) error {
			return Register(tx, 20, &RegisterRequest{Node: "n9"})
		}, ErrInvalidRequest},
		{"register check for other node", func(tx *memdb.Txn) error {
			r := node("n1", "10.0.0.1", nil)
			r.Check = chk("n2", "c", "", HealthPassing)
			return Register(tx, 20, r)
		}, ErrInvalidRequest},
		{"bad status", func(tx *memdb.Txn) error {
			return EnsureCheck(tx, 20, chk("n1", "c", "", "sleepy"))
		}, ErrInvalidRequest},
		{"service without name", func(tx *memdb.Txn) error {
			return EnsureService(tx, 20, "n1", &Service{ID: "x"})
		}, ErrInvalidRequest},
		{"name held by live node with other ID", func(tx *memdb.Txn) error {
			if err := EnsureNode(tx, 20, &Node{ID: "aaaa", Node: "n1", Address: "10.0.0.1"}); err != nil {
				return err
			}
			return EnsureNode(tx, 21, &Node{ID: "bbbb", Node: "N1", Address: "10.0.0.1"})
		}, ErrNodeIDConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := fixture(t)
			tx := db.Txn(true)
			defer tx.Abort()
			if err := tc.write(tx); !errors.Is(err, tc.want) {
				t.Errorf("%s: error = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
}

func TestNodeIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		write     *Node
		wantNodes []string
		wantID    string // ID of the node named write.Node afterwards
	}{
		{"rename by ID drops old name", &Node{ID: "id-3", Node: "n4", Address: "10.0.0.4"}, []string{"n1", "n2", "n4"}, "id-3"},
		{"dead node loses its name", &Node{ID: "id-x", Node: "n3", Address: "10.0.0.9"}, []string{"n1", "n2", "n3"}, "id-x"},
		{"empty ID keeps stored ID", &Node{Node: "N3", Address: "10.0.0.3"}, []string{"n1", "n2", "n3"}, "id-3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := fixture(t)
			apply(t, db, func(tx *memdb.Txn) error {
				return EnsureNode(tx, 20, &Node{ID: "id-3", Node: "n3", Address: "10.0.0.3", Meta: map[string]string{"rack": "a"}})
			})
			apply(t, db, func(tx *memdb.Txn) error { return EnsureNode(tx, 21, tc.write) })
			tx := db.Txn(false)
			_, nodes, _ := Nodes(tx, nil, nil)
			var names []string
			for _, n := range nodes {
				names = append(names, n.Node)
			}
			if len(names) != len(tc.wantNodes) || names[2] != tc.wantNodes[2] {
				t.Errorf("Nodes() after EnsureNode(%+v) = %v, want %v", tc.write, names, tc.wantNodes)
			}
			_, n, _ := GetNode(tx, nil, tc.write.Node)
			if n == nil || n.ID != tc.wantID {
				t.Errorf("GetNode(%q) = %+v, want ID %q", tc.write.Node, n, tc.wantID)
			}
		})
	}
}

// TestCheckRoundTrip stores a check with every field set, through the
// packed form and through the whole-definition form, and reads back what
// was written: a field the packing forgets fails here.
func TestCheckRoundTrip(t *testing.T) {
	t.Parallel()
	filled := func(withLists bool) *HealthCheck {
		c := &HealthCheck{Node: "n1", CheckID: "c1", Name: "name", Status: HealthWarning, Notes: "notes",
			Output: "output", ServiceID: "web1", Type: "http", Interval: "10s", Timeout: "5s", ExposedPort: -21000}
		d := reflect.ValueOf(&c.Definition).Elem()
		for i := range d.NumField() {
			f := d.Field(i)
			switch f.Kind() {
			case reflect.String:
				f.SetString(fmt.Sprintf("value %d é", i))
			case reflect.Bool:
				f.SetBool(true)
			case reflect.Uint:
				f.SetUint(1<<40 + uint64(i))
			}
		}
		if withLists {
			c.Definition.Header = map[string][]string{"X-A": {"1", "2"}}
			c.Definition.ScriptArgs = []string{"/bin/check", "-v"}
		}
		return c
	}
	for _, withLists := range []bool{false, true} {
		t.Run(fmt.Sprintf("lists=%v", withLists), func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			register(t, db, 5, svc("n1", "10.0.0.1", "web", "web1", 80, "a"))
			want := filled(withLists)
			apply(t, db, func(tx *memdb.Txn) error { return EnsureCheck(tx, 6, want) })
			_, got, err := NodeChecks(db.Txn(false), nil, "n1")
			if err != nil || len(got) != 1 {
				t.Fatalf("NodeChecks = %v, %v; want one check", got, err)
			}
			want.ServiceName, want.ServiceTags, want.CreateIndex, want.ModifyIndex = "web", []string{"a"}, 6, 6
			if !reflect.DeepEqual(got[0], want) {
				t.Errorf("stored check reads back as\n%+v\nwant\n%+v", got[0], want)
			}
			// The same check again changes nothing.
			again := filled(withLists)
			apply(t, db, func(tx *memdb.Txn) error { return EnsureCheck(tx, 7, again) })
			if _, got, _ := NodeChecks(db.Txn(false), nil, "n1"); got[0].ModifyIndex != 6 {
				t.Errorf("re-registering the same check moved its ModifyIndex to %d, want 6", got[0].ModifyIndex)
			}
		})
	}
}

// TestServiceSets follows which nodes host a service through renames,
// second instances, deletions and names that differ only in case.
func TestServiceSets(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	instances := func(name string) []string {
		_, sn, err := ServiceNodes(db.Txn(false), nil, name, ServiceQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range sn {
			out = append(out, s.Node+"/"+s.ServiceID)
		}
		return out
	}
	check := func(step, name string, want ...string) {
		t.Helper()
		if got := instances(name); !slices.Equal(got, want) {
			t.Errorf("after %s: instances of %q = %v, want %v", step, name, got, want)
		}
	}
	register(t, db, 10, svc("Node-B", "10.0.0.2", "web", "w1", 80), svc("node-a", "10.0.0.1", "Web", "w2", 80),
		svc("node-a", "10.0.0.1", "web", "W1", 81))
	check("registering", "WEB", "node-a/W1", "node-a/w2", "Node-B/w1")
	register(t, db, 11, svc("node-a", "10.0.0.1", "api", "w2", 80))
	check("renaming w2", "web", "node-a/W1", "Node-B/w1")
	check("renaming w2", "api", "node-a/w2")
	apply(t, db, func(tx *memdb.Txn) error { return DeleteService(tx, 12, "NODE-A", "w1") })
	check("deleting W1", "web", "Node-B/w1")
	apply(t, db, func(tx *memdb.Txn) error { return DeleteNode(tx, 13, "node-b") })
	check("deleting Node-B", "web")
	check("deleting Node-B", "api", "node-a/w2")
	tx := db.Txn(false)
	if set, _ := serviceSet(tx, "web"); set != nil {
		t.Errorf("service web has no instance left, but its set holds %d nodes", set.nodes.Len())
	}
}
