package kvstore

import (
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// SessionCreate stores a new session under the ID the caller chose (a
// UUID), with CreateIndex and ModifyIndex idx and Behavior "release" when
// empty. The session must pass ValidateSession; an ID in use fails with
// ErrSessionExists. The server checks, before applying, that the node and
// the checks named by s.CheckIDs exist and are not critical.
func SessionCreate(tx *memdb.Txn, idx uint64, s *Session) error {
	if err := ValidateSession(s); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	existing, err := getSession(tx, s.ID)
	if err != nil {
		return fmt.Errorf("create session %q: %w", s.ID, err)
	}
	if existing != nil {
		return fmt.Errorf("create session %q: %w", s.ID, ErrSessionExists)
	}
	ns := s.clone()
	if ns.Behavior == "" {
		ns.Behavior = BehaviorRelease
	}
	ns.CreateIndex, ns.ModifyIndex = idx, idx
	if err := tx.Insert(tableSessions, ns); err != nil {
		return fmt.Errorf("create session %q: %w", s.ID, err)
	}
	return wrapIf(bumpIndex(tx, tableSessions, idx), "create session %q", s.ID)
}

// SessionDestroy removes a session, which is also how every invalidation
// (node gone, bound check critical, TTL lapsed) is applied. Each key the
// session holds is released (Behavior "release": the holder is cleared,
// LockIndex stays) or deleted ("delete"), and, when the session has a lock
// delay, no session may lock those keys before now plus that delay (capped
// at MaxLockDelay). now is the leader's clock when it decided to destroy,
// carried in the Raft command. An absent session is not an error.
func SessionDestroy(tx *memdb.Txn, idx uint64, now time.Time, id string) error {
	s, err := getSession(tx, id)
	if err != nil || s == nil {
		return wrapIf(err, "destroy session %q", id)
	}
	held, err := collect[*lockRow](tx, tableLocks, "session", id)
	if err != nil {
		return fmt.Errorf("destroy session %q: %w", id, err)
	}
	until := now.Add(min(s.LockDelay, MaxLockDelay)).UnixNano()
	for _, l := range held {
		var e *DirEntry
		e, err = getEntry(tx, l.Key)
		switch {
		case err != nil:
		case e == nil:
			err = fmt.Errorf("key %q is locked but missing", l.Key)
		case s.Behavior == BehaviorDelete:
			err = deleteEntry(tx, idx, e.Key, e.Session)
		default:
			ne := *e
			ne.Session = ""
			_, err = setEntry(tx, idx, &ne, e, true)
		}
		if err == nil && s.LockDelay > 0 {
			err = setLockDelay(tx, l.Key, until)
		}
		if err != nil {
			return fmt.Errorf("destroy session %q: %w", id, err)
		}
	}
	if err := tx.Delete(tableSessions, s); err != nil {
		return fmt.Errorf("destroy session %q: %w", id, err)
	}
	return wrapIf(bumpIndex(tx, tableSessions, idx), "destroy session %q", id)
}

// SessionGet returns the session with that ID, or nil and no error when
// there is none, with the sessions table's index. ws receives the
// session's own channel.
func SessionGet(tx *memdb.Txn, ws memdb.WatchSet, id string) (uint64, *Session, error) {
	ch, raw, err := tx.FirstWatch(tableSessions, "id", id)
	if err != nil {
		return 0, nil, fmt.Errorf("session %q: %w", id, err)
	}
	ws.Add(ch)
	idx, err := indexValue(tx, tableSessions)
	if err != nil {
		return 0, nil, fmt.Errorf("session %q: %w", id, err)
	}
	s, _ := raw.(*Session)
	return idx, s, nil
}

// SessionList returns every session, ordered by ID, with the sessions
// table's index.
func SessionList(tx *memdb.Txn, ws memdb.WatchSet) (uint64, []*Session, error) {
	idx, err := watchIndex(tx, ws, tableSessions)
	if err != nil {
		return 0, nil, fmt.Errorf("sessions: %w", err)
	}
	out, err := collect[*Session](tx, tableSessions, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("sessions: %w", err)
	}
	return idx, nonNil(out), nil
}

// NodeSessions returns the sessions of a node (case-insensitive), ordered
// by ID, with the sessions table's index. ws receives a channel that fires
// when the node's sessions change (and, as memdb's radix nodes split, now
// and then on a change near them).
func NodeSessions(tx *memdb.Txn, ws memdb.WatchSet, node string) (uint64, []*Session, error) {
	it, err := tx.Get(tableSessions, "node", node)
	if err != nil {
		return 0, nil, fmt.Errorf("sessions of node %q: %w", node, err)
	}
	ws.Add(it.WatchCh())
	out := []*Session{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Session))
	}
	idx, err := indexValue(tx, tableSessions)
	if err != nil {
		return 0, nil, fmt.Errorf("sessions of node %q: %w", node, err)
	}
	return idx, out, nil
}

// SessionsForNode returns the sessions bound to a node, for the server to
// destroy when the node is deregistered or its serfHealth turns critical.
func SessionsForNode(tx *memdb.Txn, node string) ([]*Session, error) {
	out, err := collect[*Session](tx, tableSessions, "node", node)
	return out, wrapIf(err, "sessions of node %q", node)
}

// SessionsForCheck returns the sessions bound to check checkID of node
// (as a node check or a service check; both case-insensitive), for the
// server to destroy when that check turns critical or is deregistered.
func SessionsForCheck(tx *memdb.Txn, node, checkID string) ([]*Session, error) {
	out, err := collect[*Session](tx, tableSessions, "check", node, checkID)
	return out, wrapIf(err, "sessions of check %q on node %q", checkID, node)
}

// KVLockDelay returns the time before which no session may lock key, or
// the zero time when none was set. The leader may use it to refuse an
// acquire without going through Raft, as Consul does; KVLock checks it
// again on apply.
func KVLockDelay(tx *memdb.Txn, key string) (time.Time, error) {
	d, err := getLockDelay(tx, key)
	if err != nil || d == nil {
		return time.Time{}, wrapIf(err, "lock delay of key %q", key)
	}
	return time.Unix(0, d.Until), nil
}

// ReapLockDelays forgets the lock delays that are over at now (the
// leader's clock, carried in the command). Delays are checked against the
// time of each lock, so reaping only saves memory.
func ReapLockDelays(tx *memdb.Txn, now time.Time) error {
	rows, err := collect[*lockDelay](tx, tableLockDelays, "id")
	if err != nil {
		return fmt.Errorf("reap lock delays: %w", err)
	}
	for _, d := range rows {
		if d.Until > now.UnixNano() {
			continue
		}
		if err := tx.Delete(tableLockDelays, d); err != nil {
			return fmt.Errorf("reap lock delay of key %q: %w", d.Key, err)
		}
	}
	return nil
}

// checkLockDelay reports whether key is under a lock delay at now; an
// expired delay is removed.
func checkLockDelay(tx *memdb.Txn, key string, now time.Time) (bool, error) {
	d, err := getLockDelay(tx, key)
	if err != nil || d == nil {
		return false, err
	}
	if now.UnixNano() < d.Until {
		return true, nil
	}
	if err := tx.Delete(tableLockDelays, d); err != nil {
		return false, fmt.Errorf("clear lock delay: %w", err)
	}
	return false, nil
}

// setLockDelay makes key unlockable before until, keeping a later delay.
func setLockDelay(tx *memdb.Txn, key string, until int64) error {
	d, err := getLockDelay(tx, key)
	if err != nil {
		return err
	}
	if d != nil && d.Until >= until {
		return nil
	}
	if err := tx.Insert(tableLockDelays, &lockDelay{Key: key, Until: until}); err != nil {
		return fmt.Errorf("set lock delay of key %q: %w", key, err)
	}
	return nil
}

func getLockDelay(tx *memdb.Txn, key string) (*lockDelay, error) {
	raw, err := tx.First(tableLockDelays, "id", key)
	if err != nil {
		return nil, fmt.Errorf("lookup lock delay: %w", err)
	}
	d, _ := raw.(*lockDelay)
	return d, nil
}

func getSession(tx *memdb.Txn, id string) (*Session, error) {
	raw, err := tx.First(tableSessions, "id", id)
	if err != nil {
		return nil, fmt.Errorf("lookup session: %w", err)
	}
	s, _ := raw.(*Session)
	return s, nil
}

// sessionMustExist fails with ErrSessionNotFound unless session id exists.
func sessionMustExist(tx *memdb.Txn, id string) error {
	if id == "" {
		return fmt.Errorf("missing session: %w", ErrSessionNotFound)
	}
	s, err := getSession(tx, id)
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("invalid session %q: %w", id, ErrSessionNotFound)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
