package server

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// leaderLog is the Raft log store in front of the one on disk. On a
// follower it writes through: StoreLogs returns once the entries are on
// disk, as Raft requires before a follower acknowledges them. On the leader
// it lets Raft go on while the entries are written: StoreLogs queues them and
// returns, so the leader sends them to the followers while its own fsync
// runs, and a commit waits for one fsync (the fastest follower's) instead of
// two in series (the Raft dissertation, section 10.2.1).
//
// Raft counts the leader's copy towards the commit once StoreLogs returns, so
// nothing that relies on that copy may happen before it is on disk.
// durableIndex says how far that is: the FSM waits for it before applying an
// entry (no client is answered, no read sees a write, before the write is on
// the disks of the leader and of a follower), and raftTransport never tells a
// follower of a commit beyond it (no follower applies an entry that a leader
// restarted after a power cut might no longer have).
//
// A write that fails on the leader after StoreLogs returned cannot be undone
// in Raft, so it stops the server (panic), as a log entry from a newer
// version does in the FSM: restarted, it recovers what is on disk and
// catches up as a follower.
type leaderLog struct {
	disk   raft.LogStore
	leader atomic.Pointer[func() bool] // whether this server leads; nil until Raft runs, and writes go through

	mu      sync.Mutex
	changed *sync.Cond  // queued, durable or closed changed
	queued  []*raft.Log // accepted but not on disk yet (the writer may be writing them), in index order
	durable uint64      // every entry up to this index is on disk
	closed  bool
	done    chan struct{} // closed when the writer has stopped
}

var (
	_ raft.LogStore          = (*leaderLog)(nil)
	_ raft.MonotonicLogStore = (*leaderLog)(nil)
)

var errLogClosed = errors.New("raft log: closed")

// newLeaderLog starts the writer of the log on disk.
func newLeaderLog(disk raft.LogStore) (*leaderLog, error) {
	last, err := disk.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("raft log: last index: %w", err)
	}
	l := &leaderLog{disk: disk, durable: last, done: make(chan struct{})}
	l.changed = sync.NewCond(&l.mu)
	go l.writer()
	return l, nil
}

// writer writes the queued entries to disk, everything queued at once.
func (l *leaderLog) writer() {
	defer close(l.done)
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for len(l.queued) == 0 && !l.closed {
			l.changed.Wait()
		}
		if len(l.queued) == 0 {
			return
		}
		batch := l.queued
		l.mu.Unlock()
		err := l.disk.StoreLogs(batch)
		l.mu.Lock()
		if err != nil {
			panic(fmt.Sprintf("raft log: write entries %d-%d on the leader: %v; the server stops so that it never applies an entry it could not keep", batch[0].Index, batch[len(batch)-1].Index, err))
		}
		l.queued = l.queued[len(batch):]
		if len(l.queued) == 0 {
			l.queued = nil // let the written entries be collected
		}
		l.durable = batch[len(batch)-1].Index
		l.changed.Broadcast()
	}
}

// setRaft switches the leader's writes to queued ones once Raft runs. Raft
// calls StoreLogs from its one main goroutine, which also changes its
// state, so the state read there is the one the write is made in.
func (l *leaderLog) setRaft(r *raft.Raft) {
	leads := func() bool { return r.State() == raft.Leader }
	l.leader.Store(&leads)
}

func (l *leaderLog) isLeader() bool {
	leads := l.leader.Load()
	return leads != nil && (*leads)()
}

// drain waits until nothing is queued; l.mu is held.
func (l *leaderLog) drain() {
	for len(l.queued) > 0 {
		l.changed.Wait()
	}
}

// StoreLogs queues the entries on the leader and writes them through
// elsewhere, after whatever is still queued.
func (l *leaderLog) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errLogClosed
	}
	if l.isLeader() {
		l.queued = append(l.queued, logs...)
		l.changed.Broadcast()
		return nil
	}
	l.drain()
	if err := l.disk.StoreLogs(logs); err != nil {
		return err
	}
	l.durable = logs[len(logs)-1].Index
	l.changed.Broadcast()
	return nil
}

// StoreLog stores one entry.
func (l *leaderLog) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

// GetLog reads an entry, queued or on disk.
func (l *leaderLog) GetLog(index uint64, out *raft.Log) error {
	l.mu.Lock()
	if n := len(l.queued); n > 0 && index >= l.queued[0].Index && index <= l.queued[n-1].Index {
		*out = *l.queued[index-l.queued[0].Index]
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	return l.disk.GetLog(index, out)
}

// FirstIndex is the first index in the log, queued entries included.
func (l *leaderLog) FirstIndex() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first, err := l.disk.FirstIndex()
	if err == nil && first == 0 && len(l.queued) > 0 {
		first = l.queued[0].Index
	}
	return first, err
}

// LastIndex is the last index in the log, queued entries included.
func (l *leaderLog) LastIndex() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.queued); n > 0 {
		return l.queued[n-1].Index, nil
	}
	return l.disk.LastIndex()
}

// DeleteRange deletes entries once everything queued is written: Raft
// removes a conflicting tail, or compacts the head after a snapshot.
func (l *leaderLog) DeleteRange(min, max uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drain()
	if err := l.disk.DeleteRange(min, max); err != nil {
		return err
	}
	if max >= l.durable && min <= l.durable {
		l.durable = min - 1 // the tail went; what replaces it is not written yet
		l.changed.Broadcast()
	}
	return nil
}

// IsMonotonic says whether the log on disk takes only consecutive indexes
// (raft-wal does): Raft then empties the log after installing or restoring
// a snapshot, instead of leaving a gap the log on disk would refuse.
func (l *leaderLog) IsMonotonic() bool {
	m, ok := l.disk.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// durableIndex is the highest index up to which the log is on disk.
func (l *leaderLog) durableIndex() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable
}

// waitDurable returns once every entry up to index is on disk, or the log
// is closed.
func (l *leaderLog) waitDurable(index uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.durable < index && !l.closed {
		l.changed.Wait()
	}
}

// Close writes what is queued and stops the writer. Raft must have shut
// down first; the log on disk is the caller's to close.
func (l *leaderLog) Close() error {
	l.mu.Lock()
	l.drain()
	l.closed = true
	l.changed.Broadcast()
	l.mu.Unlock()
	<-l.done
	return nil
}

// raftTransport is Raft's network transport with two changes that go with
// leaderLog. The commit index it tells followers never passes the leader's
// durable index. And it does not pipeline AppendEntries: each request
// carries everything the leader appended while the previous one was out,
// so a follower writes (and fsyncs) once per round trip rather than once
// per leader batch, which is what bounds the write rate when a follower's
// fsyncs queue behind each other.
type raftTransport struct {
	*raft.NetworkTransport
	durable func() uint64
}

// AppendEntries sends one request, its commit index capped.
func (t raftTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if d := t.durable(); args.LeaderCommitIndex > d {
		capped := *args
		capped.LeaderCommitIndex = d
		args = &capped
	}
	return t.NetworkTransport.AppendEntries(id, target, args, resp)
}

// AppendEntriesPipeline declines, so Raft replicates one request at a time.
func (raftTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
