package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
)

// A snapshot archive is what `meridian snapshot save` writes and
// /v1/snapshot answers: one stream, written and read front to back, never
// held whole in memory:
//
//	MERIDIAN-SNAPSHOT 1\n          the magic line and the archive version
//	{"Index":...,"Size":...}\n     the ArchiveMeta, one JSON line
//	Size bytes                     the Raft snapshot of the FSM (fsm.go's format)
//	SHA256 <hex>\n                 the SHA-256 of every byte before this line
//
// The checksum makes a cut-short or altered archive fail before anything
// is restored from it.
const (
	archiveMagic   = "MERIDIAN-SNAPSHOT"
	archiveVersion = 1
	// archiveLineMax bounds the magic and meta lines, so a stream that is
	// not an archive is refused without reading it all.
	archiveLineMax = 64 << 10
)

// ErrBadArchive means a stream is not a snapshot archive this version can
// restore: not one at all, from a newer version, cut short or altered. The
// error wrapping it says which.
var ErrBadArchive = errors.New("bad snapshot archive")

// ArchiveMeta describes a snapshot archive.
type ArchiveMeta struct {
	// ID is the Raft snapshot's ID.
	ID string
	// Index and Term are the Raft index and term of the last entry the
	// snapshot includes.
	Index, Term uint64
	// Size is the length in bytes of the state that follows the meta line.
	Size int64
	// Datacenter is where the snapshot was taken.
	Datacenter string
	// Created is when it was taken.
	Created time.Time
}

// archiveReader streams an archive: the header lines, the state, then the
// checksum of both.
type archiveReader struct {
	head    io.Reader
	state   io.Reader
	closer  io.Closer
	h       hash.Hash
	trailer io.Reader
}

// newArchiveReader wraps a Raft snapshot's state stream (size bytes,
// closed by Close) as an archive.
func newArchiveReader(meta ArchiveMeta, state io.ReadCloser) (io.ReadCloser, error) {
	m, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot meta: %w", err)
	}
	head := fmt.Sprintf("%s %d\n%s\n", archiveMagic, archiveVersion, m)
	h := sha256.New()
	h.Write([]byte(head))
	return &archiveReader{
		head:   strings.NewReader(head),
		state:  io.TeeReader(io.LimitReader(state, meta.Size), h),
		closer: state,
		h:      h,
	}, nil
}

func (a *archiveReader) Read(p []byte) (int, error) {
	if a.head != nil {
		n, err := a.head.Read(p)
		if err == io.EOF {
			a.head, err = nil, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	if a.state != nil {
		n, err := a.state.Read(p)
		if err == io.EOF {
			a.state, err = nil, nil
			a.trailer = strings.NewReader("SHA256 " + hex.EncodeToString(a.h.Sum(nil)) + "\n")
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return a.trailer.Read(p)
}

func (a *archiveReader) Close() error { return a.closer.Close() }

// ArchiveState reads an archive: Meta first, then the state through Read;
// at the state's end Read checks the trailer and fails with ErrBadArchive
// if the archive was cut short or does not match its checksum, so a reader
// that reached io.EOF has read a whole, intact archive.
type ArchiveState struct {
	Meta ArchiveMeta
	r    *bufio.Reader
	h    hash.Hash
	left int64
	done bool
}

// OpenArchive reads an archive's header lines from r.
func OpenArchive(r io.Reader) (*ArchiveState, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	h := sha256.New()
	magic, err := readLine(br, h)
	if err != nil {
		return nil, fmt.Errorf("%w: not a meridian snapshot (%v)", ErrBadArchive, err)
	}
	name, ver, _ := strings.Cut(magic, " ")
	if name != archiveMagic {
		return nil, fmt.Errorf("%w: not a meridian snapshot (it starts %q)", ErrBadArchive, trimForError(magic))
	}
	if ver != fmt.Sprint(archiveVersion) {
		return nil, fmt.Errorf("%w: archive version %q is not %d: it was written by a newer version, restore it with that", ErrBadArchive, trimForError(ver), archiveVersion)
	}
	line, err := readLine(br, h)
	if err != nil {
		return nil, fmt.Errorf("%w: cut short in its header (%v)", ErrBadArchive, err)
	}
	a := &ArchiveState{r: br, h: h}
	if err := json.Unmarshal([]byte(line), &a.Meta); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadArchive, err)
	}
	if a.Meta.Size < 0 {
		return nil, fmt.Errorf("%w: header gives a negative size", ErrBadArchive)
	}
	a.left = a.Meta.Size
	return a, nil
}

// readLine reads one line of at most archiveLineMax bytes, hashing it with
// its newline.
func readLine(br *bufio.Reader, h hash.Hash) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > archiveLineMax {
			return "", fmt.Errorf("line longer than %d bytes", archiveLineMax)
		}
		if err == nil {
			h.Write(b)
			return strings.TrimSuffix(string(b), "\n"), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
}

func trimForError(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// Read reads the state; see ArchiveState.
func (a *ArchiveState) Read(p []byte) (int, error) {
	if a.left == 0 {
		if err := a.verify(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > a.left {
		p = p[:a.left]
	}
	n, err := a.r.Read(p)
	a.h.Write(p[:n])
	a.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if a.left > 0 {
			return n, fmt.Errorf("%w: cut short: %d of %d state bytes missing", ErrBadArchive, a.left, a.Meta.Size)
		}
		err = nil
	}
	return n, err
}

func (a *ArchiveState) verify() error {
	if a.done {
		return nil
	}
	want := hex.EncodeToString(a.h.Sum(nil))
	line, err := readLine(a.r, sha256.New())
	if err != nil {
		return fmt.Errorf("%w: cut short before its checksum (%v)", ErrBadArchive, err)
	}
	if got, ok := strings.CutPrefix(line, "SHA256 "); !ok || got != want {
		return fmt.Errorf("%w: checksum mismatch: the archive was altered or damaged", ErrBadArchive)
	}
	if _, err := a.r.ReadByte(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the checksum", ErrBadArchive)
	}
	a.done = true
	return nil
}

// TableCount is how many rows of one kind a snapshot holds.
type TableCount struct {
	Table string
	Count int
}

// InspectArchive reads a whole archive from r, verifying it, and reports
// its meta and per-table row counts (`meridian snapshot inspect`).
func InspectArchive(r io.Reader) (ArchiveMeta, []TableCount, error) {
	a, err := OpenArchive(r)
	if err != nil {
		return ArchiveMeta{}, nil, err
	}
	counts, err := scanState(a)
	if err != nil {
		return a.Meta, nil, err
	}
	// The state may end before its Size says; the rest must still be
	// read for the checksum.
	if _, err := io.Copy(io.Discard, a); err != nil {
		return a.Meta, nil, err
	}
	return a.Meta, counts, nil
}

// formatCounts is a compact one-line form of counts, for logs.
func formatCounts(counts []TableCount) string {
	var b bytes.Buffer
	for i, c := range counts {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", c.Table, c.Count)
	}
	return b.String()
}
