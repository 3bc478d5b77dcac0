package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
)

// scanState reads a state stream (fsm.go's format) through to its end
// without restoring it: it checks the version, that every section is one
// this version restores and that every value is whole msgpack, and counts
// each section's rows. Each section opens with a header of a Format, a
// Version and row counts (catalog and kvstore's snapshot headers), and the
// counted rows follow. It parses the msgpack itself and skips each row
// without decoding it, so a million rows cost no allocation (decoding
// them into interface values took longer than the restore itself).
func scanState(r io.Reader) ([]TableCount, error) {
	sc := &msgpackScanner{r: bufio.NewReaderSize(r, 256<<10)}
	version, err := sc.readInt()
	if err != nil {
		return nil, fmt.Errorf("%w: state header: %v", ErrBadArchive, err)
	}
	if version != snapshotVersion {
		return nil, fmt.Errorf("%w: state version %d is not %d", ErrBadArchive, version, snapshotVersion)
	}
	known := map[string]bool{}
	for _, s := range snapshotSections() {
		known[s.name] = true
	}
	var counts []TableCount
	for {
		name, err := sc.readString()
		if err != nil {
			return nil, fmt.Errorf("%w: state section name: %v", ErrBadArchive, err)
		}
		if name == "" {
			return counts, nil
		}
		if !known[name] {
			return nil, fmt.Errorf("%w: state section %q is unknown: it was written by a newer version", ErrBadArchive, name)
		}
		header, err := sc.readHeader()
		if err != nil {
			return nil, fmt.Errorf("%w: %s header: %v", ErrBadArchive, name, err)
		}
		fields := make([]string, 0, len(header))
		for k := range header {
			fields = append(fields, k)
		}
		sort.Strings(fields)
		rows := 0
		for _, k := range fields {
			if k == "Format" || k == "Version" {
				continue
			}
			n := header[k]
			if n < 0 {
				return nil, fmt.Errorf("%w: %s header field %s is not a count", ErrBadArchive, name, k)
			}
			rows += int(n)
			counts = append(counts, TableCount{Table: name + "." + k, Count: int(n)})
		}
		for i := 0; i < rows; i++ {
			if err := sc.skip(0); err != nil {
				return nil, fmt.Errorf("%w: %s row %d of %d: %v", ErrBadArchive, name, i+1, rows, err)
			}
		}
	}
}

// msgpackScanner reads msgpack values from a stream without decoding
// them into Go values.
type msgpackScanner struct {
	r *bufio.Reader
}

// scanDepthMax bounds how deeply maps and arrays may nest in a row.
const scanDepthMax = 64

var errNotCount = errors.New("not a count")

// head reads a value's first byte and the length that follows it (of a
// string, binary, extension, array or map; the size of a number), and says
// which kind of value it opens.
func (sc *msgpackScanner) head() (kind byte, n uint64, err error) {
	b, err := sc.r.ReadByte()
	if err != nil {
		return 0, 0, eofIsShort(err)
	}
	switch {
	case b <= 0x7f || b >= 0xe0:
		return 'i', 0, nil // a fixint: no bytes follow
	case b <= 0x8f:
		return 'm', uint64(b & 0x0f), nil
	case b <= 0x9f:
		return 'a', uint64(b & 0x0f), nil
	case b <= 0xbf:
		return 's', uint64(b & 0x1f), nil
	}
	var size int // bytes of the length (or of the number) that follow
	switch b {
	case 0xc0, 0xc2, 0xc3:
		return 'n', 0, nil
	case 0xc4, 0xd9, 0xc7, 0xcc, 0xd0:
		size = 1
	case 0xc5, 0xda, 0xc8, 0xcd, 0xd1, 0xdc, 0xde:
		size = 2
	case 0xc6, 0xdb, 0xc9, 0xce, 0xd2, 0xdd, 0xdf, 0xca:
		size = 4
	case 0xcf, 0xd3, 0xcb:
		size = 8
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: a type byte and 1-16 bytes
		return 'x', 1 + 1<<(b-0xd4), nil
	default:
		return 0, 0, fmt.Errorf("byte 0x%02x opens no msgpack value", b)
	}
	var buf [8]byte
	if _, err := io.ReadFull(sc.r, buf[8-size:]); err != nil {
		return 0, 0, eofIsShort(err)
	}
	v := binary.BigEndian.Uint64(buf[:])
	switch b {
	case 0xcc, 0xcd, 0xce, 0xcf:
		return 'u', v, nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		// Sign-extend from size bytes.
		shift := 64 - 8*size
		return 'i', uint64(int64(v<<shift) >> shift), nil
	case 0xca, 0xcb:
		return 'f', 0, nil
	case 0xc4, 0xc5, 0xc6:
		return 'b', v, nil
	case 0xd9, 0xda, 0xdb:
		return 's', v, nil
	case 0xc7, 0xc8, 0xc9:
		return 'x', v + 1, nil // and the type byte
	case 0xdc, 0xdd:
		return 'a', v, nil
	}
	return 'm', v, nil
}

// skip reads one whole value.
func (sc *msgpackScanner) skip(depth int) error {
	kind, n, err := sc.head()
	if err != nil {
		return err
	}
	return sc.skipBody(kind, n, depth)
}

// skipBody reads the rest of a value whose head said kind and n.
func (sc *msgpackScanner) skipBody(kind byte, n uint64, depth int) error {
	switch kind {
	case 's', 'b', 'x':
		return sc.discard(n)
	case 'a', 'm':
		if depth >= scanDepthMax {
			return fmt.Errorf("values nested deeper than %d", scanDepthMax)
		}
		if kind == 'm' {
			if n > math.MaxUint64/2 {
				return errors.New("map too long")
			}
			n *= 2
		}
		for range n {
			if err := sc.skip(depth + 1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (sc *msgpackScanner) discard(n uint64) error {
	for n > 0 {
		step := min(n, 1<<30)
		if _, err := sc.r.Discard(int(step)); err != nil {
			return eofIsShort(err)
		}
		n -= step
	}
	return nil
}

// readInt reads an integer that fits an int.
func (sc *msgpackScanner) readInt() (int64, error) {
	b, err := sc.r.Peek(1)
	if err != nil {
		return 0, eofIsShort(err)
	}
	kind, n, err := sc.head()
	if err != nil {
		return 0, err
	}
	switch {
	case kind == 'i' && (b[0] <= 0x7f || b[0] >= 0xe0):
		return int64(int8(b[0])), nil
	case kind == 'i':
		return int64(n), nil
	case kind == 'u' && n <= math.MaxInt32:
		return int64(n), nil
	}
	if err := sc.skipBody(kind, n, 0); err != nil {
		return 0, err
	}
	return 0, errNotCount
}

// readString reads a string (or binary) of at most archiveLineMax bytes.
func (sc *msgpackScanner) readString() (string, error) {
	kind, n, err := sc.head()
	if err != nil {
		return "", err
	}
	if kind != 's' && kind != 'b' {
		return "", errors.New("not a string")
	}
	if n > archiveLineMax {
		return "", fmt.Errorf("string longer than %d bytes", archiveLineMax)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(sc.r, buf); err != nil {
		return "", eofIsShort(err)
	}
	return string(buf), nil
}

// readHeader reads a section header: a map of a string Format and of
// counts (Version among them). A count that is not a non-negative integer
// is kept as -1.
func (sc *msgpackScanner) readHeader() (map[string]int64, error) {
	kind, n, err := sc.head()
	if err != nil {
		return nil, err
	}
	if kind != 'm' || n > 64 {
		return nil, errors.New("not a map of at most 64 fields")
	}
	header := make(map[string]int64, n)
	for range n {
		k, err := sc.readString()
		if err != nil {
			return nil, fmt.Errorf("field name: %v", err)
		}
		if k == "Format" {
			if _, err := sc.readString(); err != nil {
				return nil, fmt.Errorf("field Format: %v", err)
			}
			header[k] = 0
			continue
		}
		v, err := sc.readInt()
		if errors.Is(err, errNotCount) {
			v = -1
		} else if err != nil {
			return nil, fmt.Errorf("field %s: %v", k, err)
		}
		header[k] = v
	}
	return header, nil
}

func eofIsShort(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
