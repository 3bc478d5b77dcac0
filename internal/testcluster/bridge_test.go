package testcluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer accepts connections on loopback and echoes what they send.
func echoServer(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln
}

func dialEcho(t *testing.T, e *Endpoint, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := e.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("Dial(%s) = %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads it back within timeout.
func roundTrip(c net.Conn, msg []byte, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs: " + string(got))
	}
	return nil
}

func TestBridgeConnCutHoldsBytesAndHealDeliversThem(t *testing.T) {
	b := NewBridge()
	ln := echoServer(t)
	b.Register("b", ln.Addr().String())
	c := dialEcho(t, b.Endpoint("a"), ln.Addr().String())
	if err := roundTrip(c, []byte("before"), 2*time.Second); err != nil {
		t.Fatalf("before the cut: %v", err)
	}

	b.Cut("a", "b")
	err := roundTrip(c, []byte("lost?"), 100*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write across a cut = %v, want a deadline error", err)
	}
	// The way back alone cut: the write goes, its echo is held.
	b.Heal()
	b.Set("b", "a", Fault{Blackhole: true})
	if err := roundTrip(c, []byte("held"), 150*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read across a cut = %v, want a deadline error", err)
	}
	b.Heal()
	// What was held arrives, in order; the stream is whole.
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, len("held"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "held" {
		t.Fatalf("after heal read %q, %v; want %q", got, err, "held")
	}
	if err := roundTrip(c, []byte("after"), 2*time.Second); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func TestBridgeConnCloseUnblocksCutWrite(t *testing.T) {
	b := NewBridge()
	ln := echoServer(t)
	b.Register("b", ln.Addr().String())
	c := dialEcho(t, b.Endpoint("a"), ln.Addr().String())
	b.Cut("a", "b")
	done := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("x"))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the write reach the cut; the result does not depend on it
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("cut write after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cut write still blocked 2s after Close")
	}
}

func TestBridgeDialWaitsForHealOrContext(t *testing.T) {
	b := NewBridge()
	ln := echoServer(t)
	b.Register("b", ln.Addr().String())
	e := b.Endpoint("a")
	b.Cut("a", "b")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := e.Dial(ctx, "tcp", ln.Addr().String()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial across a cut = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Dial across a cut took %v, want about its 100ms context", d)
	}

	// A dial waiting on the cut goes through once it heals.
	time.AfterFunc(100*time.Millisecond, b.Heal)
	c := dialEcho(t, e, ln.Addr().String())
	if err := roundTrip(c, []byte("healed"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// Other agents' paths and unknown addresses are never touched.
	b.Cut("a", "c")
	other := echoServer(t)
	c = dialEcho(t, e, other.Addr().String())
	if err := roundTrip(c, []byte("unknown"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	c = dialEcho(t, e, ln.Addr().String())
	if err := roundTrip(c, []byte("b is not c"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestBridgeConnDelay(t *testing.T) {
	b := NewBridge()
	ln := echoServer(t)
	b.Register("b", ln.Addr().String())
	c := dialEcho(t, b.Endpoint("a"), ln.Addr().String())
	b.SetBoth("a", "b", Fault{Delay: 100 * time.Millisecond})
	start := time.Now()
	if err := roundTrip(c, []byte("slow"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("round trip with 100ms each way took %v, want at least 200ms", d)
	}
}

// udpPair is agent a's bridged socket and agent b's plain one.
func udpPair(t *testing.T, b *Bridge) (net.PacketConn, net.PacketConn) {
	t.Helper()
	from, err := b.Endpoint("a").ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { from.Close() })
	to, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { to.Close() })
	b.Register("b", to.LocalAddr().String())
	return from, to
}

// received reads one datagram within timeout.
func received(pc net.PacketConn, timeout time.Duration) (string, time.Duration, error) {
	start := time.Now()
	pc.SetReadDeadline(start.Add(timeout))
	buf := make([]byte, 64)
	n, _, err := pc.ReadFrom(buf)
	return string(buf[:n]), time.Since(start), err
}

func TestBridgePacketConn(t *testing.T) {
	tests := []struct {
		name     string
		fault    Fault
		want     string // "" when dropped
		minDelay time.Duration
	}{
		{"no fault", Fault{}, "msg", 0},
		{"blackhole", Fault{Blackhole: true}, "", 0},
		{"all lost", Fault{Loss: 1}, "", 0},
		{"delayed", Fault{Delay: 100 * time.Millisecond}, "msg", 100 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBridge()
			from, to := udpPair(t, b)
			b.Set("a", "b", tc.fault)
			if _, err := from.WriteTo([]byte("msg"), to.LocalAddr()); err != nil {
				t.Fatalf("WriteTo = %v", err)
			}
			got, took, err := received(to, 500*time.Millisecond)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("datagram %q arrived through %+v", got, tc.fault)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("received %q, %v; want %q", got, err, tc.want)
			}
			if took < tc.minDelay {
				t.Fatalf("arrived after %v, want at least %v", took, tc.minDelay)
			}
		})
	}
}

func TestBridgeRegistersOwnSocketsForReplies(t *testing.T) {
	b := NewBridge()
	// b's bridged socket replying to a socket a opened through the bridge:
	// the reply is a's, so a cut drops it.
	a, err := b.Endpoint("a").ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	bs, err := b.Endpoint("b").ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	b.Partition([]string{"a"}, []string{"b"})
	bs.WriteTo([]byte("reply"), a.LocalAddr())
	if got, _, err := received(a, 200*time.Millisecond); err == nil {
		t.Fatalf("reply %q crossed the partition", got)
	}
	b.Heal()
	bs.WriteTo([]byte("reply"), a.LocalAddr())
	if got, _, err := received(a, 2*time.Second); err != nil || got != "reply" {
		t.Fatalf("after heal received %q, %v", got, err)
	}
}
