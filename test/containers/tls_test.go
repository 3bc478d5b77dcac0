//go:build containers

package containers

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// tlsConfig turns on mTLS on every agent's server port and WAN links, with
// the certificates tlsFiles writes.
const tlsConfig = `tls:
  defaults:
    ca_file: /tls/ca.pem
    cert_file: /tls/agent.pem
    key_file: /tls/agent-key.pem
    verify_incoming: true
    verify_outgoing: true
  internal_rpc:
    verify_server_hostname: true
`

// TestTLSFederation is issue 19 in containers: two datacenters of three
// servers and a client, every agent on its own host, mTLS on RPC, Raft and
// WAN links. Writes, local and cross-datacenter reads work; the issue's
// attack, a process without credentials writing KV through a plain yamux
// session on a server's 8300, is refused.
func TestTLSFederation(t *testing.T) {
	ca, err := rpc.NewCA("consul", 30)
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]rpc.PEMPair{}
	for _, dc := range []string{"dc1", "dc2"} {
		for _, kind := range []string{rpc.CertServer, rpc.CertClient} {
			pair, err := rpc.NewCert(ca, rpc.CertRequest{Kind: kind, Datacenter: dc, Domain: "consul", Days: 30})
			if err != nil {
				t.Fatal(err)
			}
			certs[dc+"/"+kind] = pair
		}
	}
	spec := clusterSpec{
		datacenters: []string{"dc1", "dc2"}, servers: 3, clients: 1, federate: true,
		config: tlsConfig,
		files: func(a *agent) map[string]string {
			kind := rpc.CertClient
			if a.server {
				kind = rpc.CertServer
			}
			pair := certs[a.dc+"/"+kind]
			return map[string]string{"/tls/ca.pem": string(ca.Cert), "/tls/agent.pem": string(pair.Cert), "/tls/agent-key.pem": string(pair.Key)}
		},
	}
	c := newCluster(t, spec)
	c.waitWAN(t, wanTimeout)
	dc1, dc2 := c.dc("dc1"), c.dc("dc2")

	client := dc1.clients[0].api(t, requestTimeout)
	eventually(t, crossTimeout, "a KV write through dc1's client and one for dc2", func() error {
		if _, err := client.KV().Put(&api.KVPair{Key: "tls/local", Value: []byte("1")}, nil); err != nil {
			return err
		}
		_, err := client.KV().Put(&api.KVPair{Key: "tls/remote", Value: []byte("2")}, &api.WriteOptions{Datacenter: "dc2"})
		return err
	})
	p, _, err := dc2.clients[0].api(t, requestTimeout).KV().Get("tls/remote", nil)
	if err != nil || p == nil || string(p.Value) != "2" {
		t.Fatalf("dc2's client reads tls/remote = %v, %v; want 2", p, err)
	}

	pool := rpc.NewPool(rpc.PoolConfig{DialTimeout: requestTimeout})
	defer pool.Close()
	for _, s := range dc1.servers {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		args := rpc.Write[kvstore.KVRequest]{Args: kvstore.KVRequest{Op: kvstore.VerbSet, Key: "tls/attack", Value: []byte("pwned")}}
		var reply rpc.WriteResult
		err := pool.Call(ctx, fmt.Sprintf("%s:%d", s.ip, serverPort), rpc.MethodKVApply, &args, &reply)
		cancel()
		if err == nil {
			t.Fatalf("KV.Apply on %s's 8300 without credentials = nil error (index %d), want refused", s, reply.Index)
		}
	}
	if p, _, err := client.KV().Get("tls/attack", nil); err != nil || p != nil {
		t.Fatalf("KV().Get(tls/attack) = %v, %v; want no such key", p, err)
	}
}
