package server

import (
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// GatedLog is a real log whose writes wait while the gate is shut, as a
// slow disk's fsync does. It is exported for the cluster tests of package
// server_test.
type GatedLog struct {
	raft.LogStore
	mu     sync.Mutex
	open   *sync.Cond
	shut   bool
	writes [][]uint64 // the indices of each StoreLogs, in order
}

// NewGatedLog wraps disk, its gate open.
func NewGatedLog(disk raft.LogStore) *GatedLog {
	g := &GatedLog{LogStore: disk}
	g.open = sync.NewCond(&g.mu)
	return g
}

// SetShut shuts or opens the gate.
func (g *GatedLog) SetShut(shut bool) {
	g.mu.Lock()
	g.shut = shut
	g.mu.Unlock()
	g.open.Broadcast()
}

// StoreLogs writes once the gate is open.
func (g *GatedLog) StoreLogs(logs []*raft.Log) error {
	g.mu.Lock()
	for g.shut {
		g.open.Wait()
	}
	var idx []uint64
	for _, l := range logs {
		idx = append(idx, l.Index)
	}
	g.writes = append(g.writes, idx)
	g.mu.Unlock()
	return g.LogStore.StoreLogs(logs)
}

// StoreLog writes one entry once the gate is open.
func (g *GatedLog) StoreLog(l *raft.Log) error { return g.StoreLogs([]*raft.Log{l}) }

func entries(from, to uint64) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}})
	}
	return out
}

// leading makes l behave as the leader's log (or not) without a Raft.
func leading(l *leaderLog, lead bool) {
	f := func() bool { return lead }
	l.leader.Store(&f)
}

// returnsWithin fails the test unless fn returns within d.
func returnsWithin(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// TestLeaderLogQueuesOnTheLeader: the leader's StoreLogs returns before the
// disk write, the entries are readable meanwhile, and waitDurable holds
// until the write is done; a follower's StoreLogs writes through, after
// whatever the leader queued.
func TestLeaderLogQueuesOnTheLeader(t *testing.T) {
	disk := NewGatedLog(raft.NewInmemStore())
	l, err := newLeaderLog(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	leading(l, true)
	disk.SetShut(true)

	returnsWithin(t, 5*time.Second, "the leader's StoreLogs with the disk stalled", func() {
		if err := l.StoreLogs(entries(1, 3)); err != nil {
			t.Error(err)
		}
	})
	if last, _ := l.LastIndex(); last != 3 {
		t.Errorf("LastIndex = %d, want 3 (queued entries count)", last)
	}
	if first, _ := l.FirstIndex(); first != 1 {
		t.Errorf("FirstIndex = %d, want 1", first)
	}
	var got raft.Log
	if err := l.GetLog(2, &got); err != nil || got.Data[0] != 2 {
		t.Errorf("GetLog(2) of a queued entry = %v, %v", got.Data, err)
	}
	if d := l.durableIndex(); d != 0 {
		t.Errorf("durableIndex = %d with the disk stalled, want 0", d)
	}
	applied := make(chan struct{})
	go func() { l.waitDurable(3); close(applied) }()
	select {
	case <-applied:
		t.Fatal("waitDurable(3) returned before the entries were on disk")
	case <-time.After(50 * time.Millisecond): // a bound on a wrong early return, not a synchronisation
	}

	// Leadership lost: a follower's write waits for the queue and goes after it.
	leading(l, false)
	stored := make(chan error, 1)
	go func() { stored <- l.StoreLogs(entries(4, 4)) }()
	disk.SetShut(false)
	returnsWithin(t, 5*time.Second, "waitDurable after the disk resumed", func() { <-applied })
	if err := <-stored; err != nil {
		t.Fatal(err)
	}
	if d := l.durableIndex(); d != 4 {
		t.Errorf("durableIndex = %d, want 4", d)
	}
	disk.mu.Lock()
	writes := disk.writes
	disk.mu.Unlock()
	if len(writes) != 2 || len(writes[0]) != 3 || writes[0][0] != 1 || writes[1][0] != 4 {
		t.Errorf("disk writes = %v, want [[1 2 3] [4]]", writes)
	}
	if err := disk.GetLog(4, &got); err != nil {
		t.Errorf("entry 4 not on disk: %v", err)
	}
}

// TestLeaderLogDeleteRange: a delete waits for the queue, and cutting the
// tail lowers the durable index to what is left.
func TestLeaderLogDeleteRange(t *testing.T) {
	disk := NewGatedLog(raft.NewInmemStore())
	l, err := newLeaderLog(disk)
	if err != nil {
		t.Fatal(err)
	}
	leading(l, true)
	if err := l.StoreLogs(entries(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteRange(1, 3); err != nil { // compaction of the head
		t.Fatal(err)
	}
	if d := l.durableIndex(); d != 10 {
		t.Errorf("durableIndex after compacting the head = %d, want 10", d)
	}
	if err := l.DeleteRange(8, 10); err != nil { // a conflicting tail
		t.Fatal(err)
	}
	if d := l.durableIndex(); d != 7 {
		t.Errorf("durableIndex after cutting the tail = %d, want 7", d)
	}
	if first, _ := l.FirstIndex(); first != 4 {
		t.Errorf("FirstIndex = %d, want 4", first)
	}
	if last, _ := l.LastIndex(); last != 7 {
		t.Errorf("LastIndex = %d, want 7", last)
	}

	// Close writes what is still queued.
	disk.SetShut(true)
	if err := l.StoreLogs(entries(8, 9)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	disk.SetShut(false)
	returnsWithin(t, 5*time.Second, "Close", func() { <-closed })
	if last, _ := disk.LastIndex(); last != 9 {
		t.Errorf("disk LastIndex after Close = %d, want 9", last)
	}
	if err := l.StoreLogs(entries(10, 10)); err == nil {
		t.Error("StoreLogs after Close succeeded")
	}
}

// TestRaftTransportCapsCommitIndex sends AppendEntries over real TCP
// transports: the commit index a follower hears never passes the leader's
// durable index, and pipelining is declined.
func TestRaftTransportCapsCommitIndex(t *testing.T) {
	newTransport := func() *raft.NetworkTransport {
		t.Helper()
		tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	follower := newTransport()
	heard := make(chan uint64, 2)
	// The transport never closes its consumer channel: stop by hand.
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case <-stop:
				return
			case rpc := <-follower.Consumer():
				if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
					heard <- req.LeaderCommitIndex
				}
				rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
			}
		}
	}()
	durable := uint64(5)
	tr := raftTransport{NetworkTransport: newTransport(), durable: func() uint64 { return durable }}
	if _, err := tr.AppendEntriesPipeline("f", follower.LocalAddr()); err != raft.ErrPipelineReplicationNotSupported {
		t.Errorf("AppendEntriesPipeline error = %v, want ErrPipelineReplicationNotSupported", err)
	}
	for _, commit := range []uint64{9, 4} {
		args := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("l"), Addr: []byte(tr.LocalAddr())}, Term: 1, LeaderCommitIndex: commit}
		var resp raft.AppendEntriesResponse
		if err := tr.AppendEntries("f", follower.LocalAddr(), args, &resp); err != nil {
			t.Fatal(err)
		}
		want := min(commit, durable)
		if got := <-heard; got != want {
			t.Errorf("leader commit %d, durable %d: follower heard %d, want %d", commit, durable, got, want)
		}
		if args.LeaderCommitIndex != commit {
			t.Errorf("the caller's request was changed: LeaderCommitIndex %d, want %d", args.LeaderCommitIndex, commit)
		}
	}
}
