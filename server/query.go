package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/federation"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// Query and write types of the prepared query endpoints.
type (
	queryApplyWrite   = rpc.Write[catalog.QueryApplyRequest]
	queryIDQuery      = rpc.Query[catalog.QueryRequest]
	queryExecQuery    = rpc.Query[catalog.QueryExecuteRequest]
	queryRemoteQuery  = rpc.Query[catalog.QueryExecuteRemoteRequest]
	queryExecAnswer   = rpc.Answer[catalog.QueryExecuteResponse]
	queryExplainReply = rpc.Answer[catalog.QueryExplainResponse]
)

// nearAgent is the Near value that names the agent that asked.
const nearAgent = "_agent"

// registerQueryEndpoints registers the PreparedQuery endpoints.
func (s *Server) registerQueryEndpoints() {
	register(s, rpc.MethodQueryApply, s.queryApply)
	register(s, rpc.MethodQueryGet, s.queryGet)
	register(s, rpc.MethodQueryList, s.queryList)
	register(s, rpc.MethodQueryExecute, s.queryExecute)
	register(s, rpc.MethodQueryExecuteRemote, s.queryExecuteRemote)
	register(s, rpc.MethodQueryExplain, s.queryExplain)
}

// queryApply creates, updates or deletes a prepared query. The leader picks
// a new query's ID, and refuses, before Raft, a definition that fails
// Validate, a failover datacenter nobody knows, an unknown session, and an
// update or delete of a query that does not exist.
func (s *Server) queryApply(ctx context.Context, args *queryApplyWrite, reply *catalog.QueryApplyResult) error {
	if done, err := forwardToLeaderAny(s, ctx, rpc.MethodQueryApply, args, reply); done {
		return err
	}
	req := args.Args
	q := &req.Query
	switch req.Op {
	case catalog.QueryOpCreate:
		id, err := newSessionID()
		if err != nil {
			return err
		}
		q.ID = id
	case catalog.QueryOpUpdate, catalog.QueryOpDelete:
		if q.ID == "" {
			return fmt.Errorf("%w: missing query ID", rpc.ErrBadRequest)
		}
		tx, _ := s.readTxn()
		_, existing, err := catalog.QueryGet(tx, nil, q.ID)
		tx.Abort()
		if err != nil {
			return err
		}
		if existing == nil {
			return fmt.Errorf("prepared query %q: %w", q.ID, rpc.ErrNotFound)
		}
	default:
		return fmt.Errorf("%w: unknown prepared query operation %q", rpc.ErrBadRequest, req.Op)
	}
	if req.Op != catalog.QueryOpDelete {
		q.Token, q.CreateIndex, q.ModifyIndex = "", 0, 0
		if err := s.checkQuery(q); err != nil {
			return queryError(err)
		}
	}
	idx, _, err := s.apply(ctx, msgQuery, &req)
	if err != nil {
		return queryError(err)
	}
	reply.Index, reply.ID = idx, q.ID
	return nil
}

// checkQuery is what the leader checks of a definition beyond Validate:
// that every failover datacenter is known (a template's interpolated ones
// are known only at execution) and that its session exists.
func (s *Server) checkQuery(q *catalog.PreparedQuery) error {
	if err := q.Validate(); err != nil {
		return err
	}
	for _, dc := range q.Service.Failover.FailoverDatacenters() {
		if q.IsTemplate() && strings.Contains(dc, "${") {
			continue
		}
		if known, _ := s.DatacenterStatus(dc); !known {
			return fmt.Errorf("%w: Service.Failover: datacenter %q is unknown", catalog.ErrInvalidQuery, dc)
		}
	}
	if q.Session != "" {
		tx, _ := s.readTxn()
		_, sess, err := kvstore.SessionGet(tx, nil, q.Session)
		tx.Abort()
		if err != nil {
			return err
		}
		if sess == nil {
			return fmt.Errorf("%w: session %q does not exist", catalog.ErrInvalidQuery, q.Session)
		}
	}
	return nil
}

// queryError marks the catalog's refusals: a bad definition is the
// caller's fault (400), a missing query is 404.
func queryError(err error) error {
	switch {
	case errors.Is(err, catalog.ErrInvalidQuery):
		return fmt.Errorf("%w: %w", rpc.ErrBadRequest, err)
	case errors.Is(err, catalog.ErrQueryNotFound):
		return fmt.Errorf("%w: %w", rpc.ErrNotFound, err)
	}
	return err
}

// applyQuery is the FSM's side of msgQuery. A query tied to a session
// needs the session to exist when it is applied, as in Consul.
func (f *fsm) applyQuery(idx uint64, body []byte) any {
	var req catalog.QueryApplyRequest
	if err := rpc.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("decode prepared query write at index %d: %w", idx, err)
	}
	return f.state.write(func(tx *memdb.Txn) error {
		q := &req.Query
		switch req.Op {
		case catalog.QueryOpCreate, catalog.QueryOpUpdate:
			_, existing, err := catalog.QueryGet(tx, nil, q.ID)
			if err != nil {
				return err
			}
			if req.Op == catalog.QueryOpUpdate && existing == nil {
				return fmt.Errorf("update prepared query %q: %w", q.ID, catalog.ErrQueryNotFound)
			}
			if q.Session != "" {
				_, sess, err := kvstore.SessionGet(tx, nil, q.Session)
				if err != nil {
					return err
				}
				if sess == nil {
					return fmt.Errorf("%w: session %q does not exist", catalog.ErrInvalidQuery, q.Session)
				}
			}
			return catalog.QuerySet(tx, idx, q)
		case catalog.QueryOpDelete:
			return catalog.QueryDelete(tx, idx, q.ID)
		}
		return fmt.Errorf("unknown prepared query operation %q: %w", req.Op, catalog.ErrInvalidQuery)
	})
}

// destroySession ends a session and deletes the prepared queries tied to
// it, as Consul does; every session destroy of the FSM goes through it.
func destroySession(tx *memdb.Txn, idx uint64, now time.Time, id string) error {
	if err := kvstore.SessionDestroy(tx, idx, now, id); err != nil {
		return err
	}
	return catalog.QueryDeleteSession(tx, idx, id)
}

func (s *Server) queryGet(ctx context.Context, args *queryIDQuery, reply *rpc.Answer[*catalog.PreparedQuery]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodQueryGet, args, reply); done {
		return err
	}
	err := s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, q, err := catalog.QueryGet(tx, ws, args.Args.IDOrName)
		reply.Value = q
		return idx, err
	})
	if err == nil && reply.Value == nil {
		err = fmt.Errorf("prepared query %q: %w", args.Args.IDOrName, rpc.ErrNotFound)
	}
	return err
}

func (s *Server) queryList(ctx context.Context, args *rpc.Query[struct{}], reply *rpc.Answer[[]*catalog.PreparedQuery]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodQueryList, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, qs, err := catalog.QueryList(tx, ws)
		reply.Value = qs
		return idx, err
	})
}

// resolveQuery finds and renders the query idOrName names, 404 when none.
func (s *Server) resolveQuery(idOrName string) (uint64, *catalog.PreparedQuery, error) {
	tx, _ := s.readTxn()
	defer tx.Abort()
	idx, q, err := catalog.QueryResolve(tx, nil, idOrName)
	if err != nil {
		return 0, nil, queryError(err)
	}
	if q == nil {
		return 0, nil, fmt.Errorf("prepared query %q: %w", idOrName, rpc.ErrNotFound)
	}
	return idx, q, nil
}

func (s *Server) queryExplain(ctx context.Context, args *queryIDQuery, reply *queryExplainReply) error {
	if done, err := forwardRead(s, ctx, rpc.MethodQueryExplain, args, reply); done {
		return err
	}
	idx, q, err := s.resolveQuery(args.Args.IDOrName)
	if err != nil {
		return err
	}
	reply.Value.Query = *q
	reply.Index = max(idx, 1)
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}

// queryExecute runs a query: here first, then, when no instance
// qualifies, in the failover datacenters in federation.Failover order, until
// one answers instances. A datacenter that is unknown or cannot be reached
// counts as tried, and the walk goes on.
func (s *Server) queryExecute(ctx context.Context, args *queryExecQuery, reply *queryExecAnswer) error {
	if done, err := forwardRead(s, ctx, rpc.MethodQueryExecute, args, reply); done {
		return err
	}
	qidx, q, err := s.resolveQuery(args.Args.IDOrName)
	if err != nil {
		return err
	}
	near := args.Near
	if near == "" {
		near = q.Service.Near
	}
	if near == nearAgent {
		near = args.Args.Agent
	}
	if err := s.executeLocal(q, args.Args.Limit, near, reply); err != nil {
		return err
	}
	reply.Index = max(reply.Index, qidx)
	if len(reply.Value.Nodes) > 0 {
		return nil
	}
	f := federation.Failover{NearestN: q.Service.Failover.NearestN, Datacenters: q.Service.Failover.FailoverDatacenters()}
	for _, dc := range f.Order(s.Datacenters(), s.cfg.Datacenter) {
		reply.Value.Failovers++
		remote := queryRemoteQuery{
			QueryOptions: rpc.QueryOptions{Datacenter: dc, AllowStale: args.AllowStale, RequireConsistent: args.RequireConsistent, Token: args.Token},
			Args:         catalog.QueryExecuteRemoteRequest{Query: *q, Limit: args.Args.Limit},
		}
		var rr queryExecAnswer
		if err := s.forwardDC(ctx, dc, rpc.MethodQueryExecuteRemote, &remote, &rr); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.logger.Warn("prepared query failover failed", "query", q.ID, "dc", dc, "error", err)
			continue
		}
		reply.QueryMeta = rr.QueryMeta
		reply.Value.Datacenter = rr.Value.Datacenter
		reply.Value.Nodes = rr.Value.Nodes
		if reply.Value.Nodes == nil {
			reply.Value.Nodes = []*catalog.CheckServiceNode{}
		}
		if len(rr.Value.Nodes) > 0 {
			break
		}
	}
	return nil
}

// queryExecuteRemote runs a query another datacenter resolved, here only.
func (s *Server) queryExecuteRemote(ctx context.Context, args *queryRemoteQuery, reply *queryExecAnswer) error {
	if done, err := forwardRead(s, ctx, rpc.MethodQueryExecuteRemote, args, reply); done {
		return err
	}
	return s.executeLocal(&args.Args.Query, args.Args.Limit, "", reply)
}

// executeLocal runs a resolved query on this server's catalog: the
// qualifying instances shuffled, then sorted by distance from near when it
// names a node with a coordinate, then cut to limit (0: all).
func (s *Server) executeLocal(q *catalog.PreparedQuery, limit int, near string, reply *queryExecAnswer) error {
	tx, _ := s.readTxn()
	defer tx.Abort()
	idx, nodes, err := catalog.QueryNodes(tx, nil, &q.Service)
	if err != nil {
		return err
	}
	rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	if near != "" {
		if err := catalog.SortByDistance(tx, near, nodes, func(n *catalog.CheckServiceNode) string { return n.Node.Node }); err != nil {
			return err
		}
	}
	if limit > 0 && len(nodes) > limit {
		nodes = nodes[:limit]
	}
	reply.Value = catalog.QueryExecuteResponse{
		Service:    q.Service.Service,
		Nodes:      nodes,
		DNS:        q.DNS,
		Datacenter: s.cfg.Datacenter,
	}
	reply.Index = max(idx, 1)
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}
