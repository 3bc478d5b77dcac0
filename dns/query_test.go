package dns

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meridian/meridian/catalog"
	"github.com/miekg/dns"
)

// queryFake is a Backend that also runs prepared queries, from answers
// keyed by (dc, name).
type queryFake struct {
	*fakeBackend
	mu      sync.Mutex
	answers map[viewKey]*catalog.QueryExecuteResponse
	asked   []viewKey
}

var _ QueryBackend = (*queryFake)(nil)

func (f *queryFake) ExecuteQuery(_ context.Context, dc, name string) (*catalog.QueryExecuteResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, viewKey{dc, name})
	if err := f.fakeBackend.dcErr(dc); err != nil {
		return nil, err
	}
	return f.answers[viewKey{dc, name}], nil
}

func TestParseQueryNames(t *testing.T) {
	t.Parallel()
	domains := []string{"consul."}
	tests := []struct {
		qname string
		want  query
	}{
		{"q.query.consul.", query{kind: kindQuery, name: "q", domain: "consul."}},
		{"q.query.dc2.consul.", query{kind: kindQuery, name: "q", dc: "dc2", domain: "consul."}},
		{"geo.db.query.consul.", query{kind: kindQuery, name: "geo.db", domain: "consul."}},
		{"geo.db.query.dc2.consul.", query{kind: kindQuery, name: "geo.db", dc: "dc2", domain: "consul."}},
		{"query.consul.", query{domain: "consul."}},
	}
	for _, tc := range tests {
		if got, ok := parseName(tc.qname, domains); !ok || got != tc.want {
			t.Errorf("parseName(%q) = %+v, %v; want %+v", tc.qname, got, ok, tc.want)
		}
	}
}

func TestQueryLookups(t *testing.T) {
	t.Parallel()
	fb := newFakeBackend()
	fb.setDC("dc2", nil)
	b := &queryFake{fakeBackend: fb, answers: map[viewKey]*catalog.QueryExecuteResponse{}}
	ignored := inst("n3", "10.0.2.3", "", 82, nil, catalog.HealthCritical) // the query ignored that check
	ignored.Node.Datacenter = "dc2"
	b.answers[viewKey{"dc1", "web"}] = &catalog.QueryExecuteResponse{
		Service: "Web", Datacenter: "dc2", Failovers: 1, DNS: catalog.QueryDNS{TTL: "30s"},
		Nodes: []*catalog.CheckServiceNode{
			inst("n1", "10.0.2.1", "", 80, nil, catalog.HealthPassing),
			inst("n2", "10.0.2.2", "10.9.9.9", 81, nil, catalog.HealthWarning),
			ignored,
		},
	}
	b.answers[viewKey{"dc2", "geo.db"}] = &catalog.QueryExecuteResponse{
		Service: "db", Datacenter: "dc2",
		Nodes: []*catalog.CheckServiceNode{inst("d1", "10.0.2.9", "", 5432, nil)},
	}
	b.answers[viewKey{"dc1", "empty"}] = &catalog.QueryExecuteResponse{Service: "web", Datacenter: "dc1"}
	cfg := testConfig()
	cfg.ServiceTTL = map[string]time.Duration{"db": 7 * time.Second}
	_, addr := startServer(t, cfg, b)

	r := ask(t, addr, "udp", "web.query.consul.", dns.TypeA, 0)
	if got, want := render(r.Answer), []string{"A 10.0.2.1", "A 10.0.2.3", "A 10.9.9.9"}; r.Rcode != dns.RcodeSuccess || !slices.Equal(got, want) {
		t.Errorf("web.query.consul A = %s %v, want %v", dns.RcodeToString[r.Rcode], got, want)
	}
	for _, rr := range r.Answer {
		if rr.Header().Ttl != 30 || rr.Header().Name != "web.query.consul." {
			t.Errorf("web.query.consul record %v: want TTL 30 (the query's) named web.query.consul.", rr)
		}
	}
	r = ask(t, addr, "tcp", "web.query.consul.", dns.TypeSRV, 0)
	want := []string{"SRV 1 1 80 n1.node.dc2.consul.", "SRV 1 1 81 0a090909.addr.dc2.consul.", "SRV 1 1 82 n3.node.dc2.consul."}
	if got := render(r.Answer); !slices.Equal(got, want) {
		t.Errorf("web.query.consul SRV = %v, want %v (targets in the DC that answered)", got, want)
	}
	if got, want := extraNamed(r.Extra), []string{"0a090909.addr.dc2.consul. A 10.9.9.9", "n1.node.dc2.consul. A 10.0.2.1", "n3.node.dc2.consul. A 10.0.2.3"}; !slices.Equal(got, want) {
		t.Errorf("web.query.consul SRV extra = %v, want %v", got, want)
	}

	// A dotted name in another DC; the service TTL applies when the query
	// sets none.
	r = ask(t, addr, "udp", "GEO.db.query.dc2.consul.", dns.TypeA, 0)
	if got := render(r.Answer); len(got) != 1 || got[0] != "A 10.0.2.9" || r.Answer[0].Header().Ttl != 7 {
		t.Errorf("geo.db.query.dc2.consul = %v, want A 10.0.2.9 with TTL 7", r.Answer)
	}

	for _, name := range []string{"nope.query.consul.", "empty.query.consul.", "web.query.dc9.consul."} {
		r := ask(t, addr, "udp", name, dns.TypeA, 0)
		if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
			t.Errorf("%s = %s with %d authority records, want NXDOMAIN with the SOA", name, dns.RcodeToString[r.Rcode], len(r.Ns))
		}
	}
	fb.setDC("dc2", fmt.Errorf("cut off: %w", ErrUnreachable))
	if r := ask(t, addr, "udp", "geo.db.query.dc2.consul.", dns.TypeA, 0); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("query in an unreachable dc = %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

// A Backend that cannot run prepared queries answers NXDOMAIN.
func TestQueryWithoutQueryBackend(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, testConfig(), newFakeBackend())
	if r := ask(t, addr, "udp", "web.query.consul.", dns.TypeA, 0); r.Rcode != dns.RcodeNameError {
		t.Errorf("web.query.consul = %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}
