package lan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/meridian/meridian/internal/ratelog"
)

// ErrNameConflict is matched (errors.Is) by a *NameConflictError: two
// members of the pool claim the same node name at different addresses.
var ErrNameConflict = errors.New("node name conflict")

// NameConflictError reports two members claiming one node name. The member
// known first keeps the name; gossip from the other is ignored by members
// that knew the first. The fix is to rename one of them.
type NameConflictError struct {
	// Node is the contested name.
	Node string
	// Addr is the address ("host:port") this pool knows Node at: its own
	// address when Local.
	Addr string
	// OtherAddr is the address of the other claimant.
	OtherAddr string
	// Local is true when Node is this pool's own name.
	Local bool
}

// Error describes the conflict in one line naming the node and both
// addresses.
func (e *NameConflictError) Error() string {
	if e.Local {
		return fmt.Sprintf("node name %q is also claimed by %s (this node is %s): node names must be unique",
			e.Node, e.OtherAddr, e.Addr)
	}
	return fmt.Sprintf("node name %q is claimed by both %s and %s: node names must be unique",
		e.Node, e.Addr, e.OtherAddr)
}

// Is makes errors.Is(err, ErrNameConflict) true.
func (e *NameConflictError) Is(target error) bool { return target == ErrNameConflict }

// conflictLine matches memberlist's log line for a name conflict, the only
// place the conflict surfaces: serf keeps memberlist's ConflictDelegate for
// itself and only logs it. TestNameConflict pins the format.
var conflictLine = regexp.MustCompile(`^memberlist: Conflicting address for (.+)\. Mine: (\S+) Theirs: (\S+) Old state: `)

// maxConflicts bounds the distinct conflicts remembered (and evented).
const maxConflicts = 256

// conflicts records name conflicts seen in memberlist's log. Record is
// called with memberlist's locks held, so it never blocks.
type conflicts struct {
	local string // this pool's node name
	ch    chan *NameConflictError

	seq  atomic.Uint64 // bumped on every conflict involving the local name
	mu   sync.Mutex
	seen map[string]bool
	last *NameConflictError // latest conflict involving the local name
}

func newConflicts(local string) *conflicts {
	return &conflicts{local: local, ch: make(chan *NameConflictError, 16), seen: make(map[string]bool)}
}

// record notes a conflict and queues an event for the first sighting of each
// (node, other address) pair. It reports whether the conflict is new.
func (c *conflicts) record(e *NameConflictError) bool {
	c.mu.Lock()
	if e.Local {
		c.last = e
		c.seq.Add(1)
	}
	key := e.Node + "\x00" + e.OtherAddr
	isNew := !c.seen[key] && len(c.seen) < maxConflicts
	if isNew {
		c.seen[key] = true
	}
	c.mu.Unlock()
	if isNew {
		select {
		case c.ch <- e:
		default: // the event is lost, the log line is not
		}
	}
	return isNew
}

// lastLocal returns the latest conflict over the local name, if any.
func (c *conflicts) lastLocal() *NameConflictError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// logBridge is the io.Writer behind the *log.Logger given to serf and
// memberlist. Each Write is one log line "[LEVEL] source: text".
type logBridge struct {
	log       *slog.Logger
	conflicts *conflicts
	// drops limits the warnings and errors about one peer's input
	// (memberlist ends them with "from=ADDR"): anyone who can reach the
	// gossip port can cause them at will.
	drops *ratelog.Logger
}

func (b *logBridge) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\r\n")
	level, text := slog.LevelDebug, line
	for _, l := range []struct {
		prefix string
		level  slog.Level
	}{
		{"[DEBUG] ", slog.LevelDebug},
		{"[INFO] ", slog.LevelDebug},
		{"[WARN] ", slog.LevelWarn},
		{"[ERR] ", slog.LevelError},
		{"[ERROR] ", slog.LevelError},
	} {
		if rest, ok := strings.CutPrefix(line, l.prefix); ok {
			level, text = l.level, rest
			break
		}
	}
	if m := conflictLine.FindStringSubmatch(text); m != nil {
		e := &NameConflictError{
			Node:      m[1],
			Addr:      hostPort(m[2]),
			OtherAddr: hostPort(m[3]),
			Local:     m[1] == b.conflicts.local,
		}
		if b.conflicts.record(e) {
			b.log.Error("node name conflict", "node", e.Node, "addr", e.Addr, "other_addr", e.OtherAddr, "local", e.Local)
		}
	}
	ctx := context.Background()
	if b.log.Enabled(ctx, level) {
		source, msg, ok := strings.Cut(text, ": ")
		if !ok || strings.ContainsAny(source, " \t") {
			source, msg = "", text
		}
		if level >= slog.LevelWarn && strings.Contains(msg, " from=") {
			b.drops.Log(level, "gossip", "source", source, "text", msg)
		} else {
			b.log.Log(ctx, level, "gossip", "source", source, "text", msg)
		}
	}
	return len(p), nil
}

// hostPort turns memberlist's "ip:port" (unbracketed even for IPv6) into a
// proper host:port.
func hostPort(s string) string {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s
	}
	return net.JoinHostPort(s[:i], s[i+1:])
}
