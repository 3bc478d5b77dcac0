package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/rpc"
)

// SaveSnapshot takes a Raft snapshot of the datacenter's state and returns
// it as an archive (snapshot_archive.go) to stream, with its meta; the
// caller closes it. The state streams from the snapshot store, never whole
// in memory. Without stale the snapshot includes every write committed
// before the call: the leader passes a barrier, a follower first applies
// everything the leader had committed. With ACLs on, token (its SecretID;
// "" is the anonymous token) needs acl:write (authorizeSnapshot).
func (s *Server) SaveSnapshot(ctx context.Context, token string, stale bool) (io.ReadCloser, ArchiveMeta, error) {
	if err := s.authorizeSnapshot(token); err != nil {
		return nil, ArchiveMeta{}, err
	}
	if !stale {
		if err := s.catchUp(ctx); err != nil {
			return nil, ArchiveMeta{}, fmt.Errorf("snapshot: %w", err)
		}
	}
	var (
		meta *raft.SnapshotMeta
		rc   io.ReadCloser
	)
	f := s.raft.Snapshot()
	err := f.Error()
	switch {
	case err == nil:
		meta, rc, err = f.Open()
	case errors.Is(err, raft.ErrNothingNewToSnapshot):
		meta, rc, err = s.latestSnapshot()
	}
	if err != nil {
		return nil, ArchiveMeta{}, fmt.Errorf("snapshot: %w", err)
	}
	am := ArchiveMeta{ID: meta.ID, Index: meta.Index, Term: meta.Term, Size: meta.Size, Datacenter: s.cfg.Datacenter, Created: time.Now().UTC()}
	ar, err := newArchiveReader(am, rc)
	if err != nil {
		rc.Close()
		return nil, ArchiveMeta{}, err
	}
	return ar, am, nil
}

// latestSnapshot opens the newest snapshot in the store, for when nothing
// was written since it was taken.
func (s *Server) latestSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error) {
	list, err := s.snaps.List()
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) == 0 {
		return nil, nil, errors.New("no snapshot in the store")
	}
	return s.snaps.Open(list[0].ID)
}

// catchUp returns once this server's FSM has applied every entry the
// leader had committed when it was called.
func (s *Server) catchUp(ctx context.Context) error {
	if s.IsLeader() {
		if err := s.raft.Barrier(s.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("barrier: %w", err)
		}
		return nil
	}
	var index uint64
	if err := s.forwardToLeader(ctx, rpc.MethodRaftCommitIndex, &struct{}{}, &index); err != nil {
		return fmt.Errorf("ask the leader its commit index: %w", err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.raft.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("apply up to index %d: %w", index, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// raftCommitIndex answers the leader's last log index once it has
// confirmed its leadership: everything committed before the call is at or
// below it.
func (s *Server) raftCommitIndex(_ context.Context, _ *struct{}, reply *uint64) error {
	if !s.IsLeader() {
		return rpc.ErrNoLeader
	}
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("verify leadership: %w", rpc.ErrNoLeader)
	}
	*reply = s.raft.LastIndex()
	return nil
}

// RestoreSnapshot replaces the state of every server of the datacenter
// with an archive's, through Raft. The archive is first spooled to a file
// and checked whole (checksum, version, every section readable), so an
// archive that is not one, is cut short or is altered is refused with
// ErrBadArchive and the old state keeps serving. A follower then takes
// leadership (a Raft restore runs on the leader) and restores; the other
// servers install the new state as a Raft snapshot. Blocking queries wake
// and see the restored state and its index. With ACLs on, token needs
// acl:write, checked before the archive is read.
func (s *Server) RestoreSnapshot(ctx context.Context, token string, r io.Reader) (ArchiveMeta, error) {
	if err := s.authorizeSnapshot(token); err != nil {
		return ArchiveMeta{}, err
	}
	a, err := OpenArchive(r)
	if err != nil {
		return ArchiveMeta{}, err
	}
	dir := os.TempDir()
	if s.cfg.DataDir != "" {
		dir = s.cfg.DataDir
	}
	f, err := os.CreateTemp(dir, "snapshot-restore-*.tmp")
	if err != nil {
		return a.Meta, fmt.Errorf("restore: spool file: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	start := time.Now()
	if _, err := io.Copy(f, a); err != nil {
		return a.Meta, fmt.Errorf("restore: %w", err)
	}
	spooled := time.Now()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return a.Meta, fmt.Errorf("restore: %w", err)
	}
	counts, err := scanState(io.LimitReader(f, a.Meta.Size))
	if err != nil {
		return a.Meta, fmt.Errorf("restore: %w", err)
	}
	checked := time.Now()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return a.Meta, fmt.Errorf("restore: %w", err)
	}
	if err := s.takeLeadership(ctx); err != nil {
		return a.Meta, fmt.Errorf("restore: %w", err)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: a.Meta.Index, Term: a.Meta.Term, Size: a.Meta.Size}
	led := time.Now()
	if err := s.raft.Restore(meta, f, s.cfg.ApplyTimeout); err != nil {
		return a.Meta, fmt.Errorf("restore: %w", err)
	}
	s.logger.Info("restored snapshot", "id", a.Meta.ID, "index", a.Meta.Index, "from", a.Meta.Datacenter,
		"bytes", a.Meta.Size, "receive", spooled.Sub(start), "check", checked.Sub(spooled),
		"restore", time.Since(led), "rows", formatCounts(counts))
	return a.Meta, nil
}

// takeLeadership makes this server the leader, asking the current one to
// hand over, and returns once it leads.
func (s *Server) takeLeadership(ctx context.Context) error {
	if s.IsLeader() {
		return nil
	}
	args := raftPeerWrite{Args: rpc.RaftPeerRequest{ID: s.cfg.NodeID}}
	if err := s.forwardToLeader(ctx, rpc.MethodRaftTransferLeader, &args, &rpc.WriteResult{}); err != nil {
		return fmt.Errorf("take leadership to restore: %w", err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.IsLeader() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("take leadership to restore: %w", ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// authorizeSnapshot checks, with ACLs on, that the token with SecretID
// token may save or restore a snapshot: an archive holds every token's
// secret and a restore replaces them all, so both need acl:write, as
// Consul's snapshot endpoint asks (its documentation says a management
// token). Checked here as well as in the HTTP API, so that no other path
// to the server skips it.
func (s *Server) authorizeSnapshot(token string) error {
	if !s.cfg.ACL.Enabled {
		return nil
	}
	_, err := s.authorizeACL(token, acl.AccessWrite)
	return err
}
