package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/lan"
)

// reconcileRaft brings the Raft configuration in line with the LAN pool, on
// the leader: alive servers of this datacenter are added as non-voters (a
// server back on another address is replaced), servers that left are
// removed, and servers gone from the pool altogether (reaped, or pruned by
// force-leave) are removed once they have been missing for
// AbsentServerGrace. Missing servers are never removed when that would take
// away half of the voters or more, so a leader whose own view of the pool is
// wrong (just restarted, cut off) cannot empty the configuration; failed
// servers are autopilot's to clean up.
func (s *Server) reconcileRaft(members []lan.Member) {
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		s.logger.Warn("read raft configuration", "error", err)
		return
	}
	servers := future.Configuration().Servers
	inRaft := make(map[raft.ServerID]raft.Server, len(servers))
	voters := 0
	for _, srv := range servers {
		inRaft[srv.ID] = srv
		if srv.Suffrage == raft.Voter {
			voters++
		}
	}
	pool := map[raft.ServerID]Meta{}
	for _, m := range members {
		meta, ok := ParseMember(m)
		if !ok || meta.Datacenter != s.cfg.Datacenter || meta.ID == "" {
			continue
		}
		pool[raft.ServerID(meta.ID)] = meta
	}

	for id, meta := range pool {
		srv, present := inRaft[id]
		if meta.Status != lan.StatusAlive || (present && srv.Address == raft.ServerAddress(meta.Addr)) {
			continue
		}
		// A new server joins as a non-voter; autopilot promotes it once
		// it is healthy and caught up (autopilot.go). One that came back
		// on another address is replaced with its suffrage.
		add := s.raft.AddNonvoter
		if present {
			s.removePeer(srv, "moved to "+meta.Addr)
			if srv.Suffrage == raft.Voter {
				add = s.raft.AddVoter
			}
		}
		if err := add(id, raft.ServerAddress(meta.Addr), 0, 0).Error(); err != nil {
			s.logger.Warn("add raft peer", "server", meta.Name, "addr", meta.Addr, "error", err)
			continue
		}
		s.logger.Info("added raft peer", "server", meta.Name, "addr", meta.Addr, "voter", present && srv.Suffrage == raft.Voter)
	}

	now := time.Now()
	var missing []raft.Server
	for _, srv := range servers {
		if srv.ID == raft.ServerID(s.cfg.NodeID) {
			continue
		}
		meta, inPool := pool[srv.ID]
		switch {
		case inPool && meta.Status == lan.StatusLeft:
			delete(s.absentSince, srv.ID)
			s.removePeer(srv, "left the LAN pool")
		case inPool:
			delete(s.absentSince, srv.ID)
		default:
			since, seen := s.absentSince[srv.ID]
			if !seen {
				s.absentSince[srv.ID] = now
			} else if now.Sub(since) >= s.cfg.AbsentServerGrace {
				missing = append(missing, srv)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	if 2*len(missing) >= voters {
		s.logger.Warn("raft servers missing from the LAN pool; not removing them, that would take half of the voters",
			"missing", len(missing), "voters", voters)
		return
	}
	for _, srv := range missing {
		if s.removePeer(srv, "missing from the LAN pool") {
			delete(s.absentSince, srv.ID)
		}
	}
}

// removePeer removes srv from the Raft configuration, logging why; it
// reports whether the removal committed.
func (s *Server) removePeer(srv raft.Server, why string) bool {
	if err := s.raft.RemoveServer(srv.ID, 0, 0).Error(); err != nil {
		s.logger.Warn("remove raft peer", "id", srv.ID, "addr", srv.Address, "reason", why, "error", err)
		return false
	}
	s.logger.Info("removed raft peer", "id", srv.ID, "addr", srv.Address, "reason", why)
	return true
}

// voters counts the voters of the Raft configuration.
func (s *Server) voters() (int, error) {
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return 0, fmt.Errorf("read raft configuration: %w", err)
	}
	n := 0
	for _, srv := range future.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			n++
		}
	}
	return n, nil
}

// Leave is the first step of a server's graceful leave, before the agent
// leaves the LAN pool: a leader with other voters hands leadership to the
// most up-to-date of them and waits, bounded by ctx, until one leads. Only
// then does the agent leave the pool, and the new leader, seeing the leave,
// removes this server from Raft (WaitRemoved waits for that). Removing
// itself first instead, as a leader could, lets the next leader add it back
// while gossip still says it is alive, and leaves a two-server datacenter
// with a dead voter and no quorum. When no peer takes over, Leave returns
// the error and WaitRemoved has the leader remove itself.
func (s *Server) Leave(ctx context.Context) error {
	if !s.IsLeader() {
		return nil
	}
	n, err := s.voters()
	if err != nil {
		return fmt.Errorf("server leave: %w", err)
	}
	if n < 2 {
		return nil
	}
	if err := s.TransferLeadership(ctx, ""); err != nil {
		return fmt.Errorf("server leave: %w", err)
	}
	return nil
}

// ErrNoOtherVoter means a leadership transfer was asked for in a
// configuration with no other voter to take over.
var ErrNoOtherVoter = errors.New("no other voter to take over leadership")

// transferError is a leadership transfer to a server that cannot take it.
type transferError struct{ msg string }

func (e *transferError) Error() string { return e.msg }

// TransferLeadership hands leadership to the voter with ID id, or to the most
// up-to-date voter when id is "", and waits, bounded by ctx, until another
// server leads.
func (s *Server) TransferLeadership(ctx context.Context, id string) error {
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	var target *raft.Server
	others := 0
	for _, srv := range future.Configuration().Servers {
		if srv.Suffrage != raft.Voter || srv.ID == raft.ServerID(s.cfg.NodeID) {
			continue
		}
		others++
		if string(srv.ID) == id {
			target = &srv
		}
	}
	switch {
	case others == 0:
		return ErrNoOtherVoter
	case id != "" && id == s.cfg.NodeID:
		return &transferError{fmt.Sprintf("server %q already leads", id)}
	case id != "" && target == nil:
		return &transferError{fmt.Sprintf("no voter with id %q in the raft configuration (see operator raft list-peers)", id)}
	}
	var f raft.Future
	if target != nil {
		f = s.raft.LeadershipTransferToServer(target.ID, target.Address)
	} else {
		f = s.raft.LeadershipTransfer()
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if addr, lid := s.raft.LeaderWithID(); addr != "" && lid != raft.ServerID(s.cfg.NodeID) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the new leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// WaitRemoved waits, bounded by ctx, until this server is no longer in the
// Raft configuration; the agent calls it after leaving the LAN pool. A
// server that still leads then (no peer took over) removes itself: gossip
// now says it left, so no leader adds it back.
func (s *Server) WaitRemoved(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	removing := false
	for {
		future := s.raft.GetConfiguration()
		if future.Error() != nil {
			return
		}
		var present bool
		voters := 0
		for _, srv := range future.Configuration().Servers {
			present = present || srv.ID == raft.ServerID(s.cfg.NodeID)
			if srv.Suffrage == raft.Voter {
				voters++
			}
		}
		if !present {
			return
		}
		if !removing && s.IsLeader() && voters > 1 {
			removing = true
			if err := s.raft.RemoveServer(raft.ServerID(s.cfg.NodeID), 0, 0).Error(); err != nil {
				s.logger.Warn("remove self from raft", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
