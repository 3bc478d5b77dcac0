package lan

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrEncryptionMismatch is wrapped by Join's error when the pool at an
// address encrypts gossip with another key, or one of the two pools encrypts
// and the other does not.
var ErrEncryptionMismatch = errors.New("gossip encryption mismatch")

// ErrLabelMismatch is matched (errors.Is) by a *LabelMismatchError: a Join
// reached a gossip pool whose label differs from this pool's (Config.Label).
var ErrLabelMismatch = errors.New("gossip label mismatch")

// LabelMismatchError reports a Join aimed at a gossip port of another kind:
// the pool there uses another label than this one (Config.Label), so its
// members drop everything this pool sends. The classic cause is a LAN port
// (8301) given where a WAN port (8302) was meant, or the reverse. Pools with
// different labels never merge.
type LabelMismatchError struct {
	// Addr is the address ("host:port") that refused the label.
	Addr string
	// Label is this pool's label ("" for none).
	Label string
}

// Error says, in one line, that the address is a gossip port of another
// kind. Join's error already names the address, so this does not repeat it.
func (e *LabelMismatchError) Error() string {
	what := fmt.Sprintf("label %q", e.Label)
	if e.Label == "" {
		what = "unlabelled gossip"
	}
	return fmt.Sprintf("gossip port of another kind: it refused %s (a LAN gossip port given for a WAN one, or the reverse?)", what)
}

// Is makes errors.Is(err, ErrLabelMismatch) true.
func (e *LabelMismatchError) Is(target error) bool { return target == ErrLabelMismatch }

// encryptionMismatchTexts are memberlist's errors (text only) for a stream
// that one side cannot decrypt or expected encrypted. TestJoinEncryption
// pins them.
var encryptionMismatchTexts = []string{
	"no installed keys could decrypt the message",
	"remote state is encrypted and encryption is not configured",
	"encryption is configured but remote state is not encrypted",
}

// encryptionMismatch reports whether a flattened join error is one of
// encryptionMismatchTexts.
func encryptionMismatch(err error) bool {
	msg := err.Error()
	for _, t := range encryptionMismatchTexts {
		if strings.Contains(msg, t) {
			return true
		}
	}
	return false
}

// joinError explains why joining addr failed: a refusal by Config.Merge
// (refusals is the guard's count before the attempt), an encryption or label
// mismatch, or else memberlist's error on one line.
func (p *Pool) joinError(addr string, err error, refusals uint64) error {
	if p.guard != nil {
		if r := p.guard.refusalIn(err.Error(), refusals); r != nil {
			return fmt.Errorf("members refused: %w", r)
		}
	}
	flat := flatten(err)
	if encryptionMismatch(flat) {
		return fmt.Errorf("%w: %v (every member of a pool needs the same encryption key)", ErrEncryptionMismatch, flat)
	}
	if closedByPeer(flat) && probeLabel(addr, p.cfg.Label, min(p.cfg.Timings.TCPTimeout, labelProbeWait)) {
		return &LabelMismatchError{Addr: addr, Label: p.cfg.Label}
	}
	return flat
}

// labelProbeWait bounds the check of a suspected label mismatch: a
// mismatched remote drops the stream one round trip after it was opened.
const labelProbeWait = 2 * time.Second

// closedByPeer reports whether a join error (memberlist reports it as text
// only) says the remote closed the stream without answering. That is all
// memberlist says on a label mismatch: the remote drops the stream after
// reading its label, and the joiner reads EOF (or a reset, when the remote
// closed with our state unread). TestJoinLabelMismatch pins it.
func closedByPeer(err error) bool {
	msg := err.Error()
	return strings.HasSuffix(msg, "EOF") || strings.Contains(msg, syscall.ECONNRESET.Error())
}

// probeLabel tells whether the gossip port at addr refuses label. A stream
// is closed without answer for other reasons too (a remote shutting down, a
// port that is no gossip port at all), so the guess from closedByPeer is
// checked: a stream carrying only the label header is dropped at once by a
// member with another label, while one with the same label waits (until its
// TCP timeout) for the message that follows. With no label there is no
// header, so one byte of a ping stands in for it; a member without a label
// waits for the rest of the ping. It waits at most wait.
func probeLabel(addr, label string, wait time.Duration) bool {
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return false
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(wait)); err != nil {
		return false
	}
	if label != "" {
		err = memberlist.AddLabelHeaderToStream(conn, label)
	} else {
		_, err = conn.Write([]byte{0}) // memberlist's pingMsg type byte
	}
	if err != nil {
		return false
	}
	var b [1]byte
	_, err = conn.Read(b[:])
	// Read then closed without a byte in answer: refused. memberlist reads
	// the whole header before it drops the stream, so the close is a clean
	// EOF; a reset means the remote closed without reading what we sent,
	// which a label check does not do. Data (an error message) or a timeout
	// (waiting for more): the label was accepted.
	return errors.Is(err, io.EOF)
}
