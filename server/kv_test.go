package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// rawPut sends a PUT straight to an agent's HTTP API, for what the Go client
// cannot express (bad parameters); it returns the status and body.
func rawRequest(t *testing.T, method, url string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestKVPutGetListKeysCAS(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	kv := c.Clients[0].API().KV()

	if _, err := kv.Put(&api.KVPair{Key: "app/config/a", Value: []byte("1"), Flags: 42}, nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for _, k := range []string{"app/config/b", "app/other/c", "app/top"} {
		if _, err := kv.Put(&api.KVPair{Key: k, Value: []byte(k)}, nil); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	p, meta, err := kv.Get("app/config/a", nil)
	if err != nil || p == nil {
		t.Fatalf("Get = %v, %v", p, err)
	}
	if string(p.Value) != "1" || p.Flags != 42 || p.CreateIndex == 0 || meta.LastIndex != p.ModifyIndex {
		t.Errorf("Get = %+v meta %+v, want value 1 flags 42 and index = ModifyIndex", p, meta)
	}
	missing, meta, err := kv.Get("nope", nil)
	if err != nil || missing != nil || meta.LastIndex == 0 {
		t.Errorf("Get(missing) = %v, %+v, %v; want nil with an index", missing, meta, err)
	}

	list, meta, err := kv.List("app/", nil)
	if err != nil || len(list) != 4 {
		t.Fatalf("List = %d pairs, %v; want 4", len(list), err)
	}
	var high uint64
	for _, e := range list {
		high = max(high, e.ModifyIndex)
	}
	if meta.LastIndex != high {
		t.Errorf("List index = %d, want highest ModifyIndex %d", meta.LastIndex, high)
	}
	keys, _, err := kv.Keys("app/", "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(keys, ","), "app/config/,app/other/,app/top"; got != want {
		t.Errorf("Keys(app/, /) = %s, want %s", got, want)
	}

	// CAS: create-only, then with the index.
	ok, _, err := kv.CAS(&api.KVPair{Key: "app/top", Value: []byte("x")}, nil)
	if err != nil || ok {
		t.Errorf("CAS create-only on an existing key = %v, %v; want false", ok, err)
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "app/new", Value: []byte("x")}, nil)
	if err != nil || !ok {
		t.Errorf("CAS create-only on a new key = %v, %v; want true", ok, err)
	}
	cur, _, _ := kv.Get("app/new", nil)
	ok, _, err = kv.CAS(&api.KVPair{Key: "app/new", Value: []byte("y"), ModifyIndex: cur.ModifyIndex + 1000}, nil)
	if err != nil || ok {
		t.Errorf("CAS with a wrong index = %v, %v; want false", ok, err)
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "app/new", Value: []byte("y"), ModifyIndex: cur.ModifyIndex}, nil)
	if err != nil || !ok {
		t.Errorf("CAS with the index = %v, %v; want true", ok, err)
	}
	cur, _, _ = kv.Get("app/new", nil)
	ok, _, err = kv.DeleteCAS(&api.KVPair{Key: "app/new", ModifyIndex: cur.ModifyIndex}, nil)
	if err != nil || !ok {
		t.Errorf("DeleteCAS = %v, %v; want true", ok, err)
	}
	if _, err := kv.DeleteTree("app/config/", nil); err != nil {
		t.Fatal(err)
	}
	if list, _, _ := kv.List("app/", nil); len(list) != 2 {
		t.Errorf("after DeleteTree, List = %d pairs, want 2", len(list))
	}

	base := "http://" + c.Clients[0].HTTPAddr()
	if code, body := rawRequest(t, "GET", base+"/v1/kv/app/top?raw", nil); code != 200 || body != "app/top" {
		t.Errorf("GET ?raw = %d %q, want 200 app/top", code, body)
	}
	big := bytes.Repeat([]byte("x"), 512*1024+1)
	if code, body := rawRequest(t, "PUT", base+"/v1/kv/big", big); code != 413 || !strings.Contains(body, "too large") {
		t.Errorf("PUT 512KiB+1 = %d %q, want 413 too large", code, body)
	}
	if code, _ := rawRequest(t, "PUT", base+"/v1/kv/max", big[:512*1024]); code != 200 {
		t.Errorf("PUT 512KiB = %d, want 200", code)
	}
	bad := []struct{ method, path, field string }{
		{"PUT", "/v1/kv/", "key"},
		{"PUT", "/v1/kv/k?cas=x", "cas"},
		{"PUT", "/v1/kv/k?flags=-1", "flags"},
		{"PUT", "/v1/kv/k?acquire=00000000-0000-0000-0000-000000000000", "session"},
		{"PUT", "/v1/txn", "verb"},
	}
	for _, b := range bad {
		var body []byte
		if b.path == "/v1/txn" {
			body = []byte(`[{"KV":{"Verb":"frob","Key":"k"}}]`)
		}
		code, msg := rawRequest(t, b.method, base+b.path, body)
		if code != 400 || !strings.Contains(msg, b.field) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
			t.Errorf("%s %s = %d %q, want 400 naming %s", b.method, b.path, code, msg, b.field)
		}
	}
	if _, meta, _ := kv.Get("k", nil); meta.LastIndex == 0 {
		t.Error("no index")
	}
	if p, _, _ := kv.Get("k", nil); p != nil {
		t.Errorf("a refused write left key k = %+v", p)
	}
}

func TestKVAcquireReleaseAndLocks(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	client := c.Clients[0].API()
	kv, sessions := client.KV(), client.Session()

	s1, _, err := sessions.Create(&api.SessionEntry{Name: "one"}, nil)
	if err != nil {
		t.Fatalf("Session.Create: %v", err)
	}
	s2, _, err := sessions.Create(&api.SessionEntry{Name: "two", LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("Session.Create: %v", err)
	}
	info, _, err := sessions.Info(s1, nil)
	if err != nil || info == nil || info.LockDelay != 15*time.Second || info.Behavior != "release" || len(info.NodeChecks) != 1 || info.Node != "client1" {
		t.Errorf("Session.Info = %+v, %v; want Consul's defaults on client1", info, err)
	}
	if ok, _, err := kv.Acquire(&api.KVPair{Key: "lock", Session: s1}, nil); err != nil || !ok {
		t.Fatalf("Acquire s1 = %v, %v", ok, err)
	}
	if ok, _, err := kv.Acquire(&api.KVPair{Key: "lock", Session: s2}, nil); err != nil || ok {
		t.Fatalf("Acquire s2 while s1 holds = %v, %v; want false", ok, err)
	}
	if ok, _, _ := kv.Acquire(&api.KVPair{Key: "lock", Session: s1}, nil); !ok {
		t.Fatal("re-Acquire by the holder = false")
	}
	p, _, _ := kv.Get("lock", nil)
	if p.LockIndex != 1 || p.Session != s1 {
		t.Errorf("after acquire: %+v, want LockIndex 1 held by s1", p)
	}
	if ok, _, _ := kv.Release(&api.KVPair{Key: "lock", Session: s2}, nil); ok {
		t.Error("Release by a non-holder = true")
	}
	if ok, _, _ := kv.Release(&api.KVPair{Key: "lock", Session: s1}, nil); !ok {
		t.Fatal("Release by the holder = false")
	}
	if ok, _, _ := kv.Acquire(&api.KVPair{Key: "lock", Session: s2}, nil); !ok {
		t.Fatal("Acquire s2 after release = false")
	}
	if p, _, _ := kv.Get("lock", nil); p.LockIndex != 2 || p.Session != s2 {
		t.Errorf("after second acquire: %+v, want LockIndex 2 held by s2", p)
	}
	if list, _, _ := sessions.List(nil); len(list) != 2 {
		t.Errorf("Session.List = %d, want 2", len(list))
	}
	if list, _, _ := sessions.Node("client1", nil); len(list) != 2 {
		t.Errorf("Session.Node = %d, want 2", len(list))
	}
	if _, err := sessions.Destroy(s2, nil); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := kv.Get("lock", nil); p.Session != "" {
		t.Errorf("after destroying the holder: %+v, want released", p)
	}
	if e, _, err := sessions.Renew(s2, nil); e != nil || err != nil {
		t.Errorf("Renew(destroyed) = %v, %v; want nil, nil (404)", e, err)
	}

	// api.Lock hands the lock over when the holder unlocks.
	l1, _ := client.LockOpts(&api.LockOptions{Key: "leader", LockDelay: time.Millisecond})
	l2, _ := client.LockOpts(&api.LockOptions{Key: "leader", LockDelay: time.Millisecond})
	if _, err := l1.Lock(nil); err != nil {
		t.Fatalf("l1.Lock: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := l2.Lock(nil)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("l2 got the lock while l1 holds it (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("l2.Lock after l1.Unlock: %v", err)
	}
	// ... and when the holder's session is destroyed.
	l3, _ := client.LockOpts(&api.LockOptions{Key: "leader", LockDelay: time.Millisecond})
	go func() {
		_, err := l3.Lock(nil)
		got <- err
	}()
	p, _, _ = kv.Get("leader", nil)
	if _, err := sessions.Destroy(p.Session, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("l3.Lock after the holder's session died: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("l3 never got the lock after the holder's session was destroyed")
	}
	_ = l3.Unlock()
	_ = l2.Unlock()

	// api.Semaphore with a limit of 2.
	sem := func() *api.Semaphore {
		s, err := client.SemaphorePrefix("sem/", 2)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b, third := sem(), sem(), sem()
	for _, s := range []*api.Semaphore{a, b} {
		if _, err := s.Acquire(nil); err != nil {
			t.Fatalf("Semaphore.Acquire: %v", err)
		}
	}
	stop := make(chan struct{})
	lost, err := third.Acquire(stopAfter(stop, 300*time.Millisecond))
	if lost != nil || err != nil {
		t.Fatalf("third Acquire with 2 holders = %v, %v; want nil, nil after stop", lost, err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if lost, err := third.Acquire(nil); lost == nil || err != nil {
		t.Fatalf("third Acquire after a release = %v, %v", lost, err)
	}
	_ = b.Release()
	_ = third.Release()
}

func stopAfter(ch chan struct{}, d time.Duration) chan struct{} {
	time.AfterFunc(d, func() { close(ch) })
	return ch
}

func TestTxnCommitAndRollback(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	client := c.Clients[0].API()
	txn, kv := client.Txn(), client.KV()

	ok, resp, _, err := txn.Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "t/a", Value: []byte("1")}},
		{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: "t/b"}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "t/b", Value: []byte("2")}},
		{KV: &api.KVTxnOp{Verb: api.KVGet, Key: "t/a"}},
	}, nil)
	if err != nil || !ok || len(resp.Results) != 3 || string(resp.Results[2].KV.Value) != "1" {
		t.Fatalf("commit: ok %v err %v resp %+v", ok, err, resp)
	}
	a, _, _ := kv.Get("t/a", nil)
	ok, resp, _, err = txn.Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "t/c", Value: []byte("3")}},
		{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: "t/b"}},
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: "t/a", Index: a.ModifyIndex + 99}},
	}, nil)
	if err != nil || ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 2 {
		t.Fatalf("rollback: ok %v err %v resp %+v; want 409 with the error of op 2", ok, err, resp)
	}
	if p, _, _ := kv.Get("t/c", nil); p != nil {
		t.Error("a rolled back txn set t/c")
	}
	if p, _, _ := kv.Get("t/b", nil); p == nil {
		t.Error("a rolled back txn deleted t/b")
	}
	// A read-only transaction, stale.
	ok, resp, _, err = txn.Txn(api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: "t/"}}}, &api.QueryOptions{AllowStale: true})
	if err != nil || !ok || len(resp.Results) != 2 {
		t.Errorf("read-only txn: ok %v err %v resp %+v", ok, err, resp)
	}
	var ops strings.Builder
	ops.WriteString("[")
	for i := range 65 {
		if i > 0 {
			ops.WriteString(",")
		}
		fmt.Fprintf(&ops, `{"KV":{"Verb":"set","Key":"many/%d","Value":"eA=="}}`, i)
	}
	ops.WriteString("]")
	base := "http://" + c.Clients[0].HTTPAddr()
	if code, msg := rawRequest(t, "PUT", base+"/v1/txn", []byte(ops.String())); code != 413 || !strings.Contains(msg, "too many operations (65 > 64)") {
		t.Errorf("txn of 65 ops = %d %q, want 413 naming the count (Consul's limit is 64)", code, msg)
	}
	if code, msg := rawRequest(t, "PUT", base+"/v1/txn", []byte(`[{"KV":{"Verb":"set","Key":"k","Value":"!!"}}]`)); code != 400 {
		t.Errorf("txn with a non-base64 value = %d %q, want 400", code, msg)
	}
	if keys, _, _ := kv.Keys("many/", "", nil); len(keys) != 0 {
		t.Errorf("refused txns wrote %d keys", len(keys))
	}
}

func TestKVBlockingGetWakesOnPut(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	kv := c.Clients[0].API().KV()
	if _, err := kv.Put(&api.KVPair{Key: "watched", Value: []byte("0")}, nil); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for i := 1; i <= 5; i++ {
		_, meta, err := kv.Get("watched", nil)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			p   *api.KVPair
			at  time.Time
			err error
		}
		woke := make(chan result, 1)
		go func() {
			p, _, err := kv.Get("watched", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 10 * time.Second})
			woke <- result{p, time.Now(), err}
		}()
		// Let the query park; a put to another key must not wake it.
		if _, err := kv.Put(&api.KVPair{Key: "other", Value: []byte{byte(i)}}, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-woke:
			t.Fatalf("blocking GET woke on a put to another key: %+v", r)
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := kv.Put(&api.KVPair{Key: "watched", Value: []byte{byte('0' + i)}}, nil); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		r := <-woke
		if r.err != nil || r.p == nil || r.p.Value[0] != byte('0'+i) {
			t.Fatalf("blocking GET = %+v", r)
		}
		worst = max(worst, r.at.Sub(acked))
	}
	t.Logf("blocking GET woke at most %v after the PUT was acknowledged", worst)
	if worst > 50*time.Millisecond {
		t.Errorf("blocking GET woke %v after the put, want a few ms", worst)
	}
}

func TestSessionInvalidatedWhenItsNodeFails(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	victim := c.Clients[0].API()
	id, _, err := victim.Session().Create(&api.SessionEntry{LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := victim.KV().Acquire(&api.KVPair{Key: "held", Session: id}, nil); err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	c.Clients[0].Kill()
	srv := c.Servers[0].API()
	testcluster.Eventually(t, 20*time.Second, func() error {
		s, _, err := srv.Session().Info(id, nil)
		if err != nil {
			return err
		}
		if s != nil {
			return errors.New("session still alive")
		}
		p, _, err := srv.KV().Get("held", nil)
		if err != nil {
			return err
		}
		if p == nil || p.Session != "" {
			return fmt.Errorf("key = %+v, want kept and released", p)
		}
		return nil
	})
}

func TestKVDurability(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1, TuneServer: defaultRaftTimings})
	kv := c.Clients[0].API().KV()
	leader := c.WaitLeader(10 * time.Second)

	writers := testcluster.StartWriters(t, 4, func(w, i int) (string, error) {
		key := fmt.Sprintf("dur/%d/%d", w, i)
		_, err := kv.Put(&api.KVPair{Key: key, Value: []byte(key)}, nil)
		return key, err
	})
	writers.WaitAcked(t, 100, 20*time.Second)
	leader.Kill()
	writers.WaitAcked(t, writers.Count()+100, 30*time.Second) // writes go on under the new leader
	leader.Restart()
	acked := writers.Stop()
	t.Logf("%d writes acknowledged", len(acked))

	checkAll := func(stage string) {
		t.Helper()
		testcluster.Eventually(t, 30*time.Second, func() error {
			if err := testcluster.KeysAcked(kv, "dur/", acked); err != nil {
				return fmt.Errorf("%s: %w", stage, err)
			}
			return nil
		})
		for _, k := range acked[:10] {
			p, _, err := kv.Get(k, &api.QueryOptions{RequireConsistent: true})
			if err != nil || p == nil || string(p.Value) != k {
				t.Fatalf("%s: Get(%q, consistent) = %v, %v", stage, k, p, err)
			}
		}
	}
	checkAll("after the leader restarted")

	for _, s := range c.Servers {
		s.Kill()
	}
	for _, s := range c.Servers {
		s.Restart()
	}
	c.WaitLeader(20 * time.Second)
	checkAll("after every server restarted")
}
