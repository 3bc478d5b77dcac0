package agent_test

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// eventNames lists, oldest first, the names of the events the agent at
// client holds.
func eventNames(client *api.Client, name string) ([]string, error) {
	evs, _, err := client.Event().List(name, nil)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name
	}
	return out, nil
}

// waitEvents waits until each node holds exactly the events want names, in
// any order (an agent keeps them in the order gossip brought them).
func waitEvents(t *testing.T, want map[*testcluster.Node][]string) {
	t.Helper()
	testcluster.Eventually(t, 15*time.Second, func() error {
		for n, names := range want {
			got, err := eventNames(n.API(), "")
			if err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			sort.Strings(got)
			if !slices.Equal(got, names) {
				return fmt.Errorf("%s holds events %v, want %v", n.Name, got, names)
			}
		}
		return nil
	})
}

// TestEventFireListFilters fires events through consul/api on three agents
// of one datacenter: each agent records those its node name, services and
// tags let through, and a blocking list wakes on the next event.
func TestEventFireListFilters(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 2})
	srv, web, db := c.Servers[0], c.Clients[0], c.Clients[1]
	if err := web.API().Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web-1", Name: "web", Tags: []string{"v2"}, Port: 80}); err != nil {
		t.Fatal(err)
	}
	if err := db.API().Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "db", Port: 5432}); err != nil {
		t.Fatal(err)
	}

	fire := func(n *testcluster.Node, ev *api.UserEvent) string {
		t.Helper()
		id, _, err := n.API().Event().Fire(ev, nil)
		if err != nil {
			t.Fatalf("Fire(%s) = %v", ev.Name, err)
		}
		if len(id) != 36 {
			t.Fatalf("Fire(%s) ID = %q, want a UUID", ev.Name, id)
		}
		return id
	}
	allID := fire(db, &api.UserEvent{Name: "all", Payload: []byte("v42")})
	fire(srv, &api.UserEvent{Name: "by-node", NodeFilter: "^client1$"})
	fire(srv, &api.UserEvent{Name: "by-service", ServiceFilter: "^web$"})
	fire(srv, &api.UserEvent{Name: "by-service-id", ServiceFilter: "^web-1$"})
	fire(srv, &api.UserEvent{Name: "by-tag", ServiceFilter: "web", TagFilter: "^v2$"})
	fire(srv, &api.UserEvent{Name: "wrong-tag", ServiceFilter: "web", TagFilter: "^v1$"})
	fire(srv, &api.UserEvent{Name: "nobody", NodeFilter: "^nope$"})
	fire(web, &api.UserEvent{Name: "last"})
	waitEvents(t, map[*testcluster.Node][]string{
		srv: {"all", "last"},
		web: {"all", "by-node", "by-service", "by-service-id", "by-tag", "last"},
		db:  {"all", "last"},
	})

	evs, meta, err := db.API().Event().List("all", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != allID || !bytes.Equal(evs[0].Payload, []byte("v42")) || evs[0].Version != 1 || evs[0].LTime == 0 {
		t.Fatalf("List(all) = %+v, want the one event %s with payload v42", evs, allID)
	}
	if got := db.API().Event().IDToIndex(allID); meta.LastIndex != got {
		t.Fatalf("List(all) index = %d, want IDToIndex(ID) = %d", meta.LastIndex, got)
	}

	// A blocking list at the current index waits for the next event.
	all, meta, err := web.API().Event().List("", nil)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		evs []*api.UserEvent
		err error
		at  time.Duration
	}
	woke := make(chan answer, 1)
	start := time.Now()
	go func() {
		evs, _, err := web.API().Event().List("", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
		woke <- answer{evs, err, time.Since(start)}
	}()
	// The list must not answer before the event is fired.
	select {
	case a := <-woke:
		t.Fatalf("blocking List answered before any new event: %d events, %v", len(a.evs), a.err)
	case <-time.After(300 * time.Millisecond):
	}
	id := fire(srv, &api.UserEvent{Name: "wake"})
	select {
	case a := <-woke:
		if a.err != nil {
			t.Fatal(a.err)
		}
		if len(a.evs) != len(all)+1 || a.evs[len(a.evs)-1].ID != id {
			t.Fatalf("blocking List woke with %d events (last %+v), want %d ending with %s", len(a.evs), a.evs[len(a.evs)-1], len(all)+1, id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("blocking List did not wake within 20s of the event")
	}
}

// TestEventAcrossDatacenters fires an event in dc2 through a client of
// dc1 (?dc=dc2): every agent of dc2 records it, none of dc1.
func TestEventAcrossDatacenters(t *testing.T) {
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Datacenter: "dc1"})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Datacenter: "dc2"})
	testcluster.Federate(t, dc1, dc2)

	if _, _, err := dc1.Clients[0].API().Event().Fire(&api.UserEvent{Name: "remote", Payload: []byte("x")}, &api.WriteOptions{Datacenter: "dc2"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dc1.Clients[0].API().Event().Fire(&api.UserEvent{Name: "local"}, nil); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, map[*testcluster.Node][]string{
		dc1.Servers[0]: {"local"}, dc1.Clients[0]: {"local"},
		dc2.Servers[0]: {"remote"}, dc2.Clients[0]: {"remote"},
	})
	if _, _, err := dc1.Clients[0].API().Event().Fire(&api.UserEvent{Name: "x"}, &api.WriteOptions{Datacenter: "nope"}); err == nil || !strings.Contains(err.Error(), "No path to datacenter") {
		t.Fatalf("Fire(dc=nope) = %v, want No path to datacenter", err)
	}
}

// TestEventBadInput: a payload over the limit answers 413 naming the
// limit; bad filters answer 400; the agent keeps serving.
func TestEventBadInput(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1})
	client := c.Servers[0].API()
	for _, tc := range []struct {
		name string
		ev   *api.UserEvent
		want []string
	}{
		{"100 KiB payload", &api.UserEvent{Name: "deploy", Payload: bytes.Repeat([]byte("x"), 100<<10)}, []string{"413", "512 bytes"}},
		{"just over", &api.UserEvent{Name: "deploy", Payload: bytes.Repeat([]byte("x"), 512-len("deploy")+1)}, []string{"413", "513 bytes", "limit is 512"}},
		{"bad regexp", &api.UserEvent{Name: "deploy", NodeFilter: "("}, []string{"400", "node filter", "regular expression"}},
		{"tag without service", &api.UserEvent{Name: "deploy", TagFilter: "v1"}, []string{"400", "tag filter needs a service filter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := client.Event().Fire(tc.ev, nil)
			if err == nil {
				t.Fatal("Fire() = nil error, want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("Fire() = %v, want it to contain %q", err, w)
				}
			}
			if strings.Count(strings.TrimSpace(err.Error()), "\n") > 0 {
				t.Fatalf("Fire() error is not one line: %q", err)
			}
		})
	}
	// At the limit exactly it is accepted, and nothing refused was kept.
	if _, _, err := client.Event().Fire(&api.UserEvent{Name: "deploy", Payload: bytes.Repeat([]byte("x"), 512-len("deploy"))}, nil); err != nil {
		t.Fatalf("Fire(512 bytes) = %v, want nil", err)
	}
	waitEvents(t, map[*testcluster.Node][]string{c.Servers[0]: {"deploy"}})
}

// TestEventACL: firing takes event:write on the name; the list shows only
// the events the token may read.
func TestEventACL(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Configure: func(cfg *configs.Config) {
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
	}})
	n := c.Servers[0]
	var boot *api.ACLToken
	testcluster.Eventually(t, 10*time.Second, func() error {
		var err error
		boot, _, err = n.API().ACL().Bootstrap()
		return err
	})
	mgmt := tokenClient(t, n, boot.SecretID)
	pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: "deploy", Rules: `event "deploy" { policy = "write" }
event_prefix "dep" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	user := tokenClient(t, n, tok.SecretID)
	if _, _, err := user.Event().Fire(&api.UserEvent{Name: "deploy"}, nil); err != nil {
		t.Fatalf("Fire(deploy) with event:write = %v", err)
	}
	if _, _, err := user.Event().Fire(&api.UserEvent{Name: "secret"}, nil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Fire(secret) without event:write = %v, want 403", err)
	}
	if _, _, err := mgmt.Event().Fire(&api.UserEvent{Name: "secret"}, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		all, err := eventNames(mgmt, "")
		if err != nil {
			return err
		}
		mine, err := eventNames(user, "")
		if err != nil {
			return err
		}
		sort.Strings(all)
		if !slices.Equal(all, []string{"deploy", "secret"}) || !slices.Equal(mine, []string{"deploy"}) {
			return fmt.Errorf("management sees %v, the deploy token %v; want [deploy secret] and [deploy]", all, mine)
		}
		return nil
	})
	if evs, _, err := tokenClient(t, n, "").Event().List("", nil); err != nil || len(evs) != 0 {
		t.Fatalf("List() with the anonymous token = %d events, %v; want none", len(evs), err)
	}
}

func tokenClient(t *testing.T, n *testcluster.Node, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token = n.HTTPAddr(), token
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
