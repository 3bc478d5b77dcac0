package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/rpc"
)

// replicationKind is what one replication routine copies.
type replicationKind string

const (
	replicatePolicies replicationKind = "policies"
	replicateRoles    replicationKind = "roles"
	replicateTokens   replicationKind = "tokens"
)

// replicationWait is how long one blocking list query on the primary
// waits for a change.
const replicationWait = 5 * time.Minute

// aclReplication is a secondary leader's replication status, as
// /v1/acl/replication reports it.
type aclReplication struct {
	mu     sync.Mutex
	status rpc.ACLReplicationStatus
}

// aclSecondary reports whether this server's datacenter replicates ACLs
// from another, the primary.
func (s *Server) aclSecondary() bool {
	p := s.cfg.ACL.PrimaryDatacenter
	return s.cfg.ACL.Enabled && p != "" && p != s.cfg.Datacenter
}

// replicationToken is the token replication reads the primary with.
func (s *Server) replicationToken() string {
	if s.cfg.ACL.ReplicationToken == nil {
		return ""
	}
	return s.cfg.ACL.ReplicationToken()
}

// startACLReplication runs, on a secondary's leader, one routine per kind
// that follows the primary's list with blocking queries and applies the
// difference through Raft. The function it returns stops them.
func (s *Server) startACLReplication(ctx context.Context) func() {
	if !s.aclSecondary() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &s.acl.repl
	r.mu.Lock()
	r.status = rpc.ACLReplicationStatus{Enabled: true, Running: true, SourceDatacenter: s.cfg.ACL.PrimaryDatacenter, ReplicationType: "tokens"}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, kind := range []replicationKind{replicatePolicies, replicateRoles, replicateTokens} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.replicateLoop(ctx, kind)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
		r.mu.Lock()
		r.status.Running = false
		r.mu.Unlock()
	}
}

// replicateLoop replicates one kind until ctx ends, backing off (up to
// 10 s) while the primary is unreachable or refuses.
func (s *Server) replicateLoop(ctx context.Context, kind replicationKind) {
	var remoteIndex uint64
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		idx, err := s.replicateOnce(ctx, kind, remoteIndex)
		if ctx.Err() != nil {
			return
		}
		r := &s.acl.repl
		r.mu.Lock()
		if err != nil {
			r.status.LastError, r.status.LastErrorMessage = time.Now().UTC(), fmt.Sprintf("replicate %s from %s: %v", kind, s.cfg.ACL.PrimaryDatacenter, err)
		} else {
			r.status.LastSuccess = time.Now().UTC()
			switch kind {
			case replicatePolicies:
				r.status.ReplicatedIndex = idx
			case replicateRoles:
				r.status.ReplicatedRoleIndex = idx
			case replicateTokens:
				r.status.ReplicatedTokenIndex = idx
			}
		}
		r.mu.Unlock()
		if err == nil {
			remoteIndex, backoff = idx, 100*time.Millisecond
			continue
		}
		s.logger.Warn("acl replication", "kind", string(kind), "primary", s.cfg.ACL.PrimaryDatacenter, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// errNoReplicationToken is a secondary without acl.tokens.replication.
var errNoReplicationToken = errors.New("acl.tokens.replication is not set: a secondary datacenter needs a token of the primary with acl:write to replicate ACLs (set it in the config or with `meridian acl set-agent-token replication <secret>`)")

// replicateOnce waits for the primary's list of kind to move past
// remoteIndex, then applies what differs from the local copy. It returns
// the primary's index.
func (s *Server) replicateOnce(ctx context.Context, kind replicationKind, remoteIndex uint64) (uint64, error) {
	token := s.replicationToken()
	if token == "" {
		return 0, errNoReplicationToken
	}
	primary := s.cfg.ACL.PrimaryDatacenter
	q := &aclListQuery{QueryOptions: rpc.QueryOptions{Datacenter: primary, Token: token, AllowStale: true, MinIndex: remoteIndex, MaxWait: replicationWait, ACLSecondary: s.cfg.Datacenter}}
	cmd := &aclCommand{Op: aclOpReplicate, Kind: kind}
	var remoteIdx uint64
	var remote, local map[string]any
	tx, _ := s.state.read()
	defer tx.Abort()
	switch kind {
	case replicatePolicies:
		var reply rpc.Answer[[]*acl.Policy]
		if err := s.forwardDC(ctx, primary, rpc.MethodACLPolicyList, q, &reply); err != nil {
			return 0, err
		}
		ps, _, err := acl.Policies(tx, nil)
		if err != nil {
			return 0, err
		}
		remoteIdx, remote, local = reply.Index, byID(reply.Value, policyID), byID(ps, policyID)
	case replicateRoles:
		var reply rpc.Answer[[]*acl.Role]
		if err := s.forwardDC(ctx, primary, rpc.MethodACLRoleList, q, &reply); err != nil {
			return 0, err
		}
		rs, _, err := acl.Roles(tx, nil, "")
		if err != nil {
			return 0, err
		}
		remoteIdx, remote, local = reply.Index, byID(reply.Value, roleID), byID(rs, roleID)
	case replicateTokens:
		var reply rpc.Answer[[]*acl.Token]
		if err := s.forwardDC(ctx, primary, rpc.MethodACLTokenList, q, &reply); err != nil {
			return 0, err
		}
		ts, _, err := acl.Tokens(tx, nil, "", "")
		if err != nil {
			return 0, err
		}
		remoteIdx, remote, local = reply.Index, byID(reply.Value, tokenID), byID(ts, tokenID)
		for id, v := range remote {
			t := v.(*acl.Token)
			if t.Local {
				delete(remote, id) // the primary's own
				continue
			}
			if t.SecretID == hiddenSecret {
				return 0, fmt.Errorf("%w: the replication token may read the primary's tokens but not their secrets: it needs acl:write", rpc.ErrPermissionDenied)
			}
		}
		for id, v := range local {
			if v.(*acl.Token).Local {
				delete(local, id) // this datacenter's own: never replaced
			}
		}
	}
	tx.Abort()
	for id := range local {
		if _, ok := remote[id]; !ok {
			cmd.Delete = append(cmd.Delete, id)
		}
	}
	for id, v := range remote {
		if l, ok := local[id]; ok && sameObject(l, v) {
			continue
		}
		switch o := v.(type) {
		case *acl.Policy:
			cmd.Policies = append(cmd.Policies, o)
		case *acl.Role:
			cmd.Roles = append(cmd.Roles, o)
		case *acl.Token:
			cmd.Tokens = append(cmd.Tokens, o)
		}
	}
	if len(cmd.Delete)+len(cmd.Policies)+len(cmd.Roles)+len(cmd.Tokens) > 0 {
		cmd.Now = time.Now().UnixNano()
		if _, _, err := s.apply(ctx, msgACL, cmd); err != nil {
			return 0, fmt.Errorf("apply: %w", err)
		}
	}
	return max(remoteIdx, 1), nil
}

func policyID(p *acl.Policy) string { return p.ID }
func roleID(r *acl.Role) string     { return r.ID }
func tokenID(t *acl.Token) string   { return t.AccessorID }

func byID[T any](xs []T, id func(T) string) map[string]any {
	m := make(map[string]any, len(xs))
	for _, x := range xs {
		m[id(x)] = x
	}
	return m
}

// sameObject reports whether a local copy matches the primary's, Raft
// indexes aside (each datacenter has its own).
func sameObject(local, remote any) bool {
	return bytesOf(local) == bytesOf(remote)
}

func bytesOf(v any) string {
	switch o := v.(type) {
	case *acl.Policy:
		c := *o
		c.CreateIndex, c.ModifyIndex = 0, 0
		v = &c
	case *acl.Role:
		c := *o
		c.CreateIndex, c.ModifyIndex = 0, 0
		v = &c
	case *acl.Token:
		c := *o
		// A secondary keeps its own create time for the built-in
		// anonymous token.
		c.CreateIndex, c.ModifyIndex, c.CreateTime = 0, 0, time.Time{}
		v = &c
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "" // never equal to a marshalled object: replicated again
	}
	return string(b)
}

// aclReplicationStatus answers /v1/acl/replication from the leader.
func (s *Server) aclReplicationStatus(ctx context.Context, args *rpc.Query[struct{}], reply *rpc.Answer[rpc.ACLReplicationStatus]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodACLReplicationStatus, args, reply); done {
		return err
	}
	if !s.cfg.ACL.Enabled {
		return rpc.ErrACLDisabled
	}
	r := &s.acl.repl
	r.mu.Lock()
	reply.Value = r.status
	r.mu.Unlock()
	if !s.aclSecondary() {
		reply.Value = rpc.ACLReplicationStatus{}
	}
	reply.Index = 1
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}

// forwardACLPrimary sends an ACL write made in a secondary to the
// primary, the authority for policies, roles and global tokens. It
// reports whether it handled the request.
func forwardACLPrimary[A, R any](s *Server, ctx context.Context, method string, args *rpc.Write[A], reply *R) (bool, error) {
	if !s.aclSecondary() || s.remote(args.Datacenter) {
		return false, nil
	}
	args.Datacenter, args.ACLSecondary = s.cfg.ACL.PrimaryDatacenter, s.cfg.Datacenter
	return true, s.forwardDC(ctx, args.Datacenter, method, args, reply)
}

// aclSecondaryOf is an envelope that can say a secondary sent it to its
// ACL primary (rpc.QueryOptions, rpc.WriteOptions).
type aclSecondaryOf interface{ ACLSecondaryOf() string }

// checkACLPrimary refuses a request a secondary sent to this datacenter
// as its ACL primary when this one is not the primary itself: passing it
// on could go round forever (two datacenters naming each other
// primary_datacenter), and replicating from a copy would make the asker
// delete what the copy lacks. The error names the datacenters and the fix.
func (s *Server) checkACLPrimary(args any) error {
	sec, ok := args.(aclSecondaryOf)
	if !ok {
		return nil
	}
	from := sec.ACLSecondaryOf()
	if from == "" || !s.aclSecondary() {
		return nil
	}
	dc, primary := s.cfg.Datacenter, s.cfg.ACL.PrimaryDatacenter
	msg := fmt.Sprintf("datacenter %s names %s its primary_datacenter, but %s is not the ACL primary: it names %s; set primary_datacenter = %q in %s", from, dc, dc, primary, primary, from)
	if primary == from {
		msg = fmt.Sprintf("datacenters %s and %s each name the other primary_datacenter: exactly one datacenter must be the ACL primary (primary_datacenter its own name), and every other must name it", from, dc)
	}
	return &rpc.Error{Code: rpc.ErrACLNotPrimary.Code, Message: msg}
}

// localToken reports whether the token with accessor is one of this
// datacenter's local tokens.
func (s *Server) localToken(accessor string) bool {
	tx, _ := s.state.read()
	defer tx.Abort()
	tok, _, err := acl.TokenByAccessor(tx, nil, accessor)
	return err == nil && tok != nil && tok.Local
}
