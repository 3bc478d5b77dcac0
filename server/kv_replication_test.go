package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/server"
)

// replicationRule is one rule of GET /v1/operator/replication.
type replicationRule struct {
	Prefix, SourceDatacenter, Writes string
	Running                          bool
	ReplicatedIndex                  uint64
	LastSuccess                      time.Time
	LastErrorMessage                 string
	Lag                              string
	KeysApplied, Applies             uint64
}

func replicationStatus(t *testing.T, n *testcluster.Node) ([]replicationRule, error) {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/operator/replication")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/operator/replication: %s", resp.Status)
	}
	var out []replicationRule
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// replicatingDCs starts dc1 (one server) and dc2 (servers servers) that
// replicates config/global/ from dc1 (writes refused) and fwd/ (writes
// forwarded), federated.
func replicatingDCs(t *testing.T, servers int, tune func(*server.Config)) (dc1, dc2 *testcluster.Cluster) {
	dc1 = testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc1", TuneServer: defaultRaftTimings})
	dc2 = testcluster.New(t, testcluster.Options{Servers: servers, Datacenter: "dc2", TuneServer: func(c *server.Config) {
		defaultRaftTimings(c)
		if tune != nil {
			tune(c)
		}
	}, Configure: func(c *configs.Config) {
		c.Replication.KV = []configs.KVReplication{
			{Prefix: "config/global/", From: "dc1"},
			{Prefix: "fwd/", From: "dc1", Writes: configs.ReplicationWritesForward},
		}
	}})
	testcluster.Federate(t, dc1, dc2)
	return dc1, dc2
}

// sameKeys compares the keys under prefix in two datacenters: keys,
// values and flags.
func sameKeys(src, dst *api.KV, prefix string, stale bool) error {
	want, _, err := src.List(prefix, nil)
	if err != nil {
		return err
	}
	got, _, err := dst.List(prefix, &api.QueryOptions{AllowStale: stale})
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("dc2 holds %d keys under %s, dc1 %d", len(got), prefix, len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Key != g.Key || !bytes.Equal(w.Value, g.Value) || w.Flags != g.Flags {
			return fmt.Errorf("dc2 has %s=%q flags %d, dc1 %s=%q flags %d", g.Key, g.Value, g.Flags, w.Key, w.Value, w.Flags)
		}
	}
	return nil
}

// TestKVReplication: a prefix of dc1 is copied to dc2 (sets with flags,
// deletes, a CAS series, a delete-tree), keys outside it stay in dc1;
// writes under it are refused in dc2 naming dc1, or, for a forwarding
// rule, land in dc1 and come back.
func TestKVReplication(t *testing.T) {
	dc1, dc2 := replicatingDCs(t, 1, nil)
	src, dst := dc1.Servers[0].API().KV(), dc2.Servers[0].API().KV()

	put := func(key, value string, flags uint64) {
		t.Helper()
		if _, err := src.Put(&api.KVPair{Key: key, Value: []byte(value), Flags: flags}, nil); err != nil {
			t.Fatalf("Put(%s) in dc1: %v", key, err)
		}
	}
	put("config/global/a", "1", 42)
	put("config/global/b", "2", 0)
	put("config/global/tree/x", "x", 0)
	put("config/global/tree/y", "y", 7)
	put("local/only", "dc1", 0)
	if _, err := src.Delete("config/global/b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := src.DeleteTree("config/global/tree/", nil); err != nil {
		t.Fatal(err)
	}
	// A CAS series: create, then three updates each on the last index.
	var idx uint64
	for i := range 4 {
		ok, _, err := src.CAS(&api.KVPair{Key: "config/global/cas", Value: []byte(fmt.Sprint(i)), Flags: uint64(i), ModifyIndex: idx}, nil)
		if err != nil || !ok {
			t.Fatalf("CAS %d at index %d = %v, %v", i, idx, ok, err)
		}
		p, _, err := src.Get("config/global/cas", nil)
		if err != nil || p == nil {
			t.Fatalf("Get(cas): %v, %v", p, err)
		}
		idx = p.ModifyIndex
	}
	testcluster.Eventually(t, 30*time.Second, func() error { return sameKeys(src, dst, "config/global/", false) })
	if p, _, err := dst.Get("local/only", nil); err != nil || p != nil {
		t.Errorf("Get(local/only) in dc2 = %v, %v; want nothing (not under a replicated prefix)", p, err)
	}
	if p, _, _ := dst.Get("config/global/a", nil); p == nil || p.Flags != 42 {
		t.Errorf("Get(config/global/a) in dc2 = %+v, want flags 42", p)
	}

	// Writes under the prefix are refused in dc2, naming dc1.
	for name, write := range map[string]func() error{
		"put": func() error {
			_, err := dst.Put(&api.KVPair{Key: "config/global/a", Value: []byte("mine")}, nil)
			return err
		},
		"delete": func() error { _, err := dst.Delete("config/global/a", nil); return err },
		"cas": func() error {
			_, _, err := dst.CAS(&api.KVPair{Key: "config/global/a", Value: []byte("mine"), ModifyIndex: 1}, nil)
			return err
		},
		"delete-tree over the prefix": func() error { _, err := dst.DeleteTree("config/", nil); return err },
		"txn": func() error {
			body := `[{"KV": {"Verb": "set", "Key": "elsewhere", "Value": "MQ=="}}, {"KV": {"Verb": "set", "Key": "config/global/a", "Value": "MQ=="}}]`
			code, msg := rawRequest(t, "PUT", "http://"+dc2.Servers[0].HTTPAddr()+"/v1/txn", []byte(body))
			return fmt.Errorf("%d %s", code, msg)
		},
	} {
		err := write()
		if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "replicated from dc1") {
			t.Errorf("%s of a replicated key in dc2 = %v, want 403 naming dc1", name, err)
		}
	}
	// A transaction is forwarded only when all of it is the source's.
	body := `[{"Node": {"Verb": "set", "Node": {"Node": "n1", "Address": "10.0.0.1"}}}, {"KV": {"Verb": "set", "Key": "fwd/x", "Value": "MQ=="}}]`
	if code, msg := rawRequest(t, "PUT", "http://"+dc2.Servers[0].HTTPAddr()+"/v1/txn", []byte(body)); code != http.StatusForbidden || !strings.Contains(msg, "forwarded there only when all its keys are replicated from it") {
		t.Errorf("txn of a catalog op and a forwarded key in dc2 = %d %s, want 403 saying why it was not forwarded", code, msg)
	}
	if p, _, _ := dst.Get("elsewhere", nil); p != nil {
		t.Errorf("a refused transaction wrote elsewhere=%q in dc2", p.Value)
	}
	if p, _, _ := src.Get("config/global/a", nil); p == nil || string(p.Value) != "1" {
		t.Errorf("config/global/a in dc1 = %+v after refused writes in dc2, want 1", p)
	}
	// A write outside the prefixes is dc2's own.
	if _, err := dst.Put(&api.KVPair{Key: "config/local", Value: []byte("dc2")}, nil); err != nil {
		t.Errorf("Put(config/local) in dc2: %v", err)
	}

	// writes: forward sends the write to dc1, whence it comes back.
	if _, err := dst.Put(&api.KVPair{Key: "fwd/k", Value: []byte("v"), Flags: 3}, nil); err != nil {
		t.Fatalf("Put(fwd/k) in dc2: %v", err)
	}
	if p, _, err := src.Get("fwd/k", nil); err != nil || p == nil || string(p.Value) != "v" || p.Flags != 3 {
		t.Fatalf("fwd/k in dc1 = %+v, %v; want v with flags 3", p, err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error { return sameKeys(src, dst, "fwd/", false) })
	if _, err := dst.Delete("fwd/k", nil); err != nil {
		t.Fatalf("Delete(fwd/k) in dc2: %v", err)
	}
	if p, _, _ := src.Get("fwd/k", nil); p != nil {
		t.Errorf("fwd/k in dc1 = %q after a forwarded delete, want gone", p.Value)
	}
	testcluster.Eventually(t, 30*time.Second, func() error { return sameKeys(src, dst, "fwd/", false) })

	testcluster.Eventually(t, 10*time.Second, func() error {
		st, err := replicationStatus(t, dc2.Servers[0])
		if err != nil {
			return err
		}
		if len(st) != 2 || st[0].Prefix != "config/global/" || st[0].SourceDatacenter != "dc1" || st[0].Writes != "refuse" ||
			!st[0].Running || st[0].ReplicatedIndex == 0 || st[0].LastSuccess.IsZero() || st[1].Writes != "forward" {
			return fmt.Errorf("replication status = %+v", st)
		}
		return nil
	})

	// `meridian info`'s section, from /v1/agent/self.
	self, err := dc2.Servers[0].API().Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	stats, _ := self["Stats"]["kv_replication"].(map[string]any)
	if line, _ := stats["config/global/"].(string); !strings.HasPrefix(line, "from dc1, writes refuse, index ") {
		t.Errorf("/v1/agent/self kv_replication = %v, want config/global/ from dc1 with its index", self["Stats"]["kv_replication"])
	}

	// The metrics, by source and prefix.
	resp, err := http.Get("http://" + dc2.Servers[0].HTTPAddr() + "/v1/agent/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var scraped bytes.Buffer
	if _, err := scraped.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{
		`consul_kv_replication_index{prefix="config/global/",source="dc1"} `,
		`consul_kv_replication_applied{prefix="config/global/",source="dc1"} `,
		`consul_kv_replication_lag{prefix="fwd/",source="dc1"} `,
		`consul_kv_replication_apply_count `,
	} {
		if !strings.Contains(scraped.String(), "\n"+series) {
			t.Errorf("metrics of dc2's leader lack %q", series)
		}
	}
}

// TestKVReplicationFailover: 10,000 keys written in dc1 arrive in dc2
// while dc2's leader is killed mid-stream: none lost, none extra, and the
// new leader resumes from the replicated cursor rather than copying the
// prefix again (it applies fewer keys than were missing when it took
// over). A restart of the whole of dc2 then copies nothing again.
func TestKVReplicationFailover(t *testing.T) {
	const total = 10000
	// Answers of at most 64 KiB: the bulk arrives over many rounds.
	dc1, dc2 := replicatingDCs(t, 3, func(c *server.Config) { c.KVReplicationAnswerBytes = 64 << 10 })
	src := dc1.Servers[0].API().KV()
	txn := dc1.Servers[0].API().Txn()

	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 64 {
			var ops api.TxnOps
			for j := i; j < min(i+64, total); j++ {
				ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: fmt.Sprintf("config/global/bulk/%05d", j), Value: []byte(fmt.Sprint(j)), Flags: uint64(j)}})
			}
			ok, resp, _, err := txn.Txn(ops, nil)
			if err != nil || !ok {
				done <- fmt.Errorf("txn at key %d: %v %v", i, err, resp)
				return
			}
			written.Store(int64(min(i+64, total)))
		}
		done <- nil
	}()

	leader := dc2.WaitLeader(20 * time.Second)
	follower := dc2.Followers(leader)[0]
	fkv := follower.API().KV()
	// Kill the leader once it has copied some but not all the keys.
	var before int
	testcluster.Eventually(t, 60*time.Second, func() error {
		keys, _, err := fkv.Keys("config/global/bulk/", "", &api.QueryOptions{AllowStale: true})
		if err != nil {
			return err
		}
		if before = len(keys); before < 2000 {
			return fmt.Errorf("dc2 holds %d of %d keys", before, total)
		}
		return nil
	})
	leader.Kill()
	t.Logf("killed dc2's leader %s holding %d of %d keys (dc1 had written %d)", leader.Name, before, total, written.Load())
	if before == total {
		t.Logf("every key arrived before the kill: the failover is not mid-stream in this run")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	next := dc2.WaitLeader(30 * time.Second)
	testcluster.Eventually(t, 60*time.Second, func() error { return sameKeys(src, next.API().KV(), "config/global/", false) })
	// Leadership may have moved again among the survivors: count what
	// every one of them applied.
	applied := appliedKeys(t, dc2.Servers...)
	t.Logf("the surviving servers applied %d keys after the kill", applied)
	if missing := uint64(total - before); applied > missing {
		t.Errorf("the surviving servers applied %d keys, more than the %d missing at the kill: they copied again what was there", applied, missing)
	}

	// A restart of every server of dc2 resumes from the stored cursor.
	for _, n := range dc2.Servers {
		if n.Running() {
			n.Kill()
		}
	}
	for _, n := range dc2.Servers {
		// A killed server's QUIC socket outlives it until the links it
		// accepted close: wait for its port before starting it again.
		testcluster.Eventually(t, 60*time.Second, func() error {
			pc, err := net.ListenPacket("udp", n.ServerAddr())
			if err == nil {
				pc.Close()
			}
			return err
		})
		n.Restart()
	}
	testcluster.WaitWAN(t, 4, 30*time.Second, dc1, dc2)
	next = dc2.WaitLeader(30 * time.Second)
	put := &api.KVPair{Key: "config/global/after-restart", Value: []byte("1")}
	if _, err := src.Put(put, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 60*time.Second, func() error { return sameKeys(src, next.API().KV(), "config/global/", false) })
	if got := appliedKeys(t, dc2.Servers...); got != 1 {
		t.Errorf("after a restart of dc2 its servers applied %d keys, want 1 (the one new key)", got)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		st, err := replicationStatus(t, dc2.Servers[0])
		if err == nil && (len(st) == 0 || !st[0].Running || st[0].ReplicatedIndex == 0) {
			err = fmt.Errorf("status = %+v", st)
		}
		return err
	})
}

// appliedKeys sums consul_kv_replication_applied of config/global/ over
// the running nodes: the keys each wrote or deleted while it led, since
// it started.
func appliedKeys(t *testing.T, nodes ...*testcluster.Node) uint64 {
	t.Helper()
	const series = `consul_kv_replication_applied{prefix="config/global/",source="dc1"} `
	var sum uint64
	for _, n := range nodes {
		if !n.Running() {
			continue
		}
		resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/agent/metrics?format=prometheus")
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, err = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(body.String(), "\n") {
			if v, ok := strings.CutPrefix(line, series); ok {
				var f float64
				if _, err := fmt.Sscan(v, &f); err != nil {
					t.Fatalf("%s %q: %v", series, v, err)
				}
				sum += uint64(f)
			}
		}
	}
	return sum
}

// TestKVReplicationRulesValidated: a server refuses rules that cannot
// work, naming the rule.
func TestKVReplicationRulesValidated(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []server.KVReplicationRule
		want  string
	}{
		{"from itself", []server.KVReplicationRule{{Prefix: "a/", From: "dc1"}}, `rule "a/": from dc1 is this datacenter`},
		{"overlap", []server.KVReplicationRule{{Prefix: "a/", From: "dc2"}, {Prefix: "a/b/", From: "dc3"}}, `rules "a/" and "a/b/" overlap`},
		{"empty beside another", []server.KVReplicationRule{{Prefix: "", From: "dc2"}, {Prefix: "b/", From: "dc2"}}, `must be the only rule`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := server.DefaultConfig()
			c.NodeName, c.NodeID, c.Datacenter = "n1", "adf4238a-882b-9ddc-4a9d-5b6758e4159e", "dc1"
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			c.Listener = ln
			c.KVReplication = tc.rules
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.rules, err, tc.want)
			}
		})
	}
}

// TestKVReplicationLag measures how long a key written in dc1 takes to be
// readable in dc2 (direct link, no relay) while dc1 takes about 1,000
// writes/s: each value carries its write time, and a blocking list in dc2
// stamps its arrival.
func TestKVReplicationLag(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for 10s")
	}
	dc1, dc2 := replicatingDCs(t, 1, nil)
	lags := measureReplicationLag(t, dc1.Servers[0], dc2.Servers[0], 1000, 10*time.Second)
	p50, p99 := lags[len(lags)/2], lags[len(lags)*99/100]
	t.Logf("replication lag over %d keys: p50 %s, p99 %s, max %s", len(lags), p50, p99, lags[len(lags)-1])
	if p99 > 5*time.Second {
		t.Errorf("replication lag p99 = %s, want well under 5s (goal 500ms)", p99)
	}
}

// measureReplicationLag writes at about rate keys/s for d into src's
// config/global/lag/ (each of 32 writers overwrites its own key with a
// sequence number) and returns the sorted lags after which dst first held
// each write, or a later one of the same writer.
func measureReplicationLag(t *testing.T, src, dst *testcluster.Node, rate int, d time.Duration) []time.Duration {
	t.Helper()
	const (
		prefix  = "config/global/lag/"
		writers = 32
	)
	skv, dkv := src.API().KV(), dst.API().KV()
	var (
		mu   sync.Mutex
		sent [writers][]time.Time // by writer, by sequence; zero: not written
		seen [writers]int         // the highest sequence dst held, +1
		lags []time.Duration
	)
	stop := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		var idx uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			pairs, meta, err := dkv.List(prefix, &api.QueryOptions{WaitIndex: idx, WaitTime: time.Second, AllowStale: true})
			if err != nil {
				continue
			}
			now := time.Now()
			idx = meta.LastIndex
			mu.Lock()
			for _, p := range pairs {
				var w, seq int
				if _, err := fmt.Sscanf(p.Key[len(prefix):], "%d", &w); err != nil || w < 0 || w >= writers {
					continue
				}
				if _, err := fmt.Sscanf(string(p.Value), "%d", &seq); err != nil {
					continue
				}
				for ; seen[w] <= seq && seen[w] < len(sent[w]); seen[w]++ {
					if at := sent[w][seen[w]]; !at.IsZero() {
						lags = append(lags, now.Sub(at))
					}
				}
			}
			mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	var n atomic.Int64
	start := time.Now()
	interval := time.Duration(writers) * time.Second / time.Duration(rate)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			key := fmt.Sprintf("%s%02d", prefix, w)
			for seq := 0; time.Since(start) < d; seq++ {
				<-tick.C
				mu.Lock()
				sent[w] = append(sent[w], time.Now())
				mu.Unlock()
				if _, err := skv.Put(&api.KVPair{Key: key, Value: []byte(fmt.Sprint(seq))}, nil); err != nil {
					mu.Lock()
					sent[w][seq] = time.Time{}
					mu.Unlock()
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%s took %d writes in %s (%.0f/s)", src.ID(), n.Load(), elapsed.Round(time.Millisecond), float64(n.Load())/elapsed.Seconds())
	testcluster.Eventually(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if got := int64(len(lags)); got < n.Load() {
			return fmt.Errorf("%d of %d writes arrived", got, n.Load())
		}
		return nil
	})
	close(stop)
	<-watchDone
	mu.Lock()
	defer mu.Unlock()
	out := slices.Clone(lags)
	slices.Sort(out)
	return out
}

// TestKVReplicationWithACLs: with ACLs on, dc2 reads dc1 with its
// replication token and copies only what that token may read; the status
// needs operator:read.
func TestKVReplicationWithACLs(t *testing.T) {
	const mgmt = "3b4a1c2d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	configure := func(c *configs.Config) {
		c.PrimaryDatacenter = "dc1"
		c.ACL.Enabled = true
		c.ACL.DefaultPolicy = configs.ACLDeny
		if c.Datacenter == "dc1" {
			c.ACL.Tokens.InitialManagement = mgmt
			return
		}
		c.ACL.Tokens.Replication = mgmt
		c.Replication.KV = []configs.KVReplication{{Prefix: "config/global/", From: "dc1"}}
	}
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc1", TuneServer: defaultRaftTimings, Configure: configure})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc2", TuneServer: defaultRaftTimings, Configure: configure})
	testcluster.Federate(t, dc1, dc2)
	client := func(n *testcluster.Node, token string) *api.Client {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Token = n.HTTPAddr(), token
		c, err := api.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1, c2 := client(dc1.Servers[0], mgmt), client(dc2.Servers[0], mgmt)
	testcluster.Eventually(t, 30*time.Second, func() error {
		_, err := c1.KV().Put(&api.KVPair{Key: "config/global/a", Value: []byte("1")}, nil)
		return err
	})
	testcluster.Eventually(t, 30*time.Second, func() error { return sameKeys(c1.KV(), c2.KV(), "config/global/", false) })

	if _, err := replicationStatus(t, dc2.Servers[0]); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("GET /v1/operator/replication without a token = %v, want 403", err)
	}
	req, _ := http.NewRequest("GET", "http://"+dc2.Servers[0].HTTPAddr()+"/v1/operator/replication", nil)
	req.Header.Set("X-Consul-Token", mgmt)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/operator/replication with a management token = %s, want 200", resp.Status)
	}
	if _, err := c2.KV().Put(&api.KVPair{Key: "config/global/a", Value: []byte("2")}, nil); err == nil || !strings.Contains(err.Error(), "replicated from dc1") {
		t.Errorf("Put(config/global/a) in dc2 with a management token = %v, want refused naming dc1", err)
	}

	// A replication token that may read config/global/ but not its
	// secret/ copies what it may read and nothing else.
	pol, _, err := c1.ACL().PolicyCreate(&api.ACLPolicy{Name: "kv-replication", Rules: `key_prefix "config/global/" { policy = "read" }
key_prefix "config/global/secret/" { policy = "deny" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := c1.ACL().TokenCreate(&api.ACLToken{Description: "kv replication", Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Agent().UpdateReplicationACLToken(tok.SecretID, nil); err != nil {
		t.Fatalf("set dc2's replication token: %v", err)
	}
	// The round in flight read with the old token: let it end.
	if _, err := c1.KV().Put(&api.KVPair{Key: "config/global/marker", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		p, _, err := c2.KV().Get("config/global/marker", nil)
		if err == nil && p == nil {
			err = fmt.Errorf("config/global/marker has not arrived in dc2")
		}
		return err
	})
	for _, k := range []string{"config/global/secret/x", "config/global/b"} {
		if _, err := c1.KV().Put(&api.KVPair{Key: k, Value: []byte("v")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		p, _, err := c2.KV().Get("config/global/b", nil)
		if err == nil && p == nil {
			err = fmt.Errorf("config/global/b has not arrived in dc2")
		}
		return err
	})
	if p, _, err := c2.KV().Get("config/global/secret/x", nil); err != nil || p != nil {
		t.Errorf("Get(config/global/secret/x) in dc2 = %+v, %v; want nothing: the replication token may not read it", p, err)
	}
}
