package agent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

// TestClusterMTLS is issue 19's secure datacenter: three servers and a
// client with verify_incoming, verify_outgoing and verify_server_hostname.
// Raft, forwarding to the leader and client RPC all run over TLS; the
// issue's attack, a process without credentials writing KV through a yamux
// session on 8300, is refused, as are a client without a certificate, one
// with another CA's, and one whose servers' certificates are client ones.
func TestClusterMTLS(t *testing.T) {
	pki := testcluster.NewPKI(t)
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1, Configure: pki.MTLS})
	leader := c.WaitLeader(10 * time.Second)

	// A loaded machine may still be settling the leadership: the writes
	// are retried until they land.
	kv := c.Clients[0].API().KV()
	testcluster.Eventually(t, 15*time.Second, func() error {
		if _, err := kv.Put(&api.KVPair{Key: "tls/ok", Value: []byte("v")}, nil); err != nil {
			return fmt.Errorf("KV().Put through the client over mTLS: %w", err)
		}
		return nil
	})
	leader = c.WaitLeader(10 * time.Second)
	follower := c.Followers(leader)[0]
	testcluster.Eventually(t, 15*time.Second, func() error {
		if _, err := follower.API().KV().Put(&api.KVPair{Key: "tls/follower", Value: []byte("v")}, nil); err != nil {
			return fmt.Errorf("KV().Put through a follower (forwarded to the leader over mTLS): %w", err)
		}
		return nil
	})

	t.Run("no credentials on 8300", func(t *testing.T) {
		pool := rpc.NewPool(rpc.PoolConfig{DialTimeout: 5 * time.Second})
		defer pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		args := rpc.Write[kvstore.KVRequest]{Args: kvstore.KVRequest{Op: kvstore.VerbSet, Key: "tls/attack", Value: []byte("pwned")}}
		var reply rpc.WriteResult
		if err := pool.Call(ctx, leader.ServerAddr(), rpc.MethodKVApply, &args, &reply); err == nil {
			t.Fatalf("KV.Apply over a plain yamux session = nil error (index %d), want it refused", reply.Index)
		}
		noKey(t, c, "tls/attack")
	})

	t.Run("no credentials on raft", func(t *testing.T) {
		// The RequestVote storm started with a plain Raft
		// connection: it is closed before raft reads a byte.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := rpc.DialProto(ctx, follower.ServerAddr(), rpc.ProtoRaft)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		conn.Write([]byte{0x01, 0x02, 0x03}) // whatever a RequestVote would start with
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read on a plain raft connection = %v, want it closed by the server", err)
		}
		c.WaitLeader(10 * time.Second)
	})

	other := testcluster.NewPKI(t)
	yes := true
	refused := []struct {
		name      string
		configure func(*configs.Config)
	}{
		{"client without a certificate", func(cfg *configs.Config) {
			cfg.TLS.Defaults = configs.TLSStanza{CAFile: pki.CAFile(), VerifyOutgoing: &yes}
			cfg.TLS.InternalRPC = configs.TLSStanza{VerifyServerHostname: &yes}
		}},
		{"client with another CA's certificate", func(cfg *configs.Config) {
			cert, key := other.Cert(rpc.CertClient, "dc1")
			cfg.TLS.Defaults = configs.TLSStanza{CAFile: other.CAFile(), CertFile: cert, KeyFile: key, VerifyOutgoing: &yes}
		}},
		{"client without tls", func(cfg *configs.Config) {}},
	}
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testcluster.AgentConfig(t, fmt.Sprintf("rogue%d", i))
			cfg.RetryJoin = []string{c.Servers[0].LANAddr()}
			tc.configure(cfg)
			a, err := testcluster.StartAgent(t, cfg)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			client, err := api.NewClient(&api.Config{Address: a.HTTPAddr()})
			if err != nil {
				t.Fatal(err)
			}
			// It joins gossip (no gossip key here) and so knows the
			// servers, but every RPC to them is refused.
			testcluster.Eventually(t, 10*time.Second, func() error {
				m, err := a.Members(false)
				if err != nil {
					return err
				}
				if len(m) < 5 {
					return fmt.Errorf("rogue sees %d members, want 5", len(m))
				}
				return nil
			})
			_, err = client.KV().Put(&api.KVPair{Key: "tls/rogue", Value: []byte("x")}, nil)
			if err == nil {
				t.Fatal("KV().Put through an agent the servers refuse = nil error")
			}
			noKey(t, c, "tls/rogue")
		})
	}
}

// noKey checks that key was never written, reading through a server (and
// retrying a read that a leadership change on a loaded machine fails).
func noKey(t *testing.T, c *testcluster.Cluster, key string) {
	t.Helper()
	var pair *api.KVPair
	testcluster.Eventually(t, 15*time.Second, func() error {
		var err error
		pair, _, err = c.Servers[0].API().KV().Get(key, nil)
		return err
	})
	if pair != nil {
		t.Fatalf("KV().Get(%s) = %q, want no such key", key, pair.Value)
	}
}

// TestServerCertRequired: a server whose certificate lacks its server name
// under verify_server_hostname does not start, and says why.
func TestServerCertRequired(t *testing.T) {
	pki := testcluster.NewPKI(t)
	cfg := testcluster.AgentConfig(t, "server1")
	cfg.Server, cfg.Bootstrap = true, true
	pki.MTLS(cfg)
	cert, key := pki.Cert(rpc.CertClient, "dc1")
	cfg.TLS.Defaults.CertFile, cfg.TLS.Defaults.KeyFile = cert, key
	_, err := testcluster.StartAgent(t, cfg)
	if err == nil || !strings.Contains(err.Error(), cert) || !strings.Contains(err.Error(), "not server.dc1.consul") {
		t.Fatalf("StartAgent with a client certificate on a server = %v, want an error naming %s and server.dc1.consul", err, cert)
	}
}

// TestWANRogueServer is issue 19's WAN attack: a process with a valid
// certificate of the CA, but for server.dc9.consul, joins WAN gossip as a
// server of dc2. With verify_server_hostname, dc1 checks that a server of
// dc2 presents server.dc2.consul, so the rogue receives none of dc1's
// writes for dc2 and answers none of its reads; the real dc2 does. It runs
// over QUIC and over the TCP fallback.
func TestWANRogueServer(t *testing.T) {
	for _, transport := range []string{configs.WANTransportQUIC, configs.WANTransportTCP} {
		t.Run(transport, func(t *testing.T) {
			pki := testcluster.NewPKI(t)
			configure := func(cfg *configs.Config) {
				pki.MTLS(cfg)
				cfg.WANTransport = transport
			}
			// dc1 sees the rogue nearest of dc2's servers, so it is tried
			// first whenever it is allowed.
			nearRogue := func(sc *server.Config) {
				sc.Federation.RTT = func(name string) (time.Duration, bool) {
					if strings.HasPrefix(name, "rogue") {
						return time.Millisecond, true
					}
					return 50 * time.Millisecond, true
				}
			}
			dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc1", Configure: configure, TuneServer: nearRogue})
			dc2 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc2", Configure: configure})
			testcluster.Federate(t, dc1, dc2)

			// The rogue: a server of "dc2" with its own one-server Raft,
			// a certificate of the CA for dc9, and no check of its own name.
			cfg := testcluster.AgentConfig(t, "rogue")
			cfg.Datacenter, cfg.Server, cfg.Bootstrap = "dc2", true, true
			cert, key := pki.Cert(rpc.CertServer, "dc9")
			yes := true
			cfg.TLS.Defaults = configs.TLSStanza{CAFile: pki.CAFile(), CertFile: cert, KeyFile: key, VerifyIncoming: &yes, VerifyOutgoing: &yes}
			cfg.WANTransport = transport
			rogue, err := testcluster.StartAgent(t, cfg)
			if err != nil {
				t.Fatalf("start rogue: %v", err)
			}
			rogueAPI, err := api.NewClient(&api.Config{Address: rogue.HTTPAddr()})
			if err != nil {
				t.Fatal(err)
			}
			testcluster.Eventually(t, 10*time.Second, func() error {
				_, err := rogueAPI.KV().Put(&api.KVPair{Key: "marker", Value: []byte("rogue")}, nil)
				return err
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := rogue.Join(ctx, dc1.Servers[0].WANAddr(), true); err != nil {
				t.Fatalf("rogue wan join: %v", err)
			}
			testcluster.Eventually(t, 10*time.Second, func() error {
				m, err := dc1.Servers[0].Agent().Members(true)
				if err != nil {
					return err
				}
				if len(m) != 3 {
					return fmt.Errorf("dc1 sees %d WAN members, want 3 (the rogue among them)", len(m))
				}
				return nil
			})

			kv := dc1.Servers[0].API().KV()
			dc2opts := &api.WriteOptions{Datacenter: "dc2"}
			for i := range 20 {
				// A write or read that a loaded machine fails is
				// retried; what matters is who answers.
				testcluster.Eventually(t, 15*time.Second, func() error {
					_, err := kv.Put(&api.KVPair{Key: fmt.Sprintf("w/%d", i), Value: []byte("v")}, dc2opts)
					return err
				})
				var p *api.KVPair
				testcluster.Eventually(t, 15*time.Second, func() error {
					var err error
					p, _, err = kv.Get("marker", &api.QueryOptions{Datacenter: "dc2"})
					return err
				})
				if p != nil {
					t.Fatalf("KV().Get(marker, dc=dc2) = %q; want no key (the rogue's marker means it answered)", p.Value)
				}
			}
			keys, _, err := rogueAPI.KV().Keys("w/", "", nil)
			if err != nil || len(keys) != 0 {
				t.Fatalf("the rogue holds %v (%v), want none of dc1's writes for dc2", keys, err)
			}
			keys, _, err = dc2.Servers[0].API().KV().Keys("w/", "", nil)
			if err != nil || len(keys) != 20 {
				t.Fatalf("dc2 holds %d of the 20 writes for it (%v)", len(keys), err)
			}
		})
	}
}
