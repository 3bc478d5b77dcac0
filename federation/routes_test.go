package federation

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink tests read while the code writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestTable(local string, rtts map[string]time.Duration) (*Table, *syncBuffer) {
	var logs syncBuffer
	rtt := func(dc string) (time.Duration, bool) { d, ok := rtts[dc]; return d, ok }
	return NewTable(local, "s-"+local, rtt, slog.New(slog.NewTextHandler(&logs, nil))), &logs
}

func ad(dc string, paths ...[]string) *Advertisement {
	a := &Advertisement{Datacenter: dc, Server: "s-" + dc, Index: 1}
	for _, p := range paths {
		a.Routes = append(a.Routes, AdvertisedRoute{Path: p, RTT: time.Duration(len(p)-1) * 10 * time.Millisecond})
	}
	return a
}

func TestTableRoutesThroughNeighbours(t *testing.T) {
	tb, _ := newTestTable("dc2", map[string]time.Duration{"dc1": 10 * time.Millisecond, "dc4": 50 * time.Millisecond})
	if err := tb.Heard("a1", "dc1", "s-dc1", ad("dc1", []string{"dc1"}, []string{"dc1", "dc3"}, []string{"dc1", "dc3", "dc5"})); err != nil {
		t.Fatal(err)
	}
	if err := tb.Heard("a4", "dc4", "s-dc4", ad("dc4", []string{"dc4"}, []string{"dc4", "dc3"})); err != nil {
		t.Fatal(err)
	}
	rs := tb.Lookup("dc3")
	if len(rs) != 2 || rs[0].NextHop != "dc1" || rs[1].NextHop != "dc4" {
		t.Fatalf("Lookup(dc3) = %+v, want via dc1 (20ms) then dc4 (60ms)", rs)
	}
	if rs[0].RTT != 20*time.Millisecond || rs[0].Hops() != 2 {
		t.Errorf("Lookup(dc3)[0] = %+v, want RTT 20ms over 2 hops", rs[0])
	}
	if rs := tb.Lookup("dc5"); len(rs) != 1 || !slices.Equal(rs[0].Path, []string{"dc1", "dc3", "dc5"}) {
		t.Errorf("Lookup(dc5) = %+v, want dc1 dc3 dc5", rs)
	}
	// A direct link wins whenever it is up, however far.
	if err := tb.Heard("a3", "dc3", "s-dc3", ad("dc3", []string{"dc3"})); err != nil {
		t.Fatal(err)
	}
	if rs := tb.Lookup("dc3"); rs[0].NextHop != "dc3" {
		t.Errorf("with a link to dc3, Lookup(dc3)[0] = %+v, want direct", rs[0])
	}
	// dc1 failing withdraws what came through it, and dc3 is reached by
	// its own link; dc5 has no path left.
	tb.Down("a1", "dc1", "s-dc1", errors.New("link down"))
	if rs := tb.Lookup("dc5"); len(rs) != 0 {
		t.Errorf("after dc1 failed, Lookup(dc5) = %+v, want none", rs)
	}
	if !tb.Seen("dc5") {
		t.Errorf("Seen(dc5) = false after it was routed to, want true (unreachable, not unknown)")
	}
	if tb.Linked("dc1") || !tb.Linked("dc4") {
		t.Errorf("Linked(dc1), Linked(dc4) = %v, %v; want false, true", tb.Linked("dc1"), tb.Linked("dc4"))
	}
}

// TestTableForgetsGoneDatacenters: a datacenter reached through a relay
// stays known (unreachable, not unknown) for ForgetAfter once its last
// route goes, then is forgotten; one that comes back within it is known
// again at once and its time starts over; a neighbour reached directly is
// not remembered by the table at all (the WAN pool says whether it is
// known).
func TestTableForgetsGoneDatacenters(t *testing.T) {
	tb, _ := newTestTable("dc2", map[string]time.Duration{"dc1": 10 * time.Millisecond, "dc4": 10 * time.Millisecond})
	now := time.Unix(1_000_000, 0)
	tb.now = func() time.Time { return now }
	for _, dc := range []string{"dc3", "dc4", "dc9"} {
		if tb.Seen(dc) {
			t.Fatalf("Seen(%s) before any route, want false", dc)
		}
	}
	if err := tb.Heard("a1", "dc1", "s-dc1", ad("dc1", []string{"dc1"}, []string{"dc1", "dc3"})); err != nil {
		t.Fatal(err)
	}
	if err := tb.Heard("a4", "dc4", "s-dc4", ad("dc4", []string{"dc4"})); err != nil {
		t.Fatal(err)
	}
	if !tb.Seen("dc3") || !tb.Seen("dc4") {
		t.Fatalf("Seen(dc3), Seen(dc4) = %v, %v with routes to both, want true", tb.Seen("dc3"), tb.Seen("dc4"))
	}
	// dc3 leaves for good: dc1 stops advertising it; dc4's servers leave
	// the WAN pool.
	if err := tb.Heard("a1", "dc1", "s-dc1", ad("dc1", []string{"dc1"})); err != nil {
		t.Fatal(err)
	}
	tb.Forget("a4")
	if tb.Seen("dc4") {
		t.Errorf("Seen(dc4) after its link went, want false: a neighbour is the WAN pool's to know")
	}
	now = now.Add(ForgetAfter - time.Minute)
	tb.Refresh()
	if !tb.Seen("dc3") {
		t.Errorf("Seen(dc3) %v after its route went, want true (unreachable, not unknown)", ForgetAfter-time.Minute)
	}
	// Back within ForgetAfter, gone again: its time starts over.
	if err := tb.Heard("a1", "dc1", "s-dc1", ad("dc1", []string{"dc1"}, []string{"dc1", "dc3"})); err != nil {
		t.Fatal(err)
	}
	if err := tb.Heard("a1", "dc1", "s-dc1", ad("dc1", []string{"dc1"})); err != nil {
		t.Fatal(err)
	}
	now = now.Add(ForgetAfter - time.Minute)
	tb.Refresh()
	if !tb.Seen("dc3") {
		t.Errorf("Seen(dc3) %v after it went again, want true", ForgetAfter-time.Minute)
	}
	now = now.Add(2 * time.Minute)
	if tb.Seen("dc3") {
		t.Errorf("Seen(dc3) %v after its route went, want false (forgotten)", ForgetAfter+time.Minute)
	}
	tb.Refresh()
	tb.mu.Lock()
	left := len(tb.gone)
	tb.mu.Unlock()
	if left != 0 {
		t.Errorf("after ForgetAfter and a refresh the table still holds %d gone datacenters, want 0", left)
	}
}

func TestTableRefusesBadAdvertisements(t *testing.T) {
	tb, logs := newTestTable("dc2", nil)
	err := tb.Heard("a1", "dc1", "s-dc1", ad("dc9", []string{"dc9"}, []string{"dc9", "dc3"}))
	if err == nil || !strings.Contains(err.Error(), `names datacenter "dc9"`) {
		t.Errorf("Heard of a dc9 advertisement from a dc1 server = %v, want refused", err)
	}
	if rs := tb.Lookup("dc3"); len(rs) != 0 {
		t.Errorf("Lookup(dc3) = %+v after a refused advertisement, want none", rs)
	}
	good := []string{"dc1", "dc6"}
	if err := tb.Heard("a1", "dc1", "s-dc1", ad("dc1", []string{"dc1"},
		[]string{"dc1", "dc2", "dc3"},        // crosses us
		[]string{"dc1", "dc4", "dc1", "dc5"}, // dc1 twice
		[]string{"dc7", "dc5"},               // not from dc1
		good)); err != nil {
		t.Fatal(err)
	}
	for _, dc := range []string{"dc3", "dc5"} {
		if rs := tb.Lookup(dc); len(rs) != 0 {
			t.Errorf("Lookup(%s) = %+v, want none: every path to it was bad", dc, rs)
		}
	}
	if rs := tb.Lookup("dc6"); len(rs) != 1 {
		t.Errorf("Lookup(dc6) = %+v, want the one good path kept", rs)
	}
	out := logs.String()
	for _, want := range []string{`"route advertisement refused" dc=dc1`, "routing loop: path crosses this datacenter", `routing loop: \"dc1\" appears twice`, "not at the advertising datacenter"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// The same advertisement again logs nothing new.
	before := strings.Count(logs.String(), "route refused")
	_ = tb.Heard("a1", "dc1", "s-dc1", ad("dc1", []string{"dc1"}, []string{"dc1", "dc2", "dc3"}))
	if after := strings.Count(logs.String(), "route refused"); after != before {
		t.Errorf("a repeated bad path was logged again (%d lines, then %d)", before, after)
	}
}

func TestTableAdvertiseSplitHorizonAndTriggers(t *testing.T) {
	tb, _ := newTestTable("dc1", nil)
	first := tb.Advertise(nil, "dc9", 0, 0)
	if first.Index == 0 || len(first.Routes) != 1 || !slices.Equal(first.Routes[0].Path, []string{"dc1"}) {
		t.Fatalf("Advertise of an empty table = %+v, want only dc1 itself", first)
	}
	done := make(chan *Advertisement)
	go func() { done <- tb.Advertise(nil, "dc2", first.Index, time.Minute) }()
	_ = tb.Heard("a2", "dc2", "s-dc2", ad("dc2", []string{"dc2"}, []string{"dc2", "dc4"}))
	_ = tb.Heard("a3", "dc3", "s-dc3", ad("dc3", []string{"dc3"}))
	select {
	case got := <-done:
		if got.Index <= first.Index {
			t.Errorf("triggered Advertise index %d, want past %d", got.Index, first.Index)
		}
		for _, r := range got.Routes {
			if slices.Contains(r.Path, "dc2") {
				t.Errorf("advertisement to dc2 holds %v, a path through dc2 (split horizon)", r.Path)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Advertise did not answer when routes changed")
	}
	// A refresh with nothing new waits its whole wait.
	cur := tb.Advertise(nil, "dc3", 0, 0)
	start := time.Now()
	again := tb.Advertise(nil, "dc3", cur.Index, 200*time.Millisecond)
	if took := time.Since(start); took < 200*time.Millisecond || again.Index != cur.Index {
		t.Errorf("Advertise with nothing changed answered after %v with index %d, want the wait and index %d", took, again.Index, cur.Index)
	}
	paths := map[string]bool{}
	for _, r := range again.Routes {
		paths[strings.Join(r.Path, ",")] = true
	}
	for _, want := range []string{"dc1", "dc1,dc2", "dc1,dc2,dc4"} {
		if !paths[want] {
			t.Errorf("advertisement to dc3 lacks path %s: %v", want, paths)
		}
	}
}

// TestTableAdvertisesWayRound: a datacenter whose best path to dc4 goes
// through the asker sends the asker its next best instead of nothing, so
// that the asker has a way round ready when its own path breaks.
func TestTableAdvertisesWayRound(t *testing.T) {
	tb, _ := newTestTable("dc1", map[string]time.Duration{"dc2": 10 * time.Millisecond, "dc3": 10 * time.Millisecond})
	_ = tb.Heard("a2", "dc2", "s-dc2", ad("dc2", []string{"dc2"}, []string{"dc2", "dc4"}))
	_ = tb.Heard("a3", "dc3", "s-dc3", ad("dc3", []string{"dc3"}, []string{"dc3", "dc5", "dc4"}))
	if rs := tb.Lookup("dc4"); len(rs) != 2 || rs[0].NextHop != "dc2" {
		t.Fatalf("Lookup(dc4) = %+v, want via dc2, then dc3", rs)
	}
	paths := func(asker string) map[string]bool {
		out := map[string]bool{}
		for _, r := range tb.Advertise(nil, asker, 0, 0).Routes {
			out[strings.Join(r.Path, ",")] = true
		}
		return out
	}
	if got := paths("dc2"); !got["dc1,dc3,dc5,dc4"] || got["dc1,dc2,dc4"] {
		t.Errorf("advertisement to dc2 = %v, want dc4 the way round (dc1,dc3,dc5,dc4) and nothing through dc2", got)
	}
	if got := paths("dc9"); !got["dc1,dc2,dc4"] || got["dc1,dc3,dc5,dc4"] {
		t.Errorf("advertisement to dc9 = %v, want the best path to dc4 only (dc1,dc2,dc4)", got)
	}
	// The way round changing changes the advertisement's index.
	before := tb.Advertise(nil, "dc2", 0, 0).Index
	_ = tb.Heard("a3", "dc3", "s-dc3", ad("dc3", []string{"dc3"}, []string{"dc3", "dc6", "dc4"}))
	if after := tb.Advertise(nil, "dc2", 0, 0).Index; after <= before {
		t.Errorf("index %d after the way round changed, want past %d", after, before)
	}
}

// TestDatacentersNearestByPath lists every reachable datacenter, those
// behind a relay included, by the round trip along the path, and those
// with no path last.
func TestDatacentersNearestByPath(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Datacenter, cfg.Transport = "dc2", TransportTCP
	cfg.RTT = func(name string) (time.Duration, bool) {
		return map[string]time.Duration{"s.dc1": 30 * time.Millisecond, "s.dc4": 5 * time.Millisecond}[name], true
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Update([]Server{
		{Name: "s.dc1", Datacenter: "dc1", Addr: "127.0.0.1:1", Alive: true},
		{Name: "s.dc4", Datacenter: "dc4", Addr: "127.0.0.1:4", Alive: true},
		{Name: "s.dc9", Datacenter: "dc9", Addr: "127.0.0.1:9"},
	})
	// Through dc1 (30ms away): dc3 10ms further, dc5 20ms further.
	if err := f.Table().Heard("127.0.0.1:1", "dc1", "s.dc1", ad("dc1", []string{"dc1"}, []string{"dc1", "dc3"}, []string{"dc1", "dc3", "dc5"})); err != nil {
		t.Fatal(err)
	}
	if err := f.Table().Heard("127.0.0.1:4", "dc4", "s.dc4", ad("dc4", []string{"dc4"})); err != nil {
		t.Fatal(err)
	}
	want := []string{"dc2", "dc4", "dc1", "dc3", "dc5", "dc9"}
	if got := f.Datacenters(); !slices.Equal(got, want) {
		t.Errorf("Datacenters() = %v, want %v", got, want)
	}
	for _, dc := range []string{"dc3", "dc5"} {
		if !f.Known(dc) || !f.Reachable(dc) {
			t.Errorf("Known(%s), Reachable(%s) = %v, %v; want both true through dc1", dc, dc, f.Known(dc), f.Reachable(dc))
		}
	}
	if f.Known("dc7") {
		t.Errorf("Known(dc7) = true for a datacenter nobody mentioned")
	}
}
