package rpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
)

// pki is a CA and certificates made by NewCA and NewCert, written to a
// directory under the names `meridian tls` gives them.
type pki struct {
	dir string
	ca  PEMPair
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	ca, err := NewCA("consul", 30)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	p := &pki{dir: t.TempDir(), ca: ca}
	p.write(t, "ca.pem", ca.Cert)
	return p
}

func (p *pki) write(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cert makes a certificate of kind for dc and returns its cert and key files.
func (p *pki) cert(t testing.TB, kind, dc string) (certFile, keyFile string) {
	t.Helper()
	pair, err := NewCert(p.ca, CertRequest{Kind: kind, Datacenter: dc, Domain: "consul", Days: 30})
	if err != nil {
		t.Fatalf("NewCert(%s, %s): %v", kind, dc, err)
	}
	base := dc + "-" + kind
	return p.write(t, base+".pem", pair.Cert), p.write(t, base+"-key.pem", pair.Key)
}

// configurator makes a TLSConfigurator for a certificate of kind in dc with
// every verify_* on.
func (p *pki) configurator(t testing.TB, kind, dc string) *TLSConfigurator {
	t.Helper()
	cf, kf := p.cert(t, kind, dc)
	c, err := NewTLSConfigurator(TLSConfig{
		CAFile: filepath.Join(p.dir, "ca.pem"), CertFile: cf, KeyFile: kf,
		VerifyIncoming: true, VerifyOutgoing: true, VerifyServerHostname: true,
		Datacenter: dc, Domain: "consul", Server: kind == CertServer,
	})
	if err != nil {
		t.Fatalf("NewTLSConfigurator(%s, %s): %v", kind, dc, err)
	}
	return c
}

// startTLSServer is startServer with MuxConfig.TLS and a recorded log.
func startTLSServer(t testing.TB, tc *TLSConfigurator) (*testServer, recordHandler, *Mux) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecordHandler()
	ts := &testServer{
		addr:     ln.Addr().String(),
		srv:      NewServer(ServerConfig{}),
		mux:      NewMux(ln, MuxConfig{TLS: tc, Logger: slog.New(rec)}),
		accepted: &countingListener{},
		done:     make(chan struct{}),
	}
	ts.h = registerTestHandlers(ts.srv)
	ts.accepted.Listener = ts.mux.Listener(ProtoMux)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ts.mux.Serve() }()
	go func() { defer wg.Done(); ts.srv.ServeListener(ts.accepted) }()
	go func() { wg.Wait(); close(ts.done) }()
	t.Cleanup(ts.stop)
	return ts, rec, ts.mux
}

// TestMuxTLS is issue 19's server port: RPC over TLS with a certificate of
// the CA works; no certificate, another CA's, plain bytes under
// verify_incoming, and a client certificate speaking Raft or answering as a
// server are each refused, with a log line naming the reason.
func TestMuxTLS(t *testing.T) {
	p := newPKI(t)
	server := p.configurator(t, CertServer, "dc1")
	ts, rec, mux := startTLSServer(t, server)
	raft := mux.Listener(ProtoRaft)
	go func() {
		for {
			c, err := raft.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("raft ok"))
			c.Close()
		}
	}()

	call := func(dial func(ctx context.Context, addr string) (net.Conn, error)) error {
		pool := NewPool(PoolConfig{Dial: dial, DialTimeout: 5 * time.Second})
		defer pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var r echoArgs
		return pool.Call(ctx, ts.addr, "Test.Echo", &echoArgs{Msg: "hi"}, &r)
	}

	t.Run("client certificate", func(t *testing.T) {
		client := p.configurator(t, CertClient, "dc1")
		if err := call(client.Dialer("dc1", ProtoMux, nil)); err != nil {
			t.Fatalf("Call over mTLS = %v, want nil", err)
		}
	})

	other := newPKI(t)
	refusals := []struct {
		name string
		dial func(ctx context.Context, addr string) (net.Conn, error)
		log  string
	}{
		{"plain", func(ctx context.Context, addr string) (net.Conn, error) { return DialProto(ctx, addr, ProtoMux) },
			"verify_incoming requires TLS"},
		{"no certificate", func(ctx context.Context, addr string) (net.Conn, error) {
			cfg := &tls.Config{InsecureSkipVerify: true}
			return DialTLS(ctx, nil, addr, ProtoMux, cfg)
		}, "peer presented no certificate"},
		{"other ca", func(ctx context.Context, addr string) (net.Conn, error) {
			cfg := other.configurator(t, CertClient, "dc1").OutgoingConfig("dc1")
			cfg.VerifyConnection = nil // trust the server, present the other CA's certificate
			return DialTLS(ctx, nil, addr, ProtoMux, cfg)
		}, "not by a CA we trust"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if err := call(tc.dial); err == nil {
				t.Fatalf("Call = nil, want a refusal")
			}
			wait.Eventually(t, 5*time.Second, func() error {
				if _, ok := rec.find("mux refused connection", tc.log); !ok {
					return errors.New("no log line 'mux refused connection' with " + tc.log)
				}
				return nil
			})
		})
	}

	t.Run("client certificate speaking raft", func(t *testing.T) {
		client := p.configurator(t, CertClient, "dc1")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := client.Dialer("dc1", ProtoRaft, nil)(ctx, ts.addr)
		if err != nil {
			t.Fatalf("dial raft: %v", err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 16)
		if n, err := conn.Read(b); err == nil {
			t.Fatalf("raft over a client certificate read %q, want the connection closed", b[:n])
		}
		wait.Eventually(t, 5*time.Second, func() error {
			if _, ok := rec.find("mux refused connection", "raft connection refused", "client.dc1.consul"); !ok {
				return errors.New("no log line refusing raft from client.dc1.consul")
			}
			return nil
		})
		server2 := p.configurator(t, CertServer, "dc1")
		conn2, err := server2.Dialer("dc1", ProtoRaft, nil)(ctx, ts.addr)
		if err != nil {
			t.Fatalf("dial raft as a server: %v", err)
		}
		defer conn2.Close()
		conn2.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn2.Read(b); err != nil || string(b[:n]) != "raft ok" {
			t.Fatalf("raft as a server read %q, %v; want \"raft ok\"", b[:n], err)
		}
	})

	t.Run("client certificate posing as a server", func(t *testing.T) {
		rogue, _, _ := startTLSServer(t, p.configurator(t, CertClient, "dc1"))
		server2 := p.configurator(t, CertServer, "dc1")
		pool := NewPool(PoolConfig{Dial: server2.Dialer("dc1", ProtoMux, nil)})
		defer pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var r echoArgs
		err := pool.Call(ctx, rogue.addr, "Test.Echo", &echoArgs{Msg: "hi"}, &r)
		if err == nil || !strings.Contains(err.Error(), "is not for server.dc1.consul") {
			t.Fatalf("Call to a client certificate = %v, want it refused as not server.dc1.consul", err)
		}
	})
}

// TestMuxTLSNotConfigured: TLS bytes to a server without TLS are refused
// with a reason, not read as an unknown protocol.
func TestMuxTLSNotConfigured(t *testing.T) {
	ts, rec, _ := startTLSServer(t, nil)
	p := newPKI(t)
	client := p.configurator(t, CertClient, "dc1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Dialer("dc1", ProtoMux, nil)(ctx, ts.addr); err == nil {
		t.Fatal("DialTLS to a plain server = nil, want a handshake error")
	}
	wait.Eventually(t, 5*time.Second, func() error {
		if _, ok := rec.find("mux refused connection", "no tls certificate configured"); !ok {
			return errors.New("no log line refusing the tls connection")
		}
		return nil
	})
}

// TestMuxTLSExpiredPeer: a client certificate of the CA that has expired
// is refused, with the reason logged.
func TestMuxTLSExpiredPeer(t *testing.T) {
	p := newPKI(t)
	ts, rec, _ := startTLSServer(t, p.configurator(t, CertServer, "dc1"))
	caCert, caKey, err := parseCA(p.ca)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "client.dc1.consul"},
		DNSNames:  []string{"client.dc1.consul"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.configurator(t, CertClient, "dc1").OutgoingConfig("dc1")
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
	}
	pool := NewPool(PoolConfig{Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		return DialTLS(ctx, nil, addr, ProtoMux, cfg)
	}})
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r echoArgs
	if err := pool.Call(ctx, ts.addr, "Test.Echo", &echoArgs{Msg: "hi"}, &r); err == nil {
		t.Fatal("Call with an expired certificate = nil, want refused")
	}
	wait.Eventually(t, 5*time.Second, func() error {
		if _, ok := rec.find("mux refused connection", "expired"); !ok {
			return errors.New("no log line refusing the expired certificate")
		}
		return nil
	})
}

// TestMuxTLSOnTheWire is the tcpdump: a proxy between client and
// server records every byte; in the clear a request's value is there to
// read, over TLS it is not.
func TestMuxTLSOnTheWire(t *testing.T) {
	p := newPKI(t)
	server := p.configurator(t, CertServer, "dc1")
	// verify_incoming off, so the plain call is served too.
	open, err := NewTLSConfigurator(func() TLSConfig { c := server.Config(); c.VerifyIncoming = false; return c }())
	if err != nil {
		t.Fatal(err)
	}
	ts, _, _ := startTLSServer(t, open)
	client := p.configurator(t, CertClient, "dc1")
	const secret = "the-kv-value-nobody-should-read"
	for _, tc := range []struct {
		name    string
		dial    func(ctx context.Context, addr string) (net.Conn, error)
		visible bool
	}{
		{"plain", func(ctx context.Context, addr string) (net.Conn, error) { return DialProto(ctx, addr, ProtoMux) }, true},
		{"tls", client.Dialer("dc1", ProtoMux, nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy, wire := startTapProxy(t, ts.addr)
			pool := NewPool(PoolConfig{Dial: tc.dial})
			defer pool.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var r echoArgs
			if err := pool.Call(ctx, proxy, "Test.Echo", &echoArgs{Msg: secret}, &r); err != nil {
				t.Fatalf("Call: %v", err)
			}
			if got := strings.Contains(wire(), secret); got != tc.visible {
				t.Fatalf("value readable on the wire = %v, want %v", got, tc.visible)
			}
		})
	}
}

// startTapProxy forwards TCP connections to target and records the bytes
// both ways; wire returns what it saw so far.
func startTapProxy(t *testing.T, target string) (addr string, wire func() string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		seen  []byte
		conns []net.Conn
	)
	tap := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				mu.Lock()
				seen = append(seen, buf[:n]...)
				mu.Unlock()
				dst.Write(buf[:n])
			}
			if err != nil {
				dst.Close()
				return
			}
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); tap(s, c) }()
			go func() { defer wg.Done(); tap(c, s) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), func() string {
		mu.Lock()
		defer mu.Unlock()
		return string(seen)
	}
}
