package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

const (
	qid1 = "11111111-1111-4111-8111-111111111111"
	qid2 = "22222222-2222-4222-8222-222222222222"
	qid3 = "33333333-3333-4333-8333-333333333333"
	qid4 = "44444444-4444-4444-8444-444444444444"
)

func setQuery(t testing.TB, db *memdb.MemDB, idx uint64, q *PreparedQuery) {
	t.Helper()
	apply(t, db, func(tx *memdb.Txn) error { return QuerySet(tx, idx, q) })
}

func trySetQuery(db *memdb.MemDB, idx uint64, q *PreparedQuery) error {
	tx := db.Txn(true)
	defer tx.Abort()
	if err := QuerySet(tx, idx, q); err != nil {
		return err
	}
	tx.Commit()
	return nil
}

func TestQueryValidate(t *testing.T) {
	t.Parallel()
	ok := QueryService{Service: "web"}
	tmpl := QueryTemplate{Type: QueryTemplateNamePrefix}
	tests := []struct {
		name    string
		q       PreparedQuery
		wantErr string // "" for valid
	}{
		{"plain", PreparedQuery{Name: "web", Service: ok}, ""},
		{"no name", PreparedQuery{Service: ok}, ""},
		{"failover", PreparedQuery{Service: QueryService{Service: "web", Failover: QueryFailover{NearestN: 2, Datacenters: []string{"dc2"}}}}, ""},
		{"targets", PreparedQuery{Service: QueryService{Service: "web", Failover: QueryFailover{Targets: []QueryFailoverTarget{{Datacenter: "dc2"}}}}}, ""},
		{"template without service", PreparedQuery{Name: "geo-", Template: tmpl}, ""},
		{"template regexp", PreparedQuery{Name: "geo-", Template: QueryTemplate{Type: QueryTemplateNamePrefix, Regexp: "^geo-(.*)$"}, Service: QueryService{Service: "${match(1)}"}}, ""},
		{"ttl", PreparedQuery{Service: ok, DNS: QueryDNS{TTL: "10s"}}, ""},
		{"template options without a type, ignored as Consul does", PreparedQuery{Template: QueryTemplate{Regexp: "([", RemoveEmptyTags: true}, Service: ok}, ""},
		{"default namespace", PreparedQuery{Service: QueryService{Service: "web", Namespace: "default", Partition: "default"}}, ""},

		{"no service", PreparedQuery{Name: "web"}, "service name is required"},
		{"negative nearest", PreparedQuery{Service: QueryService{Service: "web", Failover: QueryFailover{NearestN: -1}}}, "NearestN -1"},
		{"bad regexp", PreparedQuery{Name: "geo-", Template: QueryTemplate{Type: QueryTemplateNamePrefix, Regexp: "(["}, Service: ok}, "does not compile"},
		{"bad template type", PreparedQuery{Template: QueryTemplate{Type: "exact"}, Service: ok}, "template type"},
		{"bad ttl", PreparedQuery{Service: ok, DNS: QueryDNS{TTL: "soon"}}, "DNS.TTL"},
		{"negative ttl", PreparedQuery{Service: ok, DNS: QueryDNS{TTL: "-1s"}}, "must not be negative"},
		{"uuid name", PreparedQuery{Name: qid2, Service: ok}, "looks like a query ID"},
		{"unknown variable", PreparedQuery{Name: "geo-", Template: tmpl, Service: QueryService{Service: "${node.name}"}}, "unknown variable"},
		{"unterminated", PreparedQuery{Name: "geo-", Template: tmpl, Service: QueryService{Service: "${name.full"}}, "unterminated"},
		{"bad match", PreparedQuery{Name: "geo-", Template: tmpl, Service: QueryService{Service: "${match(x)}"}}, "match takes one integer"},
		{"connect", PreparedQuery{Service: QueryService{Service: "web", Connect: true}}, "Connect"},
		{"peer target", PreparedQuery{Service: QueryService{Service: "web", Failover: QueryFailover{Targets: []QueryFailoverTarget{{Peer: "p"}}}}}, "peers"},
		{"targets and list", PreparedQuery{Service: QueryService{Service: "web", Failover: QueryFailover{Datacenters: []string{"dc2"}, Targets: []QueryFailoverTarget{{Datacenter: "dc3"}}}}}, "cannot be combined"},
		{"empty dc", PreparedQuery{Service: QueryService{Service: "web", Failover: QueryFailover{Datacenters: []string{""}}}}, "empty datacenter"},
		{"namespace", PreparedQuery{Service: QueryService{Service: "web", Namespace: "team"}}, "namespaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.q.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("Validate(%+v) = %v, want nil", tc.q, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidQuery) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate(%+v) = %v, want an ErrInvalidQuery naming %q", tc.q, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("Validate(%+v) = %q, want one line", tc.q, err)
			}
		})
	}
}

func TestQueryCRUD(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	setQuery(t, db, 5, &PreparedQuery{ID: qid1, Name: "web", Token: "secret", Service: QueryService{Service: "web", Tags: []string{"v1"}}})

	tx := db.Txn(false)
	ws := memdb.NewWatchSet()
	idx, q, err := QueryGet(tx, ws, qid1)
	if err != nil || q == nil || idx != 5 {
		t.Fatalf("QueryGet(%s) = %d, %+v, %v; want the query at 5", qid1, idx, q, err)
	}
	if q.Token != "" || q.CreateIndex != 5 || q.ModifyIndex != 5 {
		t.Errorf("stored query = %+v, want no token and indexes 5/5", q)
	}

	// An update keeps CreateIndex, moves ModifyIndex and fires the watch.
	setQuery(t, db, 7, &PreparedQuery{ID: qid1, Name: "web", Service: QueryService{Service: "web2"}})
	if !fired(ws) {
		t.Errorf("watch of QueryGet did not fire on update")
	}
	_, q, _ = QueryGet(db.Txn(false), nil, qid1)
	if q.CreateIndex != 5 || q.ModifyIndex != 7 || q.Service.Service != "web2" {
		t.Errorf("updated query = %+v, want web2 with indexes 5/7", q)
	}

	// Conflicts.
	conflicts := []struct {
		name string
		q    *PreparedQuery
		want string
	}{
		{"same name", &PreparedQuery{ID: qid2, Name: "WEB", Service: QueryService{Service: "x"}}, "is taken"},
		{"invalid", &PreparedQuery{ID: qid2, Service: QueryService{}}, "service name is required"},
		{"no id", &PreparedQuery{Service: QueryService{Service: "x"}}, "ID missing"},
	}
	for _, c := range conflicts {
		if err := trySetQuery(db, 8, c.q); !errors.Is(err, ErrInvalidQuery) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("QuerySet(%s) = %v, want ErrInvalidQuery naming %q", c.name, err, c.want)
		}
	}
	setQuery(t, db, 9, &PreparedQuery{ID: qid2, Template: QueryTemplate{Type: QueryTemplateNamePrefix}})
	if err := trySetQuery(db, 10, &PreparedQuery{ID: qid3, Template: QueryTemplate{Type: QueryTemplateNamePrefix}}); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("second empty-name template = %v, want ErrInvalidQuery", err)
	}

	idx, list, err := QueryList(db.Txn(false), nil)
	if err != nil || idx != 9 || len(list) != 2 || list[0].ID != qid1 || list[1].ID != qid2 {
		t.Errorf("QueryList = %d, %+v, %v; want both queries at 9", idx, list, err)
	}

	apply(t, db, func(tx *memdb.Txn) error { return QueryDelete(tx, 11, qid1) })
	tx = db.Txn(true)
	if err := QueryDelete(tx, 12, qid1); !errors.Is(err, ErrQueryNotFound) {
		t.Errorf("QueryDelete(deleted) = %v, want ErrQueryNotFound", err)
	}
	tx.Abort()
	if idx, q, _ := QueryGet(db.Txn(false), nil, qid1); q != nil || idx != 11 {
		t.Errorf("QueryGet after delete = %d, %+v; want nil at 11", idx, q)
	}
}

func TestQueryDeleteSession(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	setQuery(t, db, 5, &PreparedQuery{ID: qid1, Session: "s1", Service: QueryService{Service: "a"}})
	setQuery(t, db, 6, &PreparedQuery{ID: qid2, Session: "s2", Service: QueryService{Service: "b"}})
	setQuery(t, db, 7, &PreparedQuery{ID: qid3, Service: QueryService{Service: "c"}})
	apply(t, db, func(tx *memdb.Txn) error { return QueryDeleteSession(tx, 8, "s1") })
	_, list, _ := QueryList(db.Txn(false), nil)
	var ids []string
	for _, q := range list {
		ids = append(ids, q.ID)
	}
	if !slices.Equal(ids, []string{qid2, qid3}) {
		t.Errorf("queries after session s1 ended = %v, want %v", ids, []string{qid2, qid3})
	}
}

func TestQueryResolve(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	setQuery(t, db, 5, &PreparedQuery{ID: qid1, Name: "web", Service: QueryService{Service: "web"}})
	setQuery(t, db, 6, &PreparedQuery{ID: qid2, Name: "geo-", Template: QueryTemplate{Type: QueryTemplateNamePrefix},
		Service: QueryService{Service: "${name.suffix}", Tags: []string{"${name.prefix}", "x-${name.full}"}}})
	setQuery(t, db, 7, &PreparedQuery{ID: qid3, Name: "geo-db-", Template: QueryTemplate{Type: QueryTemplateNamePrefix, Regexp: `^geo-db-(\w+)-(\w+)$`, RemoveEmptyTags: true},
		Service: QueryService{Service: "${match(1)}", Tags: []string{"${match(2)}", "${match(3)}"}, Failover: QueryFailover{Datacenters: []string{"${match(2)}"}}}})
	tests := []struct {
		arg         string
		wantID      string
		wantService string
		wantTags    []string
	}{
		{qid1, qid1, "web", nil},
		{"WEB", qid1, "web", nil},
		{"geo-mysql", qid2, "mysql", []string{"geo-", "x-geo-mysql"}},
		{"geo-db-pg-eu", qid3, "pg", []string{"eu"}},
		{"geo-db-nomatch", qid3, "", nil}, // the regexp does not match: empty interpolations
		{"other", "", "", nil},
		{"ge", "", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.arg, func(t *testing.T) {
			_, q, err := QueryResolve(db.Txn(false), nil, tc.arg)
			if err != nil {
				t.Fatalf("QueryResolve(%q) = %v", tc.arg, err)
			}
			if tc.wantID == "" {
				if q != nil {
					t.Errorf("QueryResolve(%q) = %+v, want nil", tc.arg, q)
				}
				return
			}
			if q == nil || q.ID != tc.wantID || q.Service.Service != tc.wantService || !slices.Equal(q.Service.Tags, tc.wantTags) {
				t.Errorf("QueryResolve(%q) = %+v, want %s rendering service %q tags %q", tc.arg, q, tc.wantID, tc.wantService, tc.wantTags)
			}
		})
	}
	// The stored template is untouched by rendering.
	_, q, _ := QueryGet(db.Txn(false), nil, qid2)
	if q.Service.Service != "${name.suffix}" || q.Service.Tags[0] != "${name.prefix}" {
		t.Errorf("stored template after rendering = %+v", q.Service)
	}
	// A catch-all template (empty name) answers what nothing else does,
	// and looks up the name itself when it names no service.
	setQuery(t, db, 8, &PreparedQuery{ID: qid4, Template: QueryTemplate{Type: QueryTemplateNamePrefix}})
	if _, q, err := QueryResolve(db.Txn(false), nil, "other"); err != nil || q == nil || q.ID != qid4 || q.Service.Service != "other" {
		t.Errorf("QueryResolve(other) with a catch-all = %+v, %v; want %s looking up other", q, err, qid4)
	}
}

func TestQueryRender(t *testing.T) {
	t.Parallel()
	q := &PreparedQuery{Name: "Pre-", Template: QueryTemplate{Type: QueryTemplateNamePrefix, Regexp: `^pre-(a+)(b*)$`},
		Service: QueryService{
			Service:     "${name.full}|${name.prefix}|${name.suffix}|${ match(1) }|${match(2)}|${match(9)}|$${literal}|${agent.segment}",
			NodeMeta:    map[string]string{"k": "${match(1)}"},
			ServiceMeta: map[string]string{"k": "v-${name.suffix}"},
		}}
	r, err := q.Render("pre-aab")
	if err != nil {
		t.Fatalf("Render = %v", err)
	}
	if want := "pre-aab|Pre-|aab|aa|b||${literal}|"; r.Service.Service != want {
		t.Errorf("Render service = %q, want %q", r.Service.Service, want)
	}
	if r.Service.NodeMeta["k"] != "aa" || r.Service.ServiceMeta["k"] != "v-aab" {
		t.Errorf("Render meta = %v %v, want aa and v-aab", r.Service.NodeMeta, r.Service.ServiceMeta)
	}
	if q.Service.NodeMeta["k"] != "${match(1)}" {
		t.Errorf("Render changed the template's map: %v", q.Service.NodeMeta)
	}
	plain := &PreparedQuery{Service: QueryService{Service: "${name.full}"}}
	if r, err := plain.Render("x"); err != nil || r != plain {
		t.Errorf("Render of a non-template = %+v, %v; want it unchanged", r, err)
	}
}

func TestQueryNodes(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	// web3 on n3 is critical through serfHealth; web2 has a warning.
	r := svc("n4", "10.0.0.4", "web", "web4", 80, "v1", "canary")
	r.Service.Meta = map[string]string{"version": "2"}
	r.Checks = []*HealthCheck{chk("n4", "flaky", "web4", HealthCritical)}
	register(t, db, 20, r)
	tests := []struct {
		name string
		svc  QueryService
		want []string
	}{
		{"not critical", QueryService{Service: "web"}, []string{"web1", "web2"}},
		{"only passing", QueryService{Service: "web", OnlyPassing: true}, []string{"web1"}},
		{"ignore check", QueryService{Service: "web", IgnoreCheckIDs: []string{"flaky", "serfHealth"}}, []string{"web1", "web2", "web3", "web4"}},
		{"tag", QueryService{Service: "web", Tags: []string{"PRIMARY"}, IgnoreCheckIDs: []string{"serfHealth"}}, []string{"web1", "web3"}},
		{"not tag", QueryService{Service: "web", Tags: []string{"!v1"}, IgnoreCheckIDs: []string{"flaky", "serfHealth"}}, []string{"web2", "web3"}},
		{"node meta", QueryService{Service: "web", NodeMeta: map[string]string{"rack": "a"}}, []string{"web1"}},
		{"service meta", QueryService{Service: "web", ServiceMeta: map[string]string{"version": "2"}, IgnoreCheckIDs: []string{"flaky"}}, []string{"web4"}},
		{"unknown service", QueryService{Service: "nope"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, nodes, err := QueryNodes(db.Txn(false), nil, &tc.svc)
			if err != nil {
				t.Fatalf("QueryNodes = %v", err)
			}
			var got []string
			for _, n := range nodes {
				got = append(got, n.Service.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("QueryNodes(%+v) = %v, want %v", tc.svc, got, tc.want)
			}
		})
	}
}

func TestQuerySnapshotRestore(t *testing.T) {
	t.Parallel()
	src := newDB(t)
	setQuery(t, src, 5, &PreparedQuery{ID: qid1, Name: "web", Service: QueryService{Service: "web", NodeMeta: map[string]string{"a": "b"}}})
	setQuery(t, src, 6, &PreparedQuery{ID: qid2, Name: "geo-", Template: QueryTemplate{Type: QueryTemplateNamePrefix}, DNS: QueryDNS{TTL: "5s"}})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := Snapshot(src.Txn(false), enc); err != nil {
		t.Fatal(err)
	}
	if err := SnapshotQueries(src.Txn(false), enc); err != nil {
		t.Fatal(err)
	}
	dst := newDB(t)
	dec := json.NewDecoder(&buf)
	apply(t, dst, func(tx *memdb.Txn) error {
		if err := Restore(tx, dec); err != nil {
			return err
		}
		return RestoreQueries(tx, dec)
	})
	wantIdx, want, _ := QueryList(src.Txn(false), nil)
	gotIdx, got, _ := QueryList(dst.Txn(false), nil)
	if gotIdx != wantIdx || !reflect.DeepEqual(got, want) {
		t.Errorf("QueryList after restore = %d, %+v; want %d, %+v", gotIdx, got, wantIdx, want)
	}
	if _, q, _ := QueryResolve(dst.Txn(false), nil, "geo-x"); q == nil || q.ID != qid2 {
		t.Errorf("template lookup after restore = %+v, want %s", q, qid2)
	}
	var foreign bytes.Buffer
	_ = json.NewEncoder(&foreign).Encode(map[string]any{"Format": "other", "Version": 1})
	tx := newDB(t).Txn(true)
	defer tx.Abort()
	if err := RestoreQueries(tx, json.NewDecoder(&foreign)); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("RestoreQueries(foreign) = %v, want ErrBadSnapshot", err)
	}
}

func FuzzQueryRender(f *testing.F) {
	for _, s := range []string{"${name.full}", "$${x}", "${match(1)}", "${", "a${name.suffix}b${match(0)}", "${match(-1)}"} {
		f.Add(s, "geo-db-x")
	}
	f.Fuzz(func(t *testing.T, field, name string) {
		q := &PreparedQuery{Name: "geo-", Template: QueryTemplate{Type: QueryTemplateNamePrefix, Regexp: `^geo-(.*)$`},
			Service: QueryService{Service: field, Tags: []string{field}}}
		r, err := q.Render(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("Render(%q) error %v does not wrap ErrInvalidQuery", field, err)
			}
			return
		}
		if r == q || q.Service.Service != field {
			t.Fatalf("Render(%q) changed or returned the template", field)
		}
	})
}
