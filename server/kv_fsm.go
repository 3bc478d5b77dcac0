package server

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// kvReapRequest is the command the leader applies periodically: forget the
// lock delays over at Now, and the tombstones of deletes at or before
// TombstonesUpTo (0: none).
type kvReapRequest struct {
	Now            int64
	TombstonesUpTo uint64
}

// applyKV applies the KV, session and transaction commands. A KV write
// answers its outcome (bool); a transaction answers its
// kvstore.TxnResponse; a failure answers an error and changes nothing.
func (f *fsm) applyKV(idx uint64, t msgType, body []byte) any {
	switch t {
	case msgKV:
		var req kvstore.KVRequest
		if err := rpc.Unmarshal(body, &req); err != nil {
			return fmt.Errorf("decode kv write at index %d: %w", idx, err)
		}
		var ok bool
		err := f.state.write(func(tx *memdb.Txn) error {
			var err error
			ok, err = kvstore.KVApply(tx, idx, &req)
			return err
		})
		if err != nil {
			return err
		}
		return ok
	case msgSession:
		var req kvstore.SessionRequest
		if err := rpc.Unmarshal(body, &req); err != nil {
			return fmt.Errorf("decode session write at index %d: %w", idx, err)
		}
		return f.state.write(func(tx *memdb.Txn) error {
			switch req.Op {
			case kvstore.SessionOpCreate:
				if err := sessionBindingsHealthy(tx, &req.Session); err != nil {
					return err
				}
				return kvstore.SessionCreate(tx, idx, &req.Session)
			case kvstore.SessionOpDestroy:
				return destroySession(tx, idx, time.Unix(0, req.Now), req.Session.ID)
			}
			return fmt.Errorf("unknown session operation %q: %w", req.Op, kvstore.ErrInvalidSession)
		})
	case msgTxn:
		var req kvstore.TxnRequest
		if err := rpc.Unmarshal(body, &req); err != nil {
			return fmt.Errorf("decode txn at index %d: %w", idx, err)
		}
		return f.applyKVTxn(idx, &req)
	case msgKVReap:
		var req kvReapRequest
		if err := rpc.Unmarshal(body, &req); err != nil {
			return fmt.Errorf("decode kv reap at index %d: %w", idx, err)
		}
		return f.state.write(func(tx *memdb.Txn) error {
			if err := kvstore.ReapLockDelays(tx, time.Unix(0, req.Now)); err != nil {
				return err
			}
			if req.TombstonesUpTo == 0 {
				return nil
			}
			return kvstore.KVReapTombstones(tx, idx, req.TombstonesUpTo)
		})
	}
	return fmt.Errorf("command type %d is not a kv command", t)
}

// errSessionBinding refuses a session whose node or checks are missing or
// critical.
var errSessionBinding = errors.New("invalid session binding")

// sessionBindingsHealthy checks, as Consul does before creating a session,
// that its node exists and that every check it is bound to exists on that
// node and is not critical.
func sessionBindingsHealthy(tx *memdb.Txn, sess *kvstore.Session) error {
	_, node, err := catalog.GetNode(tx, nil, sess.Node)
	if err != nil {
		return err
	}
	if node == nil {
		return fmt.Errorf("missing node %q for session: %w", sess.Node, errSessionBinding)
	}
	ids := sess.CheckIDs()
	if len(ids) == 0 {
		return nil
	}
	_, checks, err := catalog.NodeChecks(tx, nil, sess.Node)
	if err != nil {
		return err
	}
	for _, id := range ids {
		var found *catalog.HealthCheck
		for _, c := range checks {
			if strings.EqualFold(c.CheckID, id) {
				found = c
			}
		}
		if found == nil {
			return fmt.Errorf("missing check %q on node %q for session: %w", id, sess.Node, errSessionBinding)
		}
		if found.Status == catalog.HealthCritical {
			return fmt.Errorf("check %q on node %q is in critical state: %w", id, sess.Node, errSessionBinding)
		}
	}
	return nil
}

// invalidateForRegister destroys, in the register's own transaction, the
// sessions bound to checks the register made critical.
func invalidateForRegister(tx *memdb.Txn, idx uint64, now time.Time, req *catalog.RegisterRequest) error {
	checks := req.Checks
	if req.Check != nil {
		checks = append([]*catalog.HealthCheck{req.Check}, checks...)
	}
	for _, c := range checks {
		if c == nil || c.Status != catalog.HealthCritical {
			continue
		}
		node := c.Node
		if node == "" {
			node = req.Node
		}
		sessions, err := kvstore.SessionsForCheck(tx, node, c.CheckID)
		if err != nil {
			return err
		}
		if err := destroySessions(tx, idx, now, sessions); err != nil {
			return err
		}
	}
	return nil
}

// invalidateForDeregister destroys the sessions bound to what a deregister
// removes: the node, a check, or the checks of a service.
func invalidateForDeregister(tx *memdb.Txn, idx uint64, now time.Time, req *catalog.DeregisterRequest) error {
	if req.Node == "" {
		return nil // catalog.Deregister refuses it
	}
	var sessions []*kvstore.Session
	add := func(s []*kvstore.Session, err error) error {
		sessions = append(sessions, s...)
		return err
	}
	if req.ServiceID == "" && req.CheckID == "" {
		if err := add(kvstore.SessionsForNode(tx, req.Node)); err != nil {
			return err
		}
	}
	if req.CheckID != "" {
		if err := add(kvstore.SessionsForCheck(tx, req.Node, req.CheckID)); err != nil {
			return err
		}
	}
	if req.ServiceID != "" {
		_, checks, err := catalog.NodeChecks(tx, nil, req.Node)
		if err != nil {
			return err
		}
		for _, c := range checks {
			if c.ServiceID != "" && strings.EqualFold(c.ServiceID, req.ServiceID) {
				if err := add(kvstore.SessionsForCheck(tx, req.Node, c.CheckID)); err != nil {
					return err
				}
			}
		}
	}
	return destroySessions(tx, idx, now, sessions)
}

func destroySessions(tx *memdb.Txn, idx uint64, now time.Time, sessions []*kvstore.Session) error {
	for _, s := range sessions {
		if err := destroySession(tx, idx, now, s.ID); err != nil {
			return err
		}
	}
	return nil
}
