package rpc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
)

func TestMux(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecordHandler()
	m := NewMux(ln, MuxConfig{Logger: slog.New(rec), FirstByteTimeout: 200 * time.Millisecond})
	raftLn, muxLn := m.Listener(ProtoRaft), m.Listener(ProtoMux)
	if got := m.Listener(ProtoRaft); got != raftLn {
		t.Errorf("Listener(ProtoRaft) twice = %p then %p, want the same", raftLn, got)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- m.Serve() }()
	t.Cleanup(func() { m.Close() })
	addr := ln.Addr().String()

	for _, l := range []net.Listener{raftLn, muxLn} {
		if l.Addr().String() != addr {
			t.Errorf("sub-listener Addr() = %v, want %v", l.Addr(), addr)
		}
	}

	// A silent connection and an unknown byte are both dropped, while the
	// two known protocols are served at the same time.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	unknown, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer unknown.Close()
	if _, err := unknown.Write([]byte{0x7f, 'x'}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		proto byte
		ln    net.Listener
	}{
		{"raft", ProtoRaft, raftLn},
		{"mux", ProtoMux, muxLn},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clients := make([]net.Conn, len(tests))
	for i, tc := range tests {
		c, err := DialProto(ctx, addr, tc.proto)
		if err != nil {
			t.Fatalf("DialProto(%q, %#x) = %v", addr, tc.proto, err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(tc.name)); err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.ln.Accept()
			if err != nil {
				t.Fatalf("Accept() = %v", err)
			}
			defer conn.Close()
			got := make([]byte, len(tc.name))
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(conn, got); err != nil {
				t.Fatalf("read after proto %#x: %v", tc.proto, err)
			}
			if string(got) != tc.name {
				t.Errorf("bytes after proto %#x = %q, want %q", tc.proto, got, tc.name)
			}
			// And the way back.
			if _, err := conn.Write([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			back := make([]byte, 2)
			clients[i].SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(clients[i], back); err != nil || string(back) != "ok" {
				t.Errorf("client read = %q, %v, want %q", back, err, "ok")
			}
		})
	}

	for _, tc := range []struct {
		name string
		conn net.Conn
		log  []string
	}{
		{"unknown byte", unknown, []string{"unknown first byte", "byte=0x7f", "peer=" + unknown.LocalAddr().String()}},
		{"silent", silent, []string{"before its first byte", "peer=" + silent.LocalAddr().String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			// EOF, or a reset when the server closed with unread bytes.
			n, err := tc.conn.Read(make([]byte, 1))
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("Read on dropped conn = %d, %v, want EOF or reset", n, err)
			}
			wait.Eventually(t, 5*time.Second, func() error {
				if _, ok := rec.find(tc.log...); !ok {
					return errors.New("no log line with " + tc.log[0])
				}
				return nil
			})
		})
	}

	if err := m.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	select {
	case err := <-serveErr:
		if err != nil {
			t.Errorf("Serve() = %v after Close, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	for _, tc := range tests {
		if c, err := tc.ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s Accept() after Close = %v, %v, want net.ErrClosed", tc.name, c, err)
		}
	}
}

func TestMuxUnregisteredProtoDropped(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(ln, MuxConfig{})
	m.Listener(ProtoMux)
	go m.Serve()
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Raft is a known byte but nobody asked for its listener.
	c, err := DialProto(ctx, ln.Addr().String(), ProtoRaft)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("Read on conn with unregistered proto = %d, %v, want EOF", n, err)
	}
}

func TestDialProtoCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := DialProto(ctx, "127.0.0.1:1", ProtoMux); err == nil {
		c.Close()
		t.Errorf("DialProto(cancelled ctx) = nil error, want one")
	}
}
