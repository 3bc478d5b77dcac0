package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// raftLayer is raft's StreamLayer on the shared server port: it accepts the
// connections whose first byte is rpc.ProtoRaft (in the clear or inside
// TLS, as the Mux sorts them) and dials with dial (that byte, with TLS when
// verify_outgoing is set).
// It tracks every connection it hands to raft and closes them all on Close:
// raft's NetworkTransport leaves a goroutine reading each accepted
// connection until the peer hangs up, which would outlive the server.
type raftLayer struct {
	ln        net.Listener
	advertise net.Addr
	dial      func(ctx context.Context, addr string) (net.Conn, error)

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

var _ raft.StreamLayer = (*raftLayer)(nil)

func newRaftLayer(ln net.Listener, advertise net.Addr, dial func(ctx context.Context, addr string) (net.Conn, error)) *raftLayer {
	return &raftLayer{ln: ln, advertise: advertise, dial: dial, conns: map[*trackedConn]struct{}{}}
}

// Accept waits for the next Raft connection from another server.
func (l *raftLayer) Accept() (net.Conn, error) {
	c, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	return l.track(c)
}

// Dial opens a Raft connection to another server.
func (l *raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := l.dial(ctx, string(addr))
	if err != nil {
		return nil, err
	}
	return l.track(c)
}

func (l *raftLayer) track(c net.Conn) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, layer: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// Close stops accepting and closes every connection raft still holds.
func (l *raftLayer) Close() error {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[*trackedConn]struct{}{}
	l.mu.Unlock()
	err := l.ln.Close()
	for c := range conns {
		c.Conn.Close()
	}
	return err
}

// Addr is the address other servers reach this one at.
func (l *raftLayer) Addr() net.Addr { return l.advertise }

// trackedConn forgets itself in its layer when closed.
type trackedConn struct {
	net.Conn
	layer *raftLayer
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.layer.mu.Lock()
		delete(c.layer.conns, c)
		c.layer.mu.Unlock()
	})
	return c.Conn.Close()
}

// raftStores opens the log, stable and snapshot stores under dataDir, or in
// memory when dataDir is empty (dev mode). The log and stable store is a
// write-ahead log (raft-wal) in raft/wal: appending a batch of entries costs
// one fsync, where bolt's copy-on-write B+tree costs two and rewrites pages,
// which makes durable writes about a third to a half faster when the disk
// is the bottleneck. A data dir made before it, with raft/raft.db, keeps
// using bolt, so an upgraded server keeps its log.
//
// The log Raft is given is the one on disk behind a leaderLog (which lets
// the leader write in parallel with replication) and a cache of the newest
// entries: the leader reads back every entry it replicates, and without the
// cache each read is a pread (a tenth of the leader's CPU under write load),
// as is a follower that lags a little.
func raftStores(dataDir string, wrap func(raft.LogStore) raft.LogStore, logger hclog.Logger) (*leaderLog, raft.LogStore, raft.StableStore, raft.SnapshotStore, io.Closer, error) {
	var (
		disk   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
		closer io.Closer = nopCloser{}
	)
	if dataDir == "" {
		store := raft.NewInmemStore()
		disk, stable, snaps = store, store, raft.NewInmemSnapshotStore()
	} else {
		dir := filepath.Join(dataDir, "raft")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, nil, nil, nil, fmt.Errorf("data dir: %w", err)
		}
		var err error
		if disk, stable, closer, err = openLog(dir); err != nil {
			return nil, nil, nil, nil, nil, err
		}
		removePartialSnapshots(filepath.Join(dir, "snapshots"), logger)
		if snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, logger); err != nil {
			closer.Close()
			return nil, nil, nil, nil, nil, fmt.Errorf("raft snapshots in %s: %w", dir, err)
		}
	}
	if wrap != nil {
		disk = wrap(disk)
	}
	ll, err := newLeaderLog(disk)
	if err != nil {
		closer.Close()
		return nil, nil, nil, nil, nil, err
	}
	logs, err := raft.NewLogCache(logCacheSize, ll)
	if err != nil {
		ll.Close()
		closer.Close()
		return nil, nil, nil, nil, nil, fmt.Errorf("raft log cache: %w", err)
	}
	// The leaderLog closes first: it writes what is still queued.
	return ll, logs, stable, snaps, closers{ll, closer}, nil
}

// removePartialSnapshots deletes the snapshot directories raft had not
// finished writing (it writes name.tmp and renames it to name once
// complete) when the server was killed: raft never reads nor removes them,
// and each can be as large as the whole state. Nothing else writes there
// before Raft starts, so every .tmp directory is one.
func removePartialSnapshots(dir string, logger hclog.Logger) {
	partial, err := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if err != nil {
		return // only a malformed pattern fails, and this one is fixed
	}
	for _, p := range partial {
		if err := os.RemoveAll(p); err != nil {
			logger.Warn("remove a partial raft snapshot", "path", p, "error", err)
			continue
		}
		logger.Info("removed a partial raft snapshot left by an interrupted snapshot", "path", p)
	}
}

// logCacheSize is how many of the newest Raft entries are kept in memory:
// two full AppendEntries batches.
const logCacheSize = 512

// openLog opens the Raft log in dir: bolt's raft.db when it exists, else
// the write-ahead log in wal/.
func openLog(dir string) (raft.LogStore, raft.StableStore, io.Closer, error) {
	boltPath := filepath.Join(dir, "raft.db")
	if _, err := os.Stat(boltPath); err == nil {
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: boltPath})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("open raft log %s: %w", boltPath, err)
		}
		return bolt, bolt, bolt, nil
	}
	walDir := filepath.Join(dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("data dir: %w", err)
	}
	// raft-wal's Close leaves its meta store open (and locked): hand it
	// one we close ourselves, or a restart in the same process blocks.
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(walDir, wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return nil, nil, nil, fmt.Errorf("open raft log %s: %w", walDir, err)
	}
	return w, w, closers{w, meta}, nil
}

// closers closes each of its members in order, returning the first error.
type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// hclogger bridges raft's hclog output into slog. Raft logs at info what is
// routine for an operator (elections, heartbeats), so levels are kept as raft
// states them and the handler filters.
func hclogger(logger *slog.Logger, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Debug,
		Output:     &slogWriter{logger: logger},
		JSONFormat: false,
		TimeFormat: " ",
	})
}

// slogWriter turns hclog's text lines into slog records.
type slogWriter struct{ logger *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	switch {
	case strings.Contains(line, "[ERROR]"):
		level = slog.LevelError
	case strings.Contains(line, "[WARN]"):
		level = slog.LevelWarn
	case strings.Contains(line, "[INFO]"):
		level = slog.LevelInfo
	}
	for _, tag := range []string{"[ERROR]", "[WARN]", "[INFO]", "[DEBUG]", "[TRACE]"} {
		if i := strings.Index(line, tag); i >= 0 {
			line = strings.TrimSpace(line[i+len(tag):])
			break
		}
	}
	w.logger.Log(context.Background(), level, line)
	return len(p), nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
