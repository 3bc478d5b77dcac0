package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/rpc"
)

// ID is the server's Raft ID (its node ID).
func (s *Server) ID() string { return s.cfg.NodeID }

type raftPeerWrite = rpc.Write[rpc.RaftPeerRequest]

func (s *Server) registerOperatorEndpoints() {
	register(s, rpc.MethodRaftRemovePeer, s.raftRemovePeer)
	register(s, rpc.MethodRaftTransferLeader, s.raftTransferLeader)
	register(s, rpc.MethodRaftCommitIndex, s.raftCommitIndex)
}

// raftRemovePeer removes the server named by ID or address from the Raft
// configuration, as `operator raft remove-peer` asks. It refuses a server
// that is not there and the last voter (the datacenter would have no
// quorum left to elect anyone). A server still alive in the LAN pool is
// added back by the leader's reconcile, as in Consul: this is for servers
// that are gone.
func (s *Server) raftRemovePeer(ctx context.Context, args *raftPeerWrite, reply *rpc.WriteResult) error {
	if done, err := forwardWrite(s, ctx, rpc.MethodRaftRemovePeer, args, reply); done {
		return err
	}
	req := args.Args
	if (req.ID == "") == (req.Address == "") {
		return fmt.Errorf("%w: name the server to remove by exactly one of id or address", rpc.ErrBadRequest)
	}
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	var target *raft.Server
	voters := 0
	for _, srv := range future.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			voters++
		}
		if (req.ID != "" && string(srv.ID) == req.ID) || (req.Address != "" && string(srv.Address) == req.Address) {
			target = &srv
		}
	}
	name := fmt.Sprintf("id %q", req.ID)
	if req.ID == "" {
		name = fmt.Sprintf("address %q", req.Address)
	}
	switch {
	case target == nil:
		return fmt.Errorf("%w: %s is not in the raft configuration (see operator raft list-peers)", rpc.ErrBadRequest, name)
	case target.Suffrage == raft.Voter && voters == 1:
		return fmt.Errorf("%w: %s is the last voter: removing it would leave the datacenter no server to elect", rpc.ErrBadRequest, name)
	}
	f := s.raft.RemoveServer(target.ID, 0, 0)
	if err := f.Error(); err != nil {
		return fmt.Errorf("remove raft peer %s: %w", name, err)
	}
	s.logger.Info("removed raft peer", "id", target.ID, "addr", target.Address, "reason", "operator")
	reply.Index = f.Index()
	reply.OK = true
	return nil
}

// raftTransferLeader hands leadership to the voter named by ID, or the most
// up-to-date one, and answers once another server leads.
func (s *Server) raftTransferLeader(ctx context.Context, args *raftPeerWrite, reply *rpc.WriteResult) error {
	if done, err := forwardWrite(s, ctx, rpc.MethodRaftTransferLeader, args, reply); done {
		return err
	}
	if args.Args.Address != "" {
		return fmt.Errorf("%w: transfer-leader takes an id, not an address", rpc.ErrBadRequest)
	}
	ctx, cancel := context.WithTimeout(ctx, 4*s.cfg.ElectionTimeout)
	defer cancel()
	err := s.TransferLeadership(ctx, args.Args.ID)
	var bad *transferError
	if errors.As(err, &bad) || errors.Is(err, ErrNoOtherVoter) {
		return fmt.Errorf("%w: %w", rpc.ErrBadRequest, err)
	}
	if err != nil {
		return err
	}
	reply.OK = true
	return nil
}
