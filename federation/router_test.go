package federation

import (
	"slices"
	"testing"
	"time"
)

func names(ss []Server) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

func TestRouterOrdersByDistance(t *testing.T) {
	rtt := map[string]time.Duration{
		"a.dc2": 30 * time.Millisecond, "b.dc2": 10 * time.Millisecond, "c.dc2": 20 * time.Millisecond,
		"a.dc3": 5 * time.Millisecond, "b.dc3": 6 * time.Millisecond, "c.dc3": 500 * time.Millisecond,
	}
	r := NewRouter("dc1", func(n string) (time.Duration, bool) { d, ok := rtt[n]; return d, ok }, time.Second)
	r.Update([]Server{
		{Name: "s.dc1", Datacenter: "dc1", Addr: "10.0.1.1:8300", Alive: true},
		{Name: "a.dc2", Datacenter: "dc2", Addr: "10.0.2.1:8300", Alive: true},
		{Name: "b.dc2", Datacenter: "dc2", Addr: "10.0.2.2:8300", Alive: true},
		{Name: "c.dc2", Datacenter: "dc2", Addr: "10.0.2.3:8300", Alive: true},
		{Name: "a.dc3", Datacenter: "dc3", Addr: "10.0.3.1:8300", Alive: true},
		{Name: "b.dc3", Datacenter: "dc3", Addr: "10.0.3.2:8300", Alive: true},
		{Name: "c.dc3", Datacenter: "dc3", Addr: "10.0.3.3:8300", Alive: true},
		{Name: "a.dc4", Datacenter: "dc4", Addr: "10.0.4.1:8300", Alive: false},
	})
	// dc3's median (6ms) is below dc2's (20ms), though dc3 has the farthest
	// server; dc4 is known (its server failed) and sorts last.
	if got, want := r.Datacenters(), []string{"dc1", "dc3", "dc2", "dc4"}; !slices.Equal(got, want) {
		t.Errorf("Datacenters() = %v, want %v", got, want)
	}
	if got, want := names(r.Servers("dc2")), []string{"b.dc2", "c.dc2", "a.dc2"}; !slices.Equal(got, want) {
		t.Errorf("Servers(dc2) = %v, want %v (nearest first)", got, want)
	}
	if d, ok := r.RTT("dc3"); !ok || d != 6*time.Millisecond {
		t.Errorf("RTT(dc3) = %v, %v; want 6ms (the median)", d, ok)
	}
	for _, tc := range []struct {
		dc               string
		known, reachable bool
	}{
		{"dc1", true, true}, {"dc2", true, true}, {"dc4", true, false}, {"nope", false, false},
	} {
		if k, re := r.Known(tc.dc), r.Reachable(tc.dc); k != tc.known || re != tc.reachable {
			t.Errorf("Known(%s), Reachable(%s) = %v, %v; want %v, %v", tc.dc, tc.dc, k, re, tc.known, tc.reachable)
		}
	}
	// Distances move: Resort follows them.
	rtt["a.dc2"] = time.Millisecond
	r.Resort()
	if got := names(r.Servers("dc2")); got[0] != "a.dc2" {
		t.Errorf("Servers(dc2) after a.dc2 came closer = %v, want a.dc2 first", got)
	}
}

func TestRouterQuarantine(t *testing.T) {
	r := NewRouter("dc1", nil, time.Hour) // a probe holds its server for the whole test
	r.Update([]Server{
		{Name: "a.dc2", Datacenter: "dc2", Addr: "a", Alive: true},
		{Name: "b.dc2", Datacenter: "dc2", Addr: "b", Alive: true},
	})
	r.Failed("a")
	if got := names(r.Servers("dc2")); !slices.Equal(got, []string{"b.dc2"}) {
		t.Fatalf("Servers(dc2) with a in quarantine = %v, want [b.dc2]", got)
	}
	r.Failed("b")
	if r.Reachable("dc2") || len(r.Servers("dc2")) != 0 {
		t.Fatalf("dc2 with both servers in quarantine is reachable: %v", names(r.Servers("dc2")))
	}
	// Once the quarantine passes, one caller probes; the others still skip.
	r.downMu.Lock()
	for addr, q := range r.down {
		q.until = time.Now().Add(-time.Millisecond)
		r.down[addr] = q
	}
	r.downMu.Unlock()
	if !r.Reachable("dc2") {
		t.Fatalf("Reachable(dc2) after the quarantine = false, want true")
	}
	if got := names(r.Servers("dc2")); len(got) != 2 {
		t.Fatalf("first Servers(dc2) after the quarantine = %v, want both as probes", got)
	}
	if got := r.Servers("dc2"); len(got) != 0 {
		t.Fatalf("second Servers(dc2) while probes run = %v, want none", names(got))
	}
	r.Succeeded("a")
	if got := names(r.Servers("dc2")); !slices.Equal(got, []string{"a.dc2"}) {
		t.Errorf("Servers(dc2) after a's probe succeeded = %v, want [a.dc2]", got)
	}
	// Quarantines grow with failures in a row, up to the cap.
	for range 10 {
		r.Failed("b")
	}
	r.downMu.Lock()
	q := r.down["b"]
	r.downMu.Unlock()
	if q.backoff != maxQuarantine {
		t.Errorf("quarantine after 11 failures = %v, want the %v cap", q.backoff, maxQuarantine)
	}
	// Gossip seeing b alive again (after it was failed) clears it.
	r.Update([]Server{{Name: "a.dc2", Datacenter: "dc2", Addr: "a", Alive: true}, {Name: "b.dc2", Datacenter: "dc2", Addr: "b", Alive: false}})
	r.Update([]Server{{Name: "a.dc2", Datacenter: "dc2", Addr: "a", Alive: true}, {Name: "b.dc2", Datacenter: "dc2", Addr: "b", Alive: true}})
	if got := names(r.Servers("dc2")); len(got) != 2 {
		t.Errorf("Servers(dc2) after b came back alive = %v, want both", got)
	}
}
