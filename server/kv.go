package server

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// Query and write types of the KV and session endpoints.
type (
	kvWrite      = rpc.Write[kvstore.KVRequest]
	keyQuery     = rpc.Query[kvstore.KeyRequest]
	sessionWrite = rpc.Write[kvstore.SessionRequest]
	sessionQuery = rpc.Query[kvstore.SessionQuery]
)

// registerKVEndpoints registers the KV, session and txn endpoints.
func (s *Server) registerKVEndpoints() {
	s.fsm.sessionTTL = newSessionTimers()
	register(s, rpc.MethodKVApply, s.kvApply)
	register(s, rpc.MethodKVGet, s.kvGet)
	register(s, rpc.MethodKVList, s.kvList)
	register(s, rpc.MethodKVKeys, s.kvKeys)
	register(s, rpc.MethodSessionApply, s.sessionApply)
	register(s, rpc.MethodSessionGet, s.sessionGet)
	register(s, rpc.MethodSessionList, s.sessionList)
	register(s, rpc.MethodSessionNodeSessions, s.nodeSessions)
	register(s, rpc.MethodSessionRenew, s.sessionRenew)
	register(s, rpc.MethodTxnApply, s.txnApply)
}

// forwardToLeaderAny sends a write whose reply is not an rpc.WriteResult
// to another datacenter when it names one, or to the leader when this
// server is not it. It reports whether it handled
// the request.
func forwardToLeaderAny[A, R any](s *Server, ctx context.Context, method string, args *rpc.Write[A], reply *R) (bool, error) {
	if s.remote(args.Datacenter) {
		return true, s.forwardDC(ctx, args.Datacenter, method, args, reply)
	}
	if s.IsLeader() {
		// A new leader checks writes against its state only once it
		// holds everything committed before it.
		err := s.waitReady(ctx)
		return err != nil, err
	}
	return true, s.forwardToLeader(ctx, method, args, reply)
}

func (s *Server) kvApply(ctx context.Context, args *kvWrite, reply *rpc.WriteResult) error {
	if done, err := s.replicatedWrite(ctx, rpc.MethodKVApply, args, reply); done {
		return err
	}
	if done, err := forwardWrite(s, ctx, rpc.MethodKVApply, args, reply); done {
		return err
	}
	req := args.Args
	if req.Op != kvstore.VerbDeleteTree {
		if err := kvstore.ValidateKey(req.Key); err != nil {
			return kvBadRequestIf(err)
		}
	}
	if len(req.Value) > kvstore.MaxValueSize {
		return kvBadRequestIf(fmt.Errorf("value for key %q is %d bytes: %w", req.Key, len(req.Value), kvstore.ErrValueTooLarge))
	}
	now := time.Now()
	req.Now = now.UnixNano()
	if req.Op == kvstore.VerbLock || req.Op == kvstore.VerbUnlock {
		// Refuse an unknown session or a lock under delay before Raft, as
		// Consul's leader does; the FSM checks both again.
		tx, _ := s.readTxn()
		_, sess, err := kvstore.SessionGet(tx, nil, req.Session)
		var until time.Time
		if err == nil && sess != nil && req.Op == kvstore.VerbLock {
			until, err = kvstore.KVLockDelay(tx, req.Key)
		}
		tx.Abort()
		if err != nil {
			return err
		}
		if sess == nil {
			return fmt.Errorf("%w: invalid session %q", rpc.ErrBadRequest, req.Session)
		}
		if until.After(now) {
			reply.OK = false
			return nil
		}
	}
	idx, resp, err := s.apply(ctx, msgKV, &req)
	if err != nil {
		return kvBadRequestIf(err)
	}
	reply.Index = idx
	reply.OK, _ = resp.(bool)
	return nil
}

func (s *Server) kvGet(ctx context.Context, args *keyQuery, reply *rpc.Answer[*kvstore.DirEntry]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodKVGet, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, e, err := kvstore.KVGet(tx, ws, args.Args.Key)
		reply.Value = e
		return idx, err
	})
}

func (s *Server) kvList(ctx context.Context, args *keyQuery, reply *rpc.Answer[[]*kvstore.DirEntry]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodKVList, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, es, err := kvstore.KVList(tx, ws, args.Args.Key)
		reply.Value = es
		return idx, err
	})
}

func (s *Server) kvKeys(ctx context.Context, args *keyQuery, reply *rpc.Answer[[]string]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodKVKeys, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, keys, err := kvstore.KVKeys(tx, ws, args.Args.Key, args.Args.Separator)
		reply.Value = keys
		return idx, err
	})
}

func (s *Server) sessionApply(ctx context.Context, args *sessionWrite, reply *kvstore.SessionResult) error {
	if done, err := forwardToLeaderAny(s, ctx, rpc.MethodSessionApply, args, reply); done {
		return err
	}
	req := args.Args
	req.Now = time.Now().UnixNano()
	switch req.Op {
	case kvstore.SessionOpCreate:
		id, err := newSessionID()
		if err != nil {
			return err
		}
		req.Session.ID = id
		req.Session.CreateIndex, req.Session.ModifyIndex = 0, 0
		if req.Session.LockDelay > kvstore.MaxLockDelay {
			req.Session.LockDelay = kvstore.MaxLockDelay
		}
		if err := kvstore.ValidateSession(&req.Session); err != nil {
			return kvBadRequestIf(err)
		}
	case kvstore.SessionOpDestroy:
		if req.Session.ID == "" {
			return fmt.Errorf("%w: missing session ID", rpc.ErrBadRequest)
		}
	default:
		return fmt.Errorf("%w: unknown session operation %q", rpc.ErrBadRequest, req.Op)
	}
	idx, _, err := s.apply(ctx, msgSession, &req)
	if err != nil {
		return kvBadRequestIf(err)
	}
	reply.Index, reply.ID = idx, req.Session.ID
	switch req.Op {
	case kvstore.SessionOpCreate:
		if ttl, _ := time.ParseDuration(req.Session.TTL); ttl > 0 {
			s.fsm.sessionTTL.reset(req.Session.ID, ttl)
		}
	case kvstore.SessionOpDestroy:
		s.fsm.sessionTTL.clear(req.Session.ID)
	}
	return nil
}

func (s *Server) sessionGet(ctx context.Context, args *sessionQuery, reply *rpc.Answer[*kvstore.Session]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodSessionGet, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, sess, err := kvstore.SessionGet(tx, ws, args.Args.ID)
		reply.Value = sess
		return idx, err
	})
}

func (s *Server) sessionList(ctx context.Context, args *sessionQuery, reply *rpc.Answer[[]*kvstore.Session]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodSessionList, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, list, err := kvstore.SessionList(tx, ws)
		reply.Value = list
		return idx, err
	})
}

func (s *Server) nodeSessions(ctx context.Context, args *sessionQuery, reply *rpc.Answer[[]*kvstore.Session]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodSessionNodeSessions, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, list, err := kvstore.NodeSessions(tx, ws, args.Args.Node)
		reply.Value = list
		return idx, err
	})
}

// sessionRenew restarts a session's TTL timer on the leader and answers the
// session, or rpc.ErrNotFound when it no longer exists.
func (s *Server) sessionRenew(ctx context.Context, args *rpc.Write[kvstore.SessionQuery], reply *rpc.Answer[*kvstore.Session]) error {
	if done, err := forwardToLeaderAny(s, ctx, rpc.MethodSessionRenew, args, reply); done {
		return err
	}
	tx, _ := s.readTxn()
	idx, sess, err := kvstore.SessionGet(tx, nil, args.Args.ID)
	tx.Abort()
	if err != nil {
		return err
	}
	if sess == nil {
		return fmt.Errorf("%w: session %q", rpc.ErrNotFound, args.Args.ID)
	}
	if ttl, _ := time.ParseDuration(sess.TTL); ttl > 0 {
		s.fsm.sessionTTL.reset(sess.ID, ttl)
	}
	reply.Value, reply.Index = sess, max(idx, 1)
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}

// kvBadRequestIf marks kvstore's and the session checks' refusals as the
// caller's fault, so the HTTP API answers 400 with the reason.
func kvBadRequestIf(err error) error {
	for _, target := range []error{
		kvstore.ErrInvalidKey, kvstore.ErrValueTooLarge, kvstore.ErrSessionNotFound,
		kvstore.ErrSessionExists, kvstore.ErrInvalidSession, kvstore.ErrInvalidTxn,
		kvstore.ErrTooManyOps, errSessionBinding,
	} {
		if errors.Is(err, target) {
			return fmt.Errorf("%w: %w", rpc.ErrBadRequest, err)
		}
	}
	return badRequestIf(err)
}

// newSessionID returns a random (version 4) UUID.
func newSessionID() (string, error) {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate session id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
