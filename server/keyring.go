package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

type keyringWrite = rpc.Write[rpc.KeyringRequest]

// keyringOperation runs a keyring operation on this datacenter's LAN pool
// (any server's pool is the datacenter's), or forwards it to the
// datacenter it names. With ACLs on it takes keyring:read to list and
// keyring:write to change.
func (s *Server) keyringOperation(ctx context.Context, args *keyringWrite, reply *rpc.KeyringAnswer) error {
	if s.remote(args.Datacenter) {
		return s.forwardDC(ctx, args.Datacenter, rpc.MethodKeyringOperation, args, reply)
	}
	if s.cfg.ACL.Enabled {
		auth, err := s.ResolveToken(args.Token)
		if err != nil {
			return err
		}
		want := acl.AccessWrite
		if args.Args.Op == "list" {
			want = acl.AccessRead
		}
		if err := auth.Check(acl.ResKeyring, "", want); err != nil {
			return aclError(err)
		}
	}
	var (
		r   lan.KeyringResponse
		err error
	)
	switch key := args.Args.Key; args.Args.Op {
	case "list":
		r, err = s.lan.ListKeys()
	case "install":
		r, err = s.lan.InstallKey(key)
	case "use":
		r, err = s.lan.UseKey(key)
	case "remove":
		r, err = s.lan.RemoveKey(key)
	default:
		return fmt.Errorf("%w: unknown keyring operation %q", rpc.ErrBadRequest, args.Args.Op)
	}
	*reply = rpc.KeyringAnswer{Keys: r.Keys, PrimaryKeys: r.PrimaryKeys, NumNodes: r.NumNodes, Messages: r.Messages}
	switch {
	case errors.Is(err, lan.ErrNoEncryption):
		return fmt.Errorf("%w: datacenter %s: %w", rpc.ErrBadRequest, s.cfg.Datacenter, err)
	case err != nil:
		return fmt.Errorf("datacenter %s: %w", s.cfg.Datacenter, err)
	}
	return nil
}
