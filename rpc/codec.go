package rpc

import (
	"fmt"
	"io"
	"reflect"
	"sync"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// msgpackHandle is the one codec configuration of Meridian. It is set up
// once here and never changed afterwards (codec handles must not be mutated
// after first use), so sharing it is safe.
var msgpackHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	// Decode msgpack raw/str into string, not []byte, inside interface{}.
	h.RawToString = true
	// Write the newer spec: str8 and bin types, and extensions (time).
	h.WriteExt = true
	// Maps decoded into interface{} become map[string]any, which JSON can
	// encode.
	h.MapType = reflect.TypeFor[map[string]any]()
	// time.Time is the msgpack timestamp extension (TimeNotBuiltin false).
	h.TimeNotBuiltin = false
	return h
}()

// Pools of codec engines: creating one costs several allocations, resetting
// one costs none. The pools hold no state between uses, so they are safe to
// share between every Server, Pool and test.
var (
	encoderPool = sync.Pool{New: func() any {
		e := new(bytesEncoder)
		e.enc = codec.NewEncoderBytes(&e.out, msgpackHandle)
		return e
	}}
	decoderPool = sync.Pool{New: func() any { return codec.NewDecoderBytes(nil, msgpackHandle) }}
)

// bytesEncoder is a pooled encoder with the slice it writes to, so that
// handing the codec a pointer to that slice allocates nothing.
type bytesEncoder struct {
	enc *codec.Encoder
	out []byte
}

// Marshal encodes v as msgpack with Meridian's codec configuration.
func Marshal(v any) ([]byte, error) {
	var out []byte
	if err := appendEncode(&out, v); err != nil {
		return nil, err
	}
	return out, nil
}

// Unmarshal decodes the msgpack in b into v, which must be a non-nil
// pointer. Decoded values never alias b.
func Unmarshal(b []byte, v any) error {
	dec := decoderPool.Get().(*codec.Decoder)
	dec.ResetBytes(b)
	err := dec.Decode(v)
	dec.ResetBytes(noBytes) // keep no reference to b
	decoderPool.Put(dec)
	if err != nil {
		return fmt.Errorf("msgpack decode %T: %w", v, err)
	}
	return nil
}

// NewEncoder returns a msgpack encoder writing to w with Meridian's codec
// configuration. It is not safe for concurrent use.
func NewEncoder(w io.Writer) *codec.Encoder {
	return codec.NewEncoder(w, msgpackHandle)
}

// NewDecoder returns a msgpack decoder reading from r with Meridian's codec
// configuration. It is not safe for concurrent use, and it may read ahead of
// the value it decodes, so r should carry nothing else.
func NewDecoder(r io.Reader) *codec.Decoder {
	return codec.NewDecoder(r, msgpackHandle)
}

// appendEncode appends the msgpack encoding of v to *buf, keeping what *buf
// already holds (the codec itself always writes from index 0).
func appendEncode(buf *[]byte, v any) error {
	head := *buf
	n := len(head)
	e := encoderPool.Get().(*bytesEncoder)
	if head != nil {
		e.out = head[n:n:cap(head)]
	}
	e.enc.ResetBytes(&e.out)
	err := e.enc.Encode(v)
	tail := e.out
	e.out = nil // keep no reference to the caller's buffer
	encoderPool.Put(e)
	if err != nil {
		return fmt.Errorf("msgpack encode %T: %w", v, err)
	}
	switch {
	case n == 0:
		*buf = tail
	case cap(tail) == cap(head)-n:
		// Encoded in place, right after what head held.
		*buf = head[:n+len(tail)]
	default:
		// The encoder outgrew head's array; join the two.
		*buf = append(head, tail...)
	}
	return nil
}

// noBytes is what pooled decoders point at between uses. It is empty, so
// it is never read, and never written.
var noBytes = []byte{}
