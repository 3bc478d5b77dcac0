package rpc

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 3, 1, 12, 30, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		in   any
		out  func() any // new pointer to decode into
	}{
		{"struct with time", &echoArgs{Msg: "hi", N: 3, When: when, Data: []byte{0, 1, 2}}, func() any { return new(echoArgs) }},
		{"string", ptr("ünïcode"), func() any { return new(string) }},
		{"int64", ptr(int64(-1 << 40)), func() any { return new(int64) }},
		{"map", &map[string]int{"a": 1, "b": 2}, func() any { return new(map[string]int) }},
		{"slice", &[]string{"x", "", "z"}, func() any { return new([]string) }},
		{"time", &when, func() any { return new(time.Time) }},
		{"nil", nil, func() any { return new(*echoArgs) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Marshal(tc.in)
			if err != nil {
				t.Fatalf("Marshal(%v) = %v", tc.in, err)
			}
			got := tc.out()
			if err := Unmarshal(b, got); err != nil {
				t.Fatalf("Unmarshal(%x) = %v", b, err)
			}
			want := tc.in
			if want == nil {
				want = tc.out()
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Unmarshal(Marshal(%v)) = %v, want %v", tc.in, got, want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestMarshalInterfaceDecoding(t *testing.T) {
	t.Parallel()
	// Schema-less decoding must give JSON-friendly values: strings, not
	// []byte, and map[string]any, not map[any]any.
	b, err := Marshal(map[string]any{"name": "web", "meta": map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	m, ok := got.(map[string]any)
	if !ok {
		t.Fatalf("Unmarshal into any = %T, want map[string]any", got)
	}
	if s, ok := m["name"].(string); !ok || s != "web" {
		t.Errorf("m[%q] = %#v, want %q", "name", m["name"], "web")
	}
	if _, ok := m["meta"].(map[string]any); !ok {
		t.Errorf("m[%q] = %T, want map[string]any", "meta", m["meta"])
	}
}

func TestUnmarshalInvalid(t *testing.T) {
	t.Parallel()
	if err := Unmarshal([]byte{0xc1}, new(int)); err == nil {
		t.Errorf("Unmarshal(0xc1) = nil error, want one")
	}
}

func TestAppendEncodeKeepsPrefix(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 5000)
	tests := []struct {
		name    string
		buf     []byte
		value   string
		inPlace bool
	}{
		{"room in place", append(make([]byte, 0, 64), "head"...), "v", true},
		{"must grow", append(make([]byte, 0, 8), "head"...), big, false},
		{"nil buffer", nil, "v", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := string(tc.buf)
			buf := tc.buf
			if err := appendEncode(&buf, tc.value); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(buf), prefix) {
				t.Fatalf("appendEncode lost prefix %q: %q", prefix, buf[:min(len(buf), 8)])
			}
			var got string
			if err := Unmarshal(buf[len(prefix):], &got); err != nil || got != tc.value {
				t.Errorf("decode after appendEncode = %.10q, %v, want %.10q", got, err, tc.value)
			}
			if tc.inPlace && &buf[0] != &tc.buf[:1][0] {
				t.Errorf("appendEncode reallocated although the buffer had room")
			}
		})
	}
}

func TestEncoderDecoderStream(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	enc := NewEncoder(&b)
	for i := range 3 {
		if err := enc.Encode(&echoArgs{Msg: fmt.Sprint(i), N: i}); err != nil {
			t.Fatal(err)
		}
	}
	dec := NewDecoder(&b)
	for i := range 3 {
		var got echoArgs
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("Decode #%d = %v", i, err)
		}
		if got.N != i || got.Msg != fmt.Sprint(i) {
			t.Errorf("Decode #%d = %+v, want N=%d", i, got, i)
		}
	}
}

func TestWireStr(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := strings.Repeat("a", n)
			b := appendStr(nil, s)
			b = appendInt64(b, -42)
			got, rest, err := readStr(b)
			if err != nil || string(got) != s {
				t.Fatalf("readStr(appendStr(%d bytes)) = %d bytes, %v", n, len(got), err)
			}
			v, rest, err := readInt64(rest)
			if err != nil || v != -42 || len(rest) != 0 {
				t.Errorf("readInt64 = %d, %d left, %v, want -42, 0, nil", v, len(rest), err)
			}
			// The codec must read our hand-written str the same way.
			var viaCodec string
			if err := Unmarshal(appendStr(nil, s), &viaCodec); err != nil || viaCodec != s {
				t.Errorf("Unmarshal(appendStr(%d bytes)) = %d bytes, %v", n, len(viaCodec), err)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not a str", []byte{0x01}},
		{"short str", []byte{0xa5, 'a'}},
		{"str8 without length", []byte{0xd9}},
		{"no timeout", appendStr(nil, "M")},
		{"short timeout", append(appendStr(nil, "M"), 0xd3, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if m, _, _, err := parseRequest(tc.in); !errors.Is(err, errMalformed) {
				t.Errorf("parseRequest(%x) = %q, %v, want errMalformed", tc.in, m, err)
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(appendInt64(appendStr(nil, "Catalog.Register"), 5e9))
	f.Add([]byte{0xdb, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		method, timeout, body, err := parseRequest(b)
		if err != nil {
			return
		}
		again := appendInt64(appendStr(nil, string(method)), timeout)
		again = append(again, body...)
		m2, t2, b2, err := parseRequest(again)
		if err != nil || string(m2) != string(method) || t2 != timeout || !bytes.Equal(b2, body) {
			t.Errorf("parseRequest(re-encoded %x) = %q, %d, %x, %v", again, m2, t2, b2, err)
		}
	})
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same code", &Error{Code: "no_leader", Message: "other text"}, errNoLeader, true},
		{"wrapped", fmt.Errorf("forward: %w", &Error{Code: "no_leader"}), errNoLeader, true},
		{"other code", &Error{Code: "not_found"}, errNoLeader, false},
		{"empty codes", &Error{Message: "a"}, &Error{Message: "a"}, false},
		{"not an Error", errors.New("no_leader"), errNoLeader, false},
		{"Error vs plain", &Error{Code: "x"}, ErrTransport, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", tc.err, tc.target, got, tc.want)
			}
		})
	}
}
