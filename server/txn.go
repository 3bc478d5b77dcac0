package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// TxnOp is one operation of a transaction (Txn.Apply), Consul's
// api.TxnOp: exactly one field is set, an operation of kvstore on a key or
// of catalog on a node, a service or a check. The server owns it because it
// owns the Raft command that composes the two packages' operations; it is
// also the operation of that command (txnCommand), so its encoding is the
// log's: fields are only ever added.
type TxnOp struct {
	KV      *kvstore.TxnOp
	Node    *catalog.NodeTxnOp
	Service *catalog.ServiceTxnOp
	Check   *catalog.CheckTxnOp
}

// TxnRequest is a Txn.Apply transaction. One that only reads is answered
// without Raft: by any server when AllowStale is set, else by the leader
// (after confirming its leadership when RequireConsistent is set).
type TxnRequest struct {
	Ops               []*TxnOp
	AllowStale        bool
	RequireConsistent bool
}

// TxnResult is what one operation answered (Consul's api.TxnResult): the
// entry it read or wrote, in the field of its kind. Deletes answer none.
type TxnResult struct {
	KV      *kvstore.DirEntry
	Node    *catalog.Node
	Service *catalog.Service
	Check   *catalog.HealthCheck
}

// TxnResponse is what a transaction did: Results when it was applied (or
// read), Errors, and nothing applied, when it was rolled back.
type TxnResponse struct {
	Results []*TxnResult
	Errors  []*rpc.TxnError
}

// The envelopes of the Txn.Apply endpoint.
type (
	txnWrite = rpc.Write[TxnRequest]
	txnReply = rpc.Answer[TxnResponse]
)

// msgCatalogTxn is the Raft command of a transaction that holds catalog
// operations (a txnCommand). A transaction of KV operations only is still
// written as msgTxn (a kvstore.TxnRequest), which servers of earlier
// versions apply too.
const msgCatalogTxn msgType = 10

// txnCommand is a transaction as the Raft log holds it: every operation,
// in order, applied in one write transaction at one index, and Now, the
// leader's clock, for lock delays and the sessions a delete invalidates.
// Its encoding is the log's: fields are only ever added.
type txnCommand struct {
	Ops []*TxnOp
	Now int64
}

// errTxnRolledBack aborts the write transaction of a transaction whose
// operations failed; the FSM answers the operations' errors instead.
var errTxnRolledBack = errors.New("transaction rolled back")

// validateTxn checks a transaction before it goes to Raft: at most
// kvstore.MaxTxnOps operations (kvstore.ErrTooManyOps), each with exactly
// one kind set and valid for its package (kvstore.ErrInvalidTxn,
// catalog.ErrInvalidRequest).
func validateTxn(ops []*TxnOp) error {
	if len(ops) > kvstore.MaxTxnOps {
		return fmt.Errorf("transaction contains too many operations (%d > %d): %w", len(ops), kvstore.MaxTxnOps, kvstore.ErrTooManyOps)
	}
	for i, op := range ops {
		if err := validateTxnOp(op); err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	return nil
}

func validateTxnOp(op *TxnOp) error {
	n := 0
	if op != nil {
		for _, set := range []bool{op.KV != nil, op.Node != nil, op.Service != nil, op.Check != nil} {
			if set {
				n++
			}
		}
	}
	if n != 1 {
		return fmt.Errorf("%d kinds in one operation (want exactly one of KV, Node, Service or Check): %w", n, kvstore.ErrInvalidTxn)
	}
	switch {
	case op.KV != nil:
		return op.KV.Validate()
	case op.Node != nil:
		return op.Node.Validate()
	case op.Service != nil:
		return op.Service.Validate()
	default:
		return op.Check.Validate()
	}
}

// txnReadOnly reports whether every operation only reads.
func txnReadOnly(ops []*TxnOp) bool {
	for _, op := range ops {
		switch {
		case op.KV != nil && op.KV.ReadOnly():
		case op.Node != nil && op.Node.ReadOnly():
		case op.Service != nil && op.Service.ReadOnly():
		case op.Check != nil && op.Check.ReadOnly():
		default:
			return false
		}
	}
	return true
}

// txnApply runs a transaction: a read-only one from a read transaction
// (on any server when stale reads are allowed), any other through Raft,
// as one entry.
func (s *Server) txnApply(ctx context.Context, args *txnWrite, reply *txnReply) error {
	if done, err := s.replicatedWrite(ctx, rpc.MethodTxnApply, args, reply); done {
		return err
	}
	if s.remote(args.Datacenter) {
		return s.forwardDC(ctx, args.Datacenter, rpc.MethodTxnApply, args, reply)
	}
	req := args.Args
	if err := validateTxn(req.Ops); err != nil {
		return kvBadRequestIf(err)
	}
	readOnly := txnReadOnly(req.Ops)
	if !(readOnly && req.AllowStale) && !s.IsLeader() {
		return s.forwardToLeader(ctx, rpc.MethodTxnApply, args, reply)
	}
	now := time.Now()
	cmd := txnCommand{Ops: make([]*TxnOp, len(req.Ops)), Now: now.UnixNano()}
	kvOnly := true
	for i, op := range req.Ops {
		c := *op
		if c.Node != nil && c.Node.Node.Datacenter == "" && !c.Node.ReadOnly() {
			n := *c.Node
			n.Node.Datacenter = s.cfg.Datacenter
			c.Node = &n
		}
		kvOnly = kvOnly && c.KV != nil
		cmd.Ops[i] = &c
	}
	if readOnly {
		return s.txnRead(ctx, &req, &cmd, kvOnly, now, reply)
	}
	var (
		idx  uint64
		resp any
		err  error
	)
	if kvOnly {
		kv := kvstore.TxnRequest{Ops: make([]*kvstore.TxnOp, len(cmd.Ops)), Now: cmd.Now}
		for i, op := range cmd.Ops {
			kv.Ops[i] = op.KV
		}
		idx, resp, err = s.apply(ctx, msgTxn, &kv)
	} else {
		idx, resp, err = s.apply(ctx, msgCatalogTxn, &cmd)
	}
	if err != nil {
		return kvBadRequestIf(err)
	}
	switch out := resp.(type) {
	case *kvstore.TxnResponse:
		reply.Value = kvAnswer(out.Results, out.Errors)
	case *TxnResponse:
		reply.Value = *out
	default:
		return fmt.Errorf("txn: fsm answered %T", resp)
	}
	reply.Index = idx
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}

// txnRead answers a read-only transaction from a read transaction.
func (s *Server) txnRead(ctx context.Context, req *TxnRequest, cmd *txnCommand, kvOnly bool, now time.Time, reply *txnReply) error {
	if !req.AllowStale {
		if err := s.waitReady(ctx); err != nil {
			return err
		}
	}
	if req.RequireConsistent {
		if err := s.await(ctx, s.raft.VerifyLeader()); err != nil {
			return fmt.Errorf("consistent read: %w", err)
		}
	}
	tx, _ := s.readTxn()
	defer tx.Abort()
	reply.Value = runTxn(tx, 0, now, cmd.Ops)
	idx, err := kvstore.KVIndex(tx)
	if err != nil {
		return err
	}
	if !kvOnly {
		cidx, err := catalog.Index(tx)
		if err != nil {
			return err
		}
		idx = max(idx, cidx)
	}
	reply.Index = max(idx, 1)
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}

// applyKVTxn applies a transaction of KV operations only (msgTxn).
func (f *fsm) applyKVTxn(idx uint64, req *kvstore.TxnRequest) any {
	resp := &kvstore.TxnResponse{}
	err := f.state.write(func(tx *memdb.Txn) error {
		resp.Results, resp.Errors = kvstore.Txn(tx, idx, time.Unix(0, req.Now), req.Ops)
		if len(resp.Errors) > 0 {
			return errTxnRolledBack
		}
		return nil
	})
	if err != nil && !errors.Is(err, errTxnRolledBack) {
		return err
	}
	return resp
}

// applyCatalogTxn applies a transaction with catalog operations
// (msgCatalogTxn): all of it in one write transaction, or, when any
// operation fails, none of it.
func (f *fsm) applyCatalogTxn(idx uint64, body []byte) any {
	var cmd txnCommand
	if err := rpc.Unmarshal(body, &cmd); err != nil {
		return fmt.Errorf("decode catalog txn at index %d: %w", idx, err)
	}
	var resp TxnResponse
	err := f.state.write(func(tx *memdb.Txn) error {
		resp = runTxn(tx, idx, time.Unix(0, cmd.Now), cmd.Ops)
		if len(resp.Errors) > 0 {
			return errTxnRolledBack
		}
		return nil
	})
	if err != nil && !errors.Is(err, errTxnRolledBack) {
		return err
	}
	return &resp
}

// runTxn applies ops in order in tx at index idx (0, with a read
// transaction, for a read-only one). Every operation runs even after one
// failed, so that all failures are reported; when any did, the answer
// holds only Errors and the caller must abort tx.
func runTxn(tx *memdb.Txn, idx uint64, now time.Time, ops []*TxnOp) TxnResponse {
	var out TxnResponse
	for i, op := range ops {
		res, err := runTxnOp(tx, idx, now, op)
		if err != nil {
			out.Errors = append(out.Errors, &rpc.TxnError{OpIndex: i, What: err.Error()})
			continue
		}
		out.Results = append(out.Results, res...)
	}
	if len(out.Errors) > 0 {
		out.Results = nil
	} else if out.Results == nil {
		out.Results = []*TxnResult{}
	}
	return out
}

// runTxnOp applies one operation. A catalog delete first destroys the
// sessions bound to what it removes, and a check set critical those bound
// to that check, as the catalog's own deregister and register do.
func runTxnOp(tx *memdb.Txn, idx uint64, now time.Time, op *TxnOp) ([]*TxnResult, error) {
	switch {
	case op.KV != nil:
		res, errs := kvstore.Txn(tx, idx, now, []*kvstore.TxnOp{op.KV})
		if len(errs) > 0 {
			return nil, errors.New(errs[0].What)
		}
		return kvAnswer(res, nil).Results, nil
	case op.Node != nil:
		if isDelete(op.Node.Verb) {
			name := op.Node.Node.Node
			if name == "" {
				if n, err := catalog.NodeTxn(tx, idx, &catalog.NodeTxnOp{Verb: catalog.TxnGet, Node: catalog.Node{ID: op.Node.Node.ID}}); err == nil {
					name = n.Node
				}
			}
			if name != "" {
				if err := invalidateForDeregister(tx, idx, now, &catalog.DeregisterRequest{Node: name}); err != nil {
					return nil, err
				}
			}
		}
		n, err := catalog.NodeTxn(tx, idx, op.Node)
		if err != nil || n == nil {
			return nil, err
		}
		return []*TxnResult{{Node: n}}, nil
	case op.Service != nil:
		if isDelete(op.Service.Verb) {
			id := op.Service.Service.ID
			if id == "" {
				id = op.Service.Service.Service
			}
			if err := invalidateForDeregister(tx, idx, now, &catalog.DeregisterRequest{Node: op.Service.Node, ServiceID: id}); err != nil {
				return nil, err
			}
		}
		svc, err := catalog.ServiceTxn(tx, idx, op.Service)
		if err != nil || svc == nil {
			return nil, err
		}
		return []*TxnResult{{Service: svc}}, nil
	case op.Check != nil:
		c := &op.Check.Check
		if isDelete(op.Check.Verb) {
			id := c.CheckID
			if id == "" {
				id = c.Name
			}
			if err := invalidateForDeregister(tx, idx, now, &catalog.DeregisterRequest{Node: c.Node, CheckID: id}); err != nil {
				return nil, err
			}
		}
		stored, err := catalog.CheckTxn(tx, idx, op.Check)
		if err != nil || stored == nil {
			return nil, err
		}
		if !op.Check.ReadOnly() {
			if err := invalidateForRegister(tx, idx, now, &catalog.RegisterRequest{Node: stored.Node, Check: stored}); err != nil {
				return nil, err
			}
		}
		return []*TxnResult{{Check: stored}}, nil
	}
	return nil, fmt.Errorf("no operation: %w", kvstore.ErrInvalidTxn)
}

func isDelete(v catalog.TxnVerb) bool { return v == catalog.TxnDelete || v == catalog.TxnDeleteCAS }

// kvAnswer turns kvstore's answer into the endpoint's.
func kvAnswer(results []*kvstore.TxnResult, errs []*kvstore.TxnError) TxnResponse {
	var out TxnResponse
	if errs != nil {
		out.Errors = make([]*rpc.TxnError, len(errs))
		for i, e := range errs {
			out.Errors[i] = &rpc.TxnError{OpIndex: e.OpIndex, What: e.What}
		}
	}
	if results != nil {
		out.Results = make([]*TxnResult, len(results))
		for i, r := range results {
			out.Results[i] = &TxnResult{KV: r.KV}
		}
	}
	return out
}

// txnPerms is what a transaction needs of its token, operation by
// operation, as the single endpoints need it: key:read or key:write (on
// everything under the prefix for delete-tree); node:read or node:write on
// the node; service:read or service:write on the service, named by the
// operation and, when it changes one that exists, by the catalog too;
// for a check, what its node (node check) or its service needs.
func (s *Server) txnPerms(ops []*TxnOp) []aclPerm {
	tx, _ := s.state.read()
	defer tx.Abort()
	var perms []aclPerm
	for _, op := range ops {
		switch {
		case op == nil:
		case op.KV != nil:
			perms = append(perms, txnPerm(op.KV))
		case op.Node != nil:
			want := writeUnless(op.Node.ReadOnly())
			name := op.Node.Node.Node
			if name == "" {
				if n, err := catalog.NodeTxn(tx, 0, &catalog.NodeTxnOp{Verb: catalog.TxnGet, Node: catalog.Node{ID: op.Node.Node.ID}}); err == nil {
					name = n.Node
				}
			}
			perms = append(perms, aclPerm{res: acl.ResNode, seg: name, want: want})
		case op.Service != nil:
			want := writeUnless(op.Service.ReadOnly())
			svc := op.Service.Service
			stored, _ := catalog.ServiceTxn(tx, 0, &catalog.ServiceTxnOp{Verb: catalog.TxnGet, Node: op.Service.Node, Service: svc})
			if svc.Service != "" || stored == nil {
				name := svc.Service
				if name == "" {
					name = svc.ID
				}
				perms = append(perms, aclPerm{res: acl.ResService, seg: name, want: want})
			}
			if stored != nil && stored.Service != svc.Service {
				perms = append(perms, aclPerm{res: acl.ResService, seg: stored.Service, want: want})
			}
		case op.Check != nil:
			want := writeUnless(op.Check.ReadOnly())
			c := op.Check.Check
			checks := []catalog.HealthCheck{c}
			if stored, _ := catalog.CheckTxn(tx, 0, &catalog.CheckTxnOp{Verb: catalog.TxnGet, Check: c}); stored != nil {
				checks = append(checks, *stored)
			}
			for _, c := range checks {
				perms = append(perms, checkTxnPerm(tx, &c, want))
			}
		}
	}
	return perms
}

// checkTxnPerm: node c.Node for a node check; for a service check, the
// service's name from the catalog (else the check's ServiceName, else its
// ServiceID).
func checkTxnPerm(tx *memdb.Txn, c *catalog.HealthCheck, want acl.Access) aclPerm {
	if c.ServiceID == "" {
		return aclPerm{res: acl.ResNode, seg: c.Node, want: want}
	}
	name := c.ServiceName
	if svc, _ := catalog.ServiceTxn(tx, 0, &catalog.ServiceTxnOp{Verb: catalog.TxnGet, Node: c.Node, Service: catalog.Service{ID: c.ServiceID}}); svc != nil {
		name = svc.Service
	}
	if name == "" {
		name = c.ServiceID
	}
	return aclPerm{res: acl.ResService, seg: name, want: want}
}

func writeUnless(readOnly bool) acl.Access {
	if readOnly {
		return acl.AccessRead
	}
	return acl.AccessWrite
}
