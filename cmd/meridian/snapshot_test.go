package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// dcState is what a snapshot must carry from one datacenter to another, as
// the Consul client reads it.
type dcState struct {
	KV       []string
	Services []string
	Sessions []string
	Queries  []string
}

func readState(t *testing.T, c *api.Client) (dcState, error) {
	t.Helper()
	q := &api.QueryOptions{AllowStale: true}
	var st dcState
	pairs, _, err := c.KV().List("", q)
	if err != nil {
		return st, err
	}
	for _, p := range pairs {
		st.KV = append(st.KV, fmt.Sprintf("%s=%s/%d", p.Key, p.Value, p.Flags))
	}
	svcs, _, err := c.Catalog().Services(q)
	if err != nil {
		return st, err
	}
	for name := range svcs {
		nodes, _, err := c.Catalog().Service(name, "", q)
		if err != nil {
			return st, err
		}
		for _, n := range nodes {
			if n.Node == "ext-node" {
				st.Services = append(st.Services, n.Node+"/"+n.ServiceID)
			}
		}
	}
	sessions, _, err := c.Session().List(q)
	if err != nil {
		return st, err
	}
	for _, s := range sessions {
		st.Sessions = append(st.Sessions, s.ID+"/"+s.Name)
	}
	queries, _, err := c.PreparedQuery().List(q)
	if err != nil {
		return st, err
	}
	for _, pq := range queries {
		st.Queries = append(st.Queries, pq.ID+"/"+pq.Name+"/"+pq.Service.Service)
	}
	sort.Strings(st.Services)
	sort.Strings(st.Sessions)
	return st, nil
}

// TestSnapshotSaveRestore saves a datacenter with the Consul client and
// restores it into a second, three-server datacenter through a follower:
// every server then holds every key, service, session and query of the
// first, a blocking query parked before wakes, and archives that are cut
// short, altered or not archives at all are refused with the restored
// state still serving. The CLI saves, inspects and restores the same way.
func TestSnapshotSaveRestore(t *testing.T) {
	src := testcluster.New(t, testcluster.Options{Servers: 1})
	a := src.Servers[0].API()
	for i := range 50 {
		if _, err := a.KV().Put(&api.KVPair{Key: fmt.Sprintf("app/%02d", i), Value: []byte(fmt.Sprint("v", i)), Flags: uint64(i)}, nil); err != nil {
			t.Fatalf("KV put: %v", err)
		}
	}
	for i := range 3 {
		reg := &api.CatalogRegistration{Node: "ext-node", Address: "10.1.0.1",
			Service: &api.AgentService{ID: fmt.Sprint("web-", i), Service: "web", Port: 8080 + i}}
		if _, err := a.Catalog().Register(reg, nil); err != nil {
			t.Fatalf("catalog register: %v", err)
		}
	}
	sid, _, err := a.Session().Create(&api.SessionEntry{Name: "keeper", Node: src.Servers[0].Name}, nil)
	if err != nil {
		t.Fatalf("session create: %v", err)
	}
	if _, err := a.KV().Put(&api.KVPair{Key: "locked", Value: []byte("x"), Session: sid}, nil); err != nil {
		t.Fatalf("KV put with session: %v", err)
	}
	if _, _, err := a.PreparedQuery().Create(&api.PreparedQueryDefinition{Name: "web-q", Service: api.ServiceQuery{Service: "web"}}, nil); err != nil {
		t.Fatalf("prepared query create: %v", err)
	}
	want, err := readState(t, a)
	if err != nil {
		t.Fatalf("read source state: %v", err)
	}

	rc, qm, err := a.Snapshot().Save(nil)
	if err != nil {
		t.Fatalf("Snapshot().Save: %v", err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || qm.LastIndex == 0 {
		t.Fatalf("read archive: %v (index %d)", err, qm.LastIndex)
	}

	dst := testcluster.New(t, testcluster.Options{Servers: 3})
	leader := dst.WaitLeader(10 * time.Second)
	follower := dst.Followers(leader)[0]
	b := follower.API()
	if _, err := b.KV().Put(&api.KVPair{Key: "dst-only", Value: []byte("gone after restore")}, nil); err != nil {
		t.Fatalf("KV put on the destination: %v", err)
	}
	_, meta, err := b.KV().Get("dst-only", nil)
	if err != nil {
		t.Fatalf("KV get: %v", err)
	}
	woke := make(chan error, 1)
	go func() {
		p, _, err := leader.API().KV().Get("dst-only", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		if err == nil && p != nil {
			err = fmt.Errorf("blocking query woke with dst-only still there")
		}
		woke <- err
	}()

	if err := b.Snapshot().Restore(nil, bytes.NewReader(archive)); err != nil {
		t.Fatalf("Snapshot().Restore through a follower: %v", err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Errorf("blocking query across the restore: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("blocking query parked before the restore did not wake")
	}
	checkAll := func(when string) {
		t.Helper()
		for _, n := range dst.Servers {
			testcluster.Eventually(t, 10*time.Second, func() error {
				got, err := readState(t, n.API())
				if err != nil {
					return err
				}
				if !reflect.DeepEqual(got, want) {
					return fmt.Errorf("%s: %s holds %+v, want %+v", when, n.Name, got, want)
				}
				return nil
			})
		}
	}
	checkAll("after restore")

	bad := []struct{ name, archive, want string }{
		{"cut short", string(archive[:len(archive)/2]), "cut short"},
		{"altered", string(archive[:len(archive)/2]) + "X" + string(archive[len(archive)/2+1:]), "checksum mismatch"},
		{"not an archive", "this is not a snapshot", "not a meridian snapshot"},
		{"newer version", "MERIDIAN-SNAPSHOT 9\n{}\n", "newer version"},
	}
	for _, tc := range bad {
		err := b.Snapshot().Restore(nil, strings.NewReader(tc.archive))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Restore(%s) = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	checkAll("after refused restores")

	// The CLI: save from the destination, inspect, restore into it again.
	file := filepath.Join(t.TempDir(), "dc.snap")
	via := "-http-addr=" + follower.HTTPAddr()
	if code, out, errOut := meridian("snapshot", "save", via, file); code != 0 || !strings.Contains(out, "Saved and verified") {
		t.Fatalf("snapshot save = exit %d, %q, %q", code, out, errOut)
	}
	code, out, errOut := meridian("snapshot", "inspect", file)
	if code != 0 || !strings.Contains(out, "kvstore.Entries") || !strings.Contains(out, "51") || !strings.Contains(out, "queries.Queries") {
		t.Fatalf("snapshot inspect = exit %d, %q, %q; want the 51 KV entries and the queries counted", code, out, errOut)
	}
	if code, out, errOut := meridian("snapshot", "restore", via, file); code != 0 || !strings.Contains(out, "Restored") {
		t.Fatalf("snapshot restore = exit %d, %q, %q", code, out, errOut)
	}
	checkAll("after the CLI's restore")
	cut := file + ".cut"
	if err := os.WriteFile(cut, archive[:len(archive)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	junk, newer := file+".junk", file+".newer"
	for name, body := range map[string]string{junk: "this is not a snapshot", newer: "MERIDIAN-SNAPSHOT 9\n{}\n"} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"snapshot", "restore", via, cut}, {"snapshot", "inspect", cut}, {"snapshot", "inspect", file + ".none"},
		{"snapshot", "restore", via, junk}, {"snapshot", "inspect", junk},
		{"snapshot", "restore", via, newer}, {"snapshot", "inspect", newer},
	} {
		code, _, errOut := meridian(args...)
		if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("meridian %v = exit %d, stderr %q; want 1 and one line", args, code, errOut)
		}
	}
	checkAll("after the CLI's refused restores")
}
