package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/rpc"
)

// Query and write types of the ACL endpoints.
type (
	aclBootstrapWrite = rpc.Write[rpc.ACLBootstrapRequest]
	aclTokenWrite     = rpc.Write[rpc.ACLSetRequest[acl.Token]]
	aclPolicyWrite    = rpc.Write[rpc.ACLSetRequest[acl.Policy]]
	aclRoleWrite      = rpc.Write[rpc.ACLSetRequest[acl.Role]]
	aclIDWrite        = rpc.Write[rpc.ACLIDRequest]
	aclIDQuery        = rpc.Query[rpc.ACLIDRequest]
	aclListQuery      = rpc.Query[rpc.ACLListRequest]
)

// hiddenSecret replaces a SecretID in answers to a token without
// acl:write, as Consul does.
const hiddenSecret = "<hidden>"

// bootstrapResetFile, in the data dir, holds the index a new bootstrap must
// name: Consul's way to bootstrap again after losing the management token.
const bootstrapResetFile = "acl-bootstrap-reset"

func (s *Server) registerACLEndpoints() {
	register(s, rpc.MethodACLBootstrap, s.aclBootstrap)
	register(s, rpc.MethodACLTokenSet, s.aclTokenSet)
	register(s, rpc.MethodACLTokenRead, s.aclTokenRead)
	register(s, rpc.MethodACLTokenDelete, s.aclTokenDelete)
	register(s, rpc.MethodACLTokenClone, s.aclTokenClone)
	register(s, rpc.MethodACLTokenList, s.aclTokenList)
	register(s, rpc.MethodACLPolicySet, s.aclPolicySet)
	register(s, rpc.MethodACLPolicyRead, s.aclPolicyRead)
	register(s, rpc.MethodACLPolicyDelete, s.aclPolicyDelete)
	register(s, rpc.MethodACLPolicyList, s.aclPolicyList)
	register(s, rpc.MethodACLRoleSet, s.aclRoleSet)
	register(s, rpc.MethodACLRoleRead, s.aclRoleRead)
	register(s, rpc.MethodACLRoleDelete, s.aclRoleDelete)
	register(s, rpc.MethodACLRoleList, s.aclRoleList)
	register(s, rpc.MethodACLResolve, s.aclResolve)
	register(s, rpc.MethodACLReplicationStatus, s.aclReplicationStatus)
}

// establishACL is the new leader's ACL duty: the built-in policy and
// anonymous token, and the configured initial management token, exist.
func (s *Server) establishACL(ctx context.Context) {
	if !s.cfg.ACL.Enabled || ctx.Err() != nil {
		return
	}
	tx, _ := s.state.read()
	anon, _, err := acl.TokenByAccessor(tx, nil, acl.AnonymousAccessorID)
	mgmt, _, err2 := acl.PolicyByID(tx, nil, acl.ManagementPolicyID)
	var initial *acl.Token
	if s.cfg.ACL.InitialManagement != "" {
		initial, _, _ = acl.TokenBySecret(tx, nil, s.cfg.ACL.InitialManagement)
	}
	tx.Abort()
	if err != nil || err2 != nil || anon == nil || mgmt == nil {
		if _, _, err := s.apply(ctx, msgACL, &aclCommand{Op: aclOpBuiltins, Now: time.Now().UnixNano()}); err != nil {
			s.logger.Error("create the built-in acl policy and anonymous token", "error", err)
			return
		}
	}
	if s.cfg.ACL.InitialManagement == "" || initial != nil || s.aclSecondary() {
		// A secondary gets its management tokens from the primary.
		return
	}
	id, err := acl.NewID()
	if err != nil {
		s.logger.Error("create the initial management token", "error", err)
		return
	}
	tok := &acl.Token{AccessorID: id, SecretID: s.cfg.ACL.InitialManagement, Description: "Initial Management Token",
		Policies: []acl.PolicyLink{{ID: acl.ManagementPolicyID}}, CreateTime: time.Now()}
	if _, _, err := s.apply(ctx, msgACL, &aclCommand{Op: aclOpTokenSet, Token: tok, Now: time.Now().UnixNano()}); err != nil {
		s.logger.Error("create the initial management token", "accessor", id, "error", err)
		return
	}
	s.logger.Info("created the initial management token", "accessor", id)
}

// aclApply commits an ACL write, with the acl package's refusals coded.
func (s *Server) aclApply(ctx context.Context, cmd *aclCommand) (uint64, error) {
	cmd.Now = time.Now().UnixNano()
	idx, _, err := s.apply(ctx, msgACL, cmd)
	return idx, aclError(err)
}

// aclBootstrap creates the first management token, once; a second call is
// refused with the reset index (rpc.ErrPermissionDenied).
func (s *Server) aclBootstrap(ctx context.Context, args *aclBootstrapWrite, reply *acl.Token) error {
	if done, err := forwardACLPrimary(s, ctx, rpc.MethodACLBootstrap, args, reply); done {
		return err
	}
	if done, err := forwardToLeaderAny(s, ctx, rpc.MethodACLBootstrap, args, reply); done {
		return err
	}
	if !s.cfg.ACL.Enabled {
		return rpc.ErrACLDisabled
	}
	reset := args.Args.ResetIndex
	resetPath := ""
	if s.cfg.DataDir != "" {
		resetPath = filepath.Join(s.cfg.DataDir, bootstrapResetFile)
		if b, err := os.ReadFile(resetPath); err == nil {
			n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return fmt.Errorf("%w: %s holds %q, not a reset index", rpc.ErrBadRequest, resetPath, strings.TrimSpace(string(b)))
			}
			reset = n
		}
	}
	accessor, err := acl.NewID()
	if err != nil {
		return err
	}
	secret := args.Args.Secret
	if secret == "" {
		if secret, err = acl.NewID(); err != nil {
			return err
		}
	}
	tok := &acl.Token{AccessorID: accessor, SecretID: secret, Description: "Bootstrap Token (Global Management)",
		Policies: []acl.PolicyLink{{ID: acl.ManagementPolicyID}}, CreateTime: time.Now()}
	if _, err := s.aclApply(ctx, &aclCommand{Op: aclOpBootstrap, Token: tok, ResetIndex: reset}); err != nil {
		return err
	}
	if resetPath != "" {
		_ = os.Remove(resetPath) // used: a later bootstrap needs a new reset
	}
	s.logger.Info("acl bootstrapped", "accessor", accessor)
	return s.readToken(accessor, reply)
}

// readToken fills reply with the stored token.
func (s *Server) readToken(accessor string, reply *acl.Token) error {
	tx, _ := s.state.read()
	defer tx.Abort()
	tok, _, err := acl.TokenByAccessor(tx, nil, accessor)
	if err != nil {
		return err
	}
	if tok == nil {
		return fmt.Errorf("token %s: %w", accessor, rpc.ErrNotFound)
	}
	*reply = *tok
	return nil
}

// aclTokenSet creates or updates a token. A create gets new IDs where
// none are given and turns ExpirationTTL into ExpirationTime by the
// leader's clock; an update must name an existing token and keeps its
// secret and expiry.
func (s *Server) aclTokenSet(ctx context.Context, args *aclTokenWrite, reply *acl.Token) error {
	// A local token is this datacenter's own; the others, the primary's.
	if local := args.Args.Object.Local && args.Args.Create || !args.Args.Create && s.localToken(args.Args.Object.AccessorID); !local {
		if done, err := forwardACLPrimary(s, ctx, rpc.MethodACLTokenSet, args, reply); done {
			return err
		}
	}
	if done, err := forwardToLeaderAny(s, ctx, rpc.MethodACLTokenSet, args, reply); done {
		return err
	}
	if _, err := s.authorizeACL(args.Token, acl.AccessWrite); err != nil {
		return err
	}
	tok := args.Args.Object
	if args.Args.Create {
		if err := prepareNewToken(&tok, time.Now()); err != nil {
			return err
		}
	} else {
		tx, _ := s.state.read()
		existing, _, err := acl.TokenByAccessor(tx, nil, tok.AccessorID)
		tx.Abort()
		if err != nil {
			return err
		}
		if existing == nil {
			return fmt.Errorf("%w: cannot find token %q to update", rpc.ErrNotFound, tok.AccessorID)
		}
		if tok.ExpirationTTL != 0 || (tok.ExpirationTime != nil && (existing.ExpirationTime == nil || !tok.ExpirationTime.Equal(*existing.ExpirationTime))) {
			return fmt.Errorf("%w: a token's expiration cannot change", rpc.ErrBadRequest)
		}
	}
	if _, err := s.aclApply(ctx, &aclCommand{Op: aclOpTokenSet, Token: &tok}); err != nil {
		return err
	}
	return s.readToken(tok.AccessorID, reply)
}

// prepareNewToken fills a new token's IDs, create time and expiry.
func prepareNewToken(tok *acl.Token, now time.Time) error {
	for _, id := range []*string{&tok.AccessorID, &tok.SecretID} {
		if *id != "" {
			continue
		}
		v, err := acl.NewID()
		if err != nil {
			return err
		}
		*id = v
	}
	tok.CreateTime = now
	switch {
	case tok.ExpirationTTL < 0:
		return fmt.Errorf("%w: ExpirationTTL %s is negative", rpc.ErrBadRequest, tok.ExpirationTTL)
	case tok.ExpirationTTL > 0 && tok.ExpirationTime != nil:
		return fmt.Errorf("%w: give ExpirationTTL or ExpirationTime, not both", rpc.ErrBadRequest)
	case tok.ExpirationTTL > 0:
		exp := now.Add(tok.ExpirationTTL)
		tok.ExpirationTime = &exp
	case tok.ExpirationTime != nil && !tok.ExpirationTime.After(now):
		return fmt.Errorf("%w: ExpirationTime %s is in the past", rpc.ErrBadRequest, tok.ExpirationTime.Format(time.RFC3339))
	}
	tok.ExpirationTTL = 0
	return nil
}

// aclTokenRead reads a token by AccessorID (acl:read; the secret shows
// only with acl:write) or, with Self, the caller's own token.
func (s *Server) aclTokenRead(ctx context.Context, args *aclIDQuery, reply *rpc.Answer[*acl.Token]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodACLTokenRead, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		if args.Args.Self {
			if _, err := s.ResolveToken(args.Token); err != nil {
				return 0, err
			}
			secret := args.Token
			if secret == "" {
				secret = acl.AnonymousSecretID
			}
			tok, idx, err := acl.TokenBySecret(tx, ws, secret)
			if err == nil && tok == nil {
				err = rpc.ErrACLNotFound
			}
			reply.Value = tok
			return idx, err
		}
		auth, err := s.authorizeACL(args.Token, acl.AccessRead)
		if err != nil {
			return 0, err
		}
		tok, idx, err := acl.TokenByAccessor(tx, ws, args.Args.ID)
		if err == nil && tok == nil {
			err = fmt.Errorf("%w: token %q not found", rpc.ErrNotFound, args.Args.ID)
		}
		reply.Value = redact(auth, tok)
		return idx, err
	})
}

// redact hides tok's secret from a token without acl:write.
func redact(auth *acl.Authorizer, tok *acl.Token) *acl.Token {
	if tok == nil || auth.Allowed(acl.ResACL, "", acl.AccessWrite) {
		return tok
	}
	c := *tok
	c.SecretID = hiddenSecret
	return &c
}

func (s *Server) aclTokenDelete(ctx context.Context, args *aclIDWrite, reply *rpc.WriteResult) error {
	if !s.localToken(args.Args.ID) {
		if done, err := forwardACLPrimary(s, ctx, rpc.MethodACLTokenDelete, args, reply); done {
			return err
		}
	}
	if done, err := forwardWrite(s, ctx, rpc.MethodACLTokenDelete, args, reply); done {
		return err
	}
	if _, err := s.authorizeACL(args.Token, acl.AccessWrite); err != nil {
		return err
	}
	idx, err := s.aclApply(ctx, &aclCommand{Op: aclOpTokenDelete, ID: args.Args.ID})
	reply.Index, reply.OK = idx, err == nil
	return err
}

// aclTokenClone copies a token's links, identities, locality and expiry
// under a new AccessorID and SecretID.
func (s *Server) aclTokenClone(ctx context.Context, args *aclIDWrite, reply *acl.Token) error {
	if !s.localToken(args.Args.ID) {
		if done, err := forwardACLPrimary(s, ctx, rpc.MethodACLTokenClone, args, reply); done {
			return err
		}
	}
	if done, err := forwardToLeaderAny(s, ctx, rpc.MethodACLTokenClone, args, reply); done {
		return err
	}
	if _, err := s.authorizeACL(args.Token, acl.AccessWrite); err != nil {
		return err
	}
	var src acl.Token
	if err := s.readToken(args.Args.ID, &src); err != nil {
		return err
	}
	if src.AccessorID == acl.AnonymousAccessorID {
		return fmt.Errorf("%w: the anonymous token cannot be cloned", rpc.ErrBadRequest)
	}
	c := src
	c.AccessorID, c.SecretID = "", ""
	if args.Args.Description != "" {
		c.Description = args.Args.Description
	}
	exp := c.ExpirationTime
	c.ExpirationTime = nil
	if err := prepareNewToken(&c, time.Now()); err != nil {
		return err
	}
	c.ExpirationTime = exp
	if _, err := s.aclApply(ctx, &aclCommand{Op: aclOpTokenSet, Token: &c}); err != nil {
		return err
	}
	return s.readToken(c.AccessorID, reply)
}

func (s *Server) aclTokenList(ctx context.Context, args *aclListQuery, reply *rpc.Answer[[]*acl.Token]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodACLTokenList, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		auth, err := s.authorizeACL(args.Token, acl.AccessRead)
		if err != nil {
			return 0, err
		}
		toks, idx, err := acl.Tokens(tx, ws, args.Args.Policy, args.Args.Role)
		for i, t := range toks {
			toks[i] = redact(auth, t)
		}
		reply.Value = toks
		return idx, err
	})
}

// aclPolicySet creates (a new ID when none is given) or updates a policy.
func (s *Server) aclPolicySet(ctx context.Context, args *aclPolicyWrite, reply *acl.Policy) error {
	if done, err := forwardACLPrimary(s, ctx, rpc.MethodACLPolicySet, args, reply); done {
		return err
	}
	if done, err := forwardToLeaderAny(s, ctx, rpc.MethodACLPolicySet, args, reply); done {
		return err
	}
	if _, err := s.authorizeACL(args.Token, acl.AccessWrite); err != nil {
		return err
	}
	p := args.Args.Object
	if err := s.prepareSet(args.Args.Create, &p.ID, "policy", func(tx *memdb.Txn) (bool, error) {
		got, _, err := acl.PolicyByID(tx, nil, p.ID)
		return got != nil, err
	}); err != nil {
		return err
	}
	if _, err := s.aclApply(ctx, &aclCommand{Op: aclOpPolicySet, Policy: &p}); err != nil {
		return err
	}
	tx, _ := s.state.read()
	defer tx.Abort()
	got, _, err := acl.PolicyByID(tx, nil, p.ID)
	if err == nil && got != nil {
		*reply = *got
	}
	return err
}

// prepareSet picks a new object's ID, or checks an update's object exists.
func (s *Server) prepareSet(create bool, id *string, what string, exists func(tx *memdb.Txn) (bool, error)) error {
	if create {
		if *id != "" {
			return nil
		}
		v, err := acl.NewID()
		*id = v
		return err
	}
	if *id == "" {
		return fmt.Errorf("%w: a %s update needs its ID", rpc.ErrBadRequest, what)
	}
	tx, _ := s.state.read()
	ok, err := exists(tx)
	tx.Abort()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: cannot find %s %q to update", rpc.ErrNotFound, what, *id)
	}
	return nil
}

func (s *Server) aclPolicyRead(ctx context.Context, args *aclIDQuery, reply *rpc.Answer[*acl.Policy]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodACLPolicyRead, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		if _, err := s.authorizeACL(args.Token, acl.AccessRead); err != nil {
			return 0, err
		}
		var p *acl.Policy
		var idx uint64
		var err error
		if args.Args.ID != "" {
			p, idx, err = acl.PolicyByID(tx, ws, args.Args.ID)
		} else {
			p, idx, err = acl.PolicyByName(tx, ws, args.Args.Name)
		}
		if err == nil && p == nil {
			err = fmt.Errorf("%w: policy %q not found", rpc.ErrNotFound, args.Args.ID+args.Args.Name)
		}
		reply.Value = p
		return idx, err
	})
}

func (s *Server) aclPolicyDelete(ctx context.Context, args *aclIDWrite, reply *rpc.WriteResult) error {
	if done, err := forwardACLPrimary(s, ctx, rpc.MethodACLPolicyDelete, args, reply); done {
		return err
	}
	if done, err := forwardWrite(s, ctx, rpc.MethodACLPolicyDelete, args, reply); done {
		return err
	}
	if _, err := s.authorizeACL(args.Token, acl.AccessWrite); err != nil {
		return err
	}
	idx, err := s.aclApply(ctx, &aclCommand{Op: aclOpPolicyDelete, ID: args.Args.ID})
	reply.Index, reply.OK = idx, err == nil
	return err
}

func (s *Server) aclPolicyList(ctx context.Context, args *aclListQuery, reply *rpc.Answer[[]*acl.Policy]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodACLPolicyList, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		if _, err := s.authorizeACL(args.Token, acl.AccessRead); err != nil {
			return 0, err
		}
		ps, idx, err := acl.Policies(tx, ws)
		reply.Value = ps
		return idx, err
	})
}

// aclRoleSet creates (a new ID when none is given) or updates a role.
func (s *Server) aclRoleSet(ctx context.Context, args *aclRoleWrite, reply *acl.Role) error {
	if done, err := forwardACLPrimary(s, ctx, rpc.MethodACLRoleSet, args, reply); done {
		return err
	}
	if done, err := forwardToLeaderAny(s, ctx, rpc.MethodACLRoleSet, args, reply); done {
		return err
	}
	if _, err := s.authorizeACL(args.Token, acl.AccessWrite); err != nil {
		return err
	}
	r := args.Args.Object
	if err := s.prepareSet(args.Args.Create, &r.ID, "role", func(tx *memdb.Txn) (bool, error) {
		got, _, err := acl.RoleByID(tx, nil, r.ID)
		return got != nil, err
	}); err != nil {
		return err
	}
	if _, err := s.aclApply(ctx, &aclCommand{Op: aclOpRoleSet, Role: &r}); err != nil {
		return err
	}
	tx, _ := s.state.read()
	defer tx.Abort()
	got, _, err := acl.RoleByID(tx, nil, r.ID)
	if err == nil && got != nil {
		*reply = *got
	}
	return err
}

func (s *Server) aclRoleRead(ctx context.Context, args *aclIDQuery, reply *rpc.Answer[*acl.Role]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodACLRoleRead, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		if _, err := s.authorizeACL(args.Token, acl.AccessRead); err != nil {
			return 0, err
		}
		var r *acl.Role
		var idx uint64
		var err error
		if args.Args.ID != "" {
			r, idx, err = acl.RoleByID(tx, ws, args.Args.ID)
		} else {
			r, idx, err = acl.RoleByName(tx, ws, args.Args.Name)
		}
		if err == nil && r == nil {
			err = fmt.Errorf("%w: role %q not found", rpc.ErrNotFound, args.Args.ID+args.Args.Name)
		}
		reply.Value = r
		return idx, err
	})
}

func (s *Server) aclRoleDelete(ctx context.Context, args *aclIDWrite, reply *rpc.WriteResult) error {
	if done, err := forwardACLPrimary(s, ctx, rpc.MethodACLRoleDelete, args, reply); done {
		return err
	}
	if done, err := forwardWrite(s, ctx, rpc.MethodACLRoleDelete, args, reply); done {
		return err
	}
	if _, err := s.authorizeACL(args.Token, acl.AccessWrite); err != nil {
		return err
	}
	idx, err := s.aclApply(ctx, &aclCommand{Op: aclOpRoleDelete, ID: args.Args.ID})
	reply.Index, reply.OK = idx, err == nil
	return err
}

func (s *Server) aclRoleList(ctx context.Context, args *aclListQuery, reply *rpc.Answer[[]*acl.Role]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodACLRoleList, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		if _, err := s.authorizeACL(args.Token, acl.AccessRead); err != nil {
			return 0, err
		}
		rs, idx, err := acl.Roles(tx, ws, args.Args.Policy)
		reply.Value = rs
		return idx, err
	})
}

// aclResolve answers what the envelope's token may do here, for an agent
// that checks requests itself: any server answers from its own state.
func (s *Server) aclResolve(ctx context.Context, args *aclIDQuery, reply *rpc.Answer[acl.Identity]) error {
	args.AllowStale = true
	if done, err := forwardRead(s, ctx, rpc.MethodACLResolve, args, reply); done {
		return err
	}
	if !s.cfg.ACL.Enabled {
		return rpc.ErrACLDisabled
	}
	secret := args.Token
	if secret == "" {
		secret = acl.AnonymousSecretID
	}
	tx, _ := s.state.read()
	defer tx.Abort()
	tok, idx, err := acl.TokenBySecret(tx, nil, secret)
	if err != nil {
		return err
	}
	if tok == nil && s.aclSecondary() && !s.remote(args.Datacenter) {
		// Not replicated here (yet): the primary knows it, if anyone.
		args.Datacenter, args.ACLSecondary = s.cfg.ACL.PrimaryDatacenter, s.cfg.Datacenter
		return s.deniedNotPrimary(s.forwardDC(ctx, args.Datacenter, rpc.MethodACLResolve, args, reply))
	}
	if tok == nil || tok.Expired(time.Now()) || (tok.Local && args.ACLSecondary != "") {
		// A local token lives only in its datacenter: unknown elsewhere.
		return rpc.ErrACLNotFound
	}
	// The rules of the datacenter the token is used in: a secondary asks
	// for its own, and a policy limited to others grants nothing there.
	dc := s.cfg.Datacenter
	if args.ACLSecondary != "" {
		dc = args.ACLSecondary
	}
	rules, err := acl.TokenRules(tx, tok, dc)
	if err != nil {
		return err
	}
	reply.Value = acl.Identity{AccessorID: tok.AccessorID, Rules: rules, ExpirationTime: tok.ExpirationTime}
	reply.Index = idx
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}
