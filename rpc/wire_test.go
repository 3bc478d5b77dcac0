package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestReadFrameAllocatesByArrival checks that a frame header announcing
// 64 MiB followed by a few bytes grows the buffer by what arrived, not by
// what was announced.
func TestReadFrameAllocatesByArrival(t *testing.T) {
	t.Parallel()
	var in bytes.Buffer
	_ = binary.Write(&in, binary.BigEndian, uint32(64<<20-1))
	in.WriteString("ten bytes!")
	buf, err := readFrame(&in, nil, 64<<20)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("readFrame(truncated) error = %v, want ErrUnexpectedEOF", err)
	}
	if cap(buf) > frameChunk {
		t.Errorf("readFrame of a frame announcing 64 MiB with 10 bytes grew the buffer to %d bytes, want at most %d", cap(buf), frameChunk)
	}

	// A whole frame larger than frameChunk still reads back intact.
	want := bytes.Repeat([]byte("0123456789abcdef"), 3*frameChunk/16+7)
	in.Reset()
	_ = binary.Write(&in, binary.BigEndian, uint32(len(want)))
	in.Write(want)
	got, err := readFrame(&in, make([]byte, 0, 10), len(want))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("readFrame(%d bytes) = %d bytes, %v", len(want), len(got), err)
	}
	if cap(got) > 2*len(want)+frameChunk {
		t.Errorf("readFrame(%d bytes) used a %d-byte buffer", len(want), cap(got))
	}
}

// TestFrameTimeout checks that a stream which begins a request and stalls
// is broken after FrameTimeout, while a stream that idles between requests
// is kept.
func TestFrameTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ServerConfig{FrameTimeout: 200 * time.Millisecond})
	registerTestHandlers(srv)
	var wg sync.WaitGroup
	wg.Go(func() { srv.ServeListener(ln) })
	t.Cleanup(func() { srv.Shutdown(); wg.Wait() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sess, err := NewYamuxClient(conn, YamuxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	open := func() net.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := sess.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	stalled := open()
	var hdr [frameHeaderLen]byte
	binary.BigEndian.PutUint32(hdr[:], 100)
	if _, err := stalled.Write(append(hdr[:], "only some"...)); err != nil {
		t.Fatal(err)
	}
	_ = stalled.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, stalled); err != nil {
		t.Errorf("stalled request: stream not closed by the server: %v", err)
	}

	idle := open()
	if _, err := idle.Write(nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // idling longer than FrameTimeout is the point
	req := startFrame(nil)
	req = appendStr(req, "Test.Echo")
	req = appendInt64(req, int64(5*time.Second))
	if err := appendEncode(&req, &echoArgs{Msg: "hi"}); err != nil {
		t.Fatal(err)
	}
	finishFrame(req)
	if _, err := idle.Write(req); err != nil {
		t.Fatal(err)
	}
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := readFrame(idle, nil, 1<<20)
	if err != nil {
		t.Fatalf("request after idling %s: %v", 500*time.Millisecond, err)
	}
	if code, msg, _, err := parseResponse(resp); err != nil || len(code) != 0 {
		t.Errorf("request after idling answered code %q %q, %v", code, msg, err)
	}
}

// FuzzReadFrame reads random bytes as a stream of frames: never a panic,
// never a payload over the limit, and a buffer grown only by what arrived.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x03, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 1 << 20
		r := bytes.NewReader(b)
		var buf []byte
		for {
			var err error
			buf, err = readFrame(r, buf, limit)
			if err != nil {
				break
			}
			if len(buf) > limit {
				t.Fatalf("readFrame returned %d bytes, limit %d", len(buf), limit)
			}
		}
		if cap(buf) > 2*len(b)+frameChunk {
			t.Fatalf("readFrame of %d input bytes grew its buffer to %d", len(b), cap(buf))
		}
	})
}

// fuzzArgs is a request with the shapes real arguments have: strings,
// bytes, lists, maps, nested structs and times.
type fuzzArgs struct {
	Datacenter string
	MinIndex   uint64
	Key        string
	Value      []byte
	Tags       []string
	Meta       map[string]string
	Nested     []struct {
		ID   string
		When time.Time
	}
}

// FuzzServerHandle answers random request payloads the way a stream does:
// never a panic, always a response frame that parses.
func FuzzServerHandle(f *testing.F) {
	req := appendInt64(appendStr(nil, "Fuzz.Args"), int64(time.Second))
	good := append([]byte(nil), req...)
	if err := appendEncode(&good, &fuzzArgs{Key: "k", Value: []byte("v"), Tags: []string{"a"}, Meta: map[string]string{"x": "y"}}); err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(append(append([]byte(nil), req...), 0xdd, 0xff, 0xff, 0xff, 0xff)) // an array of 4G elements
	f.Add(append(append([]byte(nil), req...), 0xdf, 0x7f, 0xff, 0xff, 0xff)) // a map of 2G entries
	f.Add(append(append([]byte(nil), req...), 0x81, 0xa3, 'K', 'e', 'y', 0xdb, 0xff, 0xff, 0xff, 0xf0))
	f.Add(appendInt64(appendStr(nil, "No.Such"), 0))
	srv := NewServer(ServerConfig{})
	Register(srv, "Fuzz.Args", func(_ context.Context, a *fuzzArgs, r *fuzzArgs) error {
		*r = *a
		return nil
	})
	f.Cleanup(srv.Shutdown)
	f.Fuzz(func(t *testing.T, payload []byte) {
		out := srv.handle(payload, nil)
		n, err := readFrameHeader(bytes.NewReader(out), len(out))
		if err != nil || n != len(out)-frameHeaderLen {
			t.Fatalf("handle(%x) built a bad frame: %v", payload, err)
		}
		if _, _, _, err := parseResponse(out[frameHeaderLen:]); err != nil {
			t.Fatalf("handle(%x) answered a response that does not parse: %v", payload, err)
		}
	})
}
