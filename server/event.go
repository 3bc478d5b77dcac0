package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

type eventWrite = rpc.Write[rpc.EventFireRequest]

// eventFire gossips a user event in this datacenter's LAN pool (any
// server's pool is the datacenter's), or forwards it to the datacenter it
// names. With ACLs on it takes event:write on the event's name.
func (s *Server) eventFire(ctx context.Context, args *eventWrite, reply *rpc.WriteResult) error {
	if s.remote(args.Datacenter) {
		return s.forwardDC(ctx, args.Datacenter, rpc.MethodEventFire, args, reply)
	}
	if args.Args.Name == "" {
		return fmt.Errorf("%w: an event needs a name", rpc.ErrBadRequest)
	}
	if s.cfg.ACL.Enabled {
		auth, err := s.ResolveToken(args.Token)
		if err != nil {
			return err
		}
		if err := auth.Check(acl.ResEvent, args.Args.Name, acl.AccessWrite); err != nil {
			return aclError(err)
		}
	}
	err := s.lan.UserEvent(rpc.UserEventPrefix+args.Args.Name, args.Args.Payload, false)
	switch {
	case errors.Is(err, lan.ErrShutdown):
		return fmt.Errorf("datacenter %s: %w", s.cfg.Datacenter, err)
	case err != nil: // too large for gossip
		return fmt.Errorf("%w: datacenter %s: %w", rpc.ErrBadRequest, s.cfg.Datacenter, err)
	}
	*reply = rpc.WriteResult{OK: true}
	return nil
}
