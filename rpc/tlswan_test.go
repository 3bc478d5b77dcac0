package rpc

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
)

// TestWANConfig: a WAN link dialed to dc2 needs server.dc2.consul; a server
// of dc9 and a client certificate are refused, on both sides.
func TestWANConfig(t *testing.T) {
	p := newPKI(t)
	dc1 := p.configurator(t, CertServer, "dc1")
	for _, tc := range []struct {
		name   string
		server *TLSConfigurator
		dialer *TLSConfigurator
		dc     string
		want   string
	}{
		{"server of dc2", p.configurator(t, CertServer, "dc2"), dc1, "dc2", ""},
		{"server of dc9 posing as dc2", p.configurator(t, CertServer, "dc9"), dc1, "dc2", "is not for server.dc2.consul"},
		{"client certificate dialing", p.configurator(t, CertServer, "dc2"), p.configurator(t, CertClient, "dc1"), "dc2", "peer refused our certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			qs := startQUICServer(t, "127.0.0.1:0", fastQUIC(tc.server.WANConfig("")), ServerConfig{})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			sess, err := DialQUIC(ctx, qs.addr, fastQUIC(tc.dialer.WANConfig(tc.dc)))
			if err == nil {
				var r echoArgs
				err = callOnce(ctx, sess, "Test.Echo", &echoArgs{Msg: "x"}, &r)
				sess.Close()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("link to %s = %v, want it up", tc.dc, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("link to %s = %v, want refused with %q", tc.dc, err, tc.want)
			}
		})
	}
}

// callOnce makes one call on a fresh stream of sess.
func callOnce(ctx context.Context, sess Session, method string, args, reply any) error {
	pool := NewPool(PoolConfig{DialSession: func(context.Context, string) (Session, error) { return sess, nil }})
	defer pool.Close()
	return pool.Call(ctx, "link", method, args, reply)
}

// TestWANHandshakeRoundTrips measures a new WAN link (QUIC dial plus the
// first call) through a relay adding 25ms each way, with the ephemeral
// certificates of before and with mutual TLS from the CA: mTLS costs no
// extra round trip (the client's certificate rides its second flight, with
// the first request), within the bound of one. The fastest of
// several interleaved runs counts: a loaded machine only ever adds time.
func TestWANHandshakeRoundTrips(t *testing.T) {
	const oneWay = 25 * time.Millisecond
	rtt := 2 * oneWay
	p := newPKI(t)
	type link struct {
		addr   string
		client QUICConfig
		runs   []time.Duration
	}
	newLink := func(server, client QUICConfig) *link {
		qs := startQUICServer(t, "127.0.0.1:0", server, ServerConfig{})
		return &link{addr: startRelay(t, qs.addr, oneWay).addr(), client: client}
	}
	measure := func(l *link) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		sess, err := DialQUIC(ctx, l.addr, l.client)
		if err != nil {
			t.Fatalf("DialQUIC: %v", err)
		}
		defer sess.Close()
		var r echoArgs
		if err := callOnce(ctx, sess, "Test.Echo", &echoArgs{Msg: "x"}, &r); err != nil {
			t.Fatalf("first call: %v", err)
		}
		l.runs = append(l.runs, time.Since(start))
	}
	ephLink := newLink(fastQUIC(ephemeralTLS(t, "s")), fastQUIC(ephemeralTLS(t, "c")))
	mtlsLink := newLink(fastQUIC(p.configurator(t, CertServer, "dc2").WANConfig("")), fastQUIC(p.configurator(t, CertServer, "dc1").WANConfig("dc2")))
	// Interleaved, so that both see the same load.
	for range 7 {
		measure(ephLink)
		measure(mtlsLink)
	}
	eph, mtls := slices.Min(ephLink.runs), slices.Min(mtlsLink.runs)
	t.Logf("new WAN link, dial + first call, RTT %v: ephemeral %v (%.1f RTT), mTLS %v (%.1f RTT)",
		rtt, eph, float64(eph)/float64(rtt), mtls, float64(mtls)/float64(rtt))
	wait.Figure(t, mtls <= eph+rtt, "mTLS link took %v, more than one round trip (%v) over the ephemeral one's %v", mtls, rtt, eph)
}
