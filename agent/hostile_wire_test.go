package agent_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/rpc"
)

// wireTarget is one port of the agent that a stranger can reach.
type wireTarget struct {
	name, network, addr string
}

// TestHostileWire sends random bytes, truncated frames, oversized length
// prefixes and silence to every port a server agent listens on (server
// RPC/Raft TCP and QUIC UDP, LAN and WAN gossip TCP and UDP, DNS UDP and
// TCP, HTTP) and checks that the agent neither crashes nor allocates by a
// length it was sent, drops what it cannot parse, and keeps serving.
func TestHostileWire(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1})
	n := c.Servers[0]
	a := n.Agent()
	targets := []wireTarget{
		{"server tcp", "tcp", n.ServerAddr()}, {"server quic", "udp", n.ServerAddr()},
		{"lan tcp", "tcp", n.LANAddr()}, {"lan udp", "udp", n.LANAddr()},
		{"wan tcp", "tcp", n.WANAddr()}, {"wan udp", "udp", n.WANAddr()},
		{"dns tcp", "tcp", a.DNSAddr()}, {"dns udp", "udp", a.DNSAddr()},
		{"http", "tcp", n.HTTPAddr()},
	}
	healthy := func(t *testing.T) {
		t.Helper()
		testcluster.Eventually(t, 10*time.Second, func() error {
			if leader, err := n.API().Status().Leader(); err != nil || leader == "" {
				return fmt.Errorf("status/leader: %q, %v", leader, err)
			}
			m := new(mdns.Msg)
			m.SetQuestion(n.Name+".node.consul.", mdns.TypeA)
			r, _, err := new(mdns.Client).Exchange(m, a.DNSAddr())
			if err != nil || len(r.Answer) == 0 {
				return fmt.Errorf("dns %s.node.consul: %v, %v", n.Name, r, err)
			}
			return nil
		})
	}

	t.Run("random bytes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, tg := range targets {
			for i := range 40 {
				junk := make([]byte, 1+rng.IntN(4096))
				for j := range junk {
					junk[j] = byte(rng.Uint32())
				}
				switch {
				case tg.name == "server tcp" && i%3 == 1:
					junk[0] = rpc.ProtoMux // garbage where a yamux session should be
				case tg.name == "server tcp" && i%3 == 2:
					junk[0] = rpc.ProtoRaft // garbage where Raft should be
				}
				send(t, tg, junk)
			}
		}
		healthy(t)
	})

	t.Run("truncated frames", func(t *testing.T) {
		yamuxHeader := []byte{0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0}
		sends := []struct {
			tg   wireTarget
			data []byte
		}{
			{targets[0], append([]byte{rpc.ProtoMux}, yamuxHeader[:6]...)},
			{targets[0], []byte{rpc.ProtoRaft, 0x00, 0x83, 0xa4}},
			{targets[2], []byte{6, 0x83, 0xa5, 'N', 'o'}}, // a push/pull cut in its header
			{targets[6], []byte{0x00, 0x20, 0x12, 0x34}},  // a DNS message cut after its id
			{targets[8], []byte("PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")},
		}
		for _, s := range sends {
			send(t, s.tg, s.data)
		}
		healthy(t)
	})

	t.Run("oversized length prefixes", func(t *testing.T) {
		// Gossip push/pull headers claiming a billion nodes or a huge user
		// state: memberlist checks both before allocating.
		for _, hdr := range []map[string]any{
			{"Nodes": 1 << 30, "UserStateLen": 0, "Join": false},
			{"Nodes": 0, "UserStateLen": 1 << 40, "Join": false},
		} {
			b, err := rpc.Marshal(hdr)
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range []wireTarget{targets[2], targets[4]} {
				send(t, tg, append([]byte{6}, b...))
			}
		}
		// A DNS-over-TCP length prefix of 65535 with 3 bytes behind it.
		send(t, targets[6], []byte{0xff, 0xff, 1, 2, 3})

		// RPC frames on real yamux streams: one longer than any limit must
		// break its stream; ones just under the 64 MiB limit, of which only
		// a few bytes come, must not make the agent allocate 64 MiB each.
		sess := rpcSession(t, n.ServerAddr())
		over := openStream(t, sess)
		if _, err := over.Write([]byte{0xff, 0xff, 0xff, 0xff}); err != nil {
			t.Fatal(err)
		}
		if err := closedBy(over, 10*time.Second); err != nil {
			t.Errorf("stream with a 4 GiB frame header: %v", err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const held = 8
		for range held {
			s := openStream(t, sess)
			var frame [14]byte
			binary.BigEndian.PutUint32(frame[:], 64<<20-1)
			if _, err := s.Write(frame[:]); err != nil {
				t.Fatal(err)
			}
		}
		// The window in which the server reads what it was sent (a few
		// bytes per stream) is the measurement.
		time.Sleep(time.Second)
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
			t.Errorf("%d streams announcing 64 MiB frames and sending 10 bytes made the process allocate %d MiB; want it to allocate by what arrives", held, grew>>20)
		}
		healthy(t)
	})

	t.Run("silence", func(t *testing.T) {
		var conns []net.Conn
		silent := []wireTarget{targets[0], targets[2], targets[4], targets[6], targets[8]}
		for _, tg := range silent {
			conn, err := net.Dial("tcp", tg.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conns = append(conns, conn)
		}
		for i, conn := range conns {
			if err := closedBy(conn, 15*time.Second); err != nil {
				t.Errorf("%s: a connection that sends nothing: %v", silent[i].name, err)
			}
		}
		healthy(t)
	})
}

// send writes data to tg on a new connection (TCP) or as one datagram
// (UDP), then drops it.
func send(t *testing.T, tg wireTarget, data []byte) {
	t.Helper()
	conn, err := net.DialTimeout(tg.network, tg.addr, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", tg.name, tg.addr, err)
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write(data) // the agent may already have hung up
}

// closedBy waits until the peer closes conn, or fails after max.
func closedBy(conn net.Conn, max time.Duration) error {
	_ = conn.SetReadDeadline(time.Now().Add(max))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open after %s", max)
	}
	return nil
}

// rpcSession opens a yamux session to a server port, as an agent would.
func rpcSession(t *testing.T, addr string) rpc.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := rpc.DialProto(ctx, addr, rpc.ProtoMux)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := rpc.NewYamuxClient(conn, rpc.YamuxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

func openStream(t *testing.T, sess rpc.Session) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := sess.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
