package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"time"
)

// frameHeaderLen is the size of the big-endian length before every frame.
const frameHeaderLen = 4

// errMalformed is wrapped by every error about a frame that does not parse.
var errMalformed = errors.New("malformed rpc frame")

// startFrame resets buf to hold a frame header placeholder.
func startFrame(buf []byte) []byte {
	return append(buf[:0], 0, 0, 0, 0)
}

// finishFrame writes the length of the frame's payload into its header.
func finishFrame(frame []byte) {
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-frameHeaderLen))
}

// frameChunk is the first step by which readFrame grows a buffer for a
// frame longer than the buffer; each step after doubles what was read.
const frameChunk = 64 << 10

// readFrame reads one frame from r into buf (grown as needed) and returns
// its payload. max bounds the payload length in bytes. The length in the
// header is the peer's word, so buf grows with the bytes that actually
// arrive (to at most twice them plus frameChunk), never by that word alone.
func readFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	n, err := readFrameHeader(r, max)
	if err != nil {
		return buf, err
	}
	return readFramePayload(r, buf, n)
}

// readFrameWithin is readFrame for a peer that may idle between frames
// but, once a frame has begun, must send the rest of it within timeout.
func readFrameWithin(c net.Conn, buf []byte, max int, timeout time.Duration) ([]byte, error) {
	n, err := readFrameHeader(c, max)
	if err != nil {
		return buf, err
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return buf, err
	}
	buf, err = readFramePayload(c, buf, n)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return buf, fmt.Errorf("frame of %d bytes not received within %s: %w", n, timeout, err)
	}
	if err != nil {
		return buf, err
	}
	return buf, c.SetReadDeadline(time.Time{})
}

func readFrameHeader(r io.Reader, max int) (int, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > max {
		return 0, fmt.Errorf("frame of %d bytes, limit %d: %w", n, max, ErrFrameTooLarge)
	}
	return n, nil
}

func readFramePayload(r io.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n {
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, unexpectedEOF(err)
	}
	buf = buf[:0]
	for len(buf) < n {
		step := min(n-len(buf), max(len(buf), frameChunk))
		buf = slices.Grow(buf, step)
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+step])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, unexpectedEOF(err)
		}
	}
	return buf, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendStr appends s as a msgpack str.
func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

// appendInt64 appends v as a msgpack int64 (always the 9-byte form).
func appendInt64(b []byte, v int64) []byte {
	b = append(b, 0xd3)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// readStr parses a msgpack str (or bin) at the start of b; the returned
// bytes alias b.
func readStr(b []byte) (s, rest []byte, err error) {
	if len(b) == 0 {
		return nil, nil, fmt.Errorf("want str, got end of frame: %w", errMalformed)
	}
	var n, h int
	switch c := b[0]; {
	case c&0xe0 == 0xa0:
		n, h = int(c&0x1f), 1
	case (c == 0xd9 || c == 0xc4) && len(b) >= 2:
		n, h = int(b[1]), 2
	case (c == 0xda || c == 0xc5) && len(b) >= 3:
		n, h = int(binary.BigEndian.Uint16(b[1:])), 3
	case (c == 0xdb || c == 0xc6) && len(b) >= 5:
		n, h = int(binary.BigEndian.Uint32(b[1:])), 5
	default:
		return nil, nil, fmt.Errorf("want str, got byte %#x: %w", c, errMalformed)
	}
	if len(b)-h < n {
		return nil, nil, fmt.Errorf("str of %d bytes in %d: %w", n, len(b)-h, errMalformed)
	}
	return b[h : h+n], b[h+n:], nil
}

// readInt64 parses the msgpack int64 written by appendInt64.
func readInt64(b []byte) (int64, []byte, error) {
	if len(b) < 9 || b[0] != 0xd3 {
		return 0, nil, fmt.Errorf("want int64: %w", errMalformed)
	}
	return int64(binary.BigEndian.Uint64(b[1:])), b[9:], nil
}

// parseRequest splits a request payload into method, timeout (ns) and body.
func parseRequest(p []byte) (method []byte, timeout int64, body []byte, err error) {
	method, p, err = readStr(p)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("request method: %w", err)
	}
	timeout, body, err = readInt64(p)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("request timeout: %w", err)
	}
	return method, timeout, body, nil
}

// parseResponse splits a response payload into error code, error message
// and body (the body is empty when the message is not).
func parseResponse(p []byte) (code, msg, body []byte, err error) {
	code, p, err = readStr(p)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("response code: %w", err)
	}
	msg, body, err = readStr(p)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("response message: %w", err)
	}
	return code, msg, body, nil
}
