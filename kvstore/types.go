package kvstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxValueSize is the largest value a key may hold, in bytes (Consul's
// default kv_max_value_size, 512 KiB).
const MaxValueSize = 512 * 1024

// Session behaviours: what happens to the keys a session holds when it is
// invalidated.
const (
	// BehaviorRelease clears the lock holder and keeps the keys. It is the
	// default.
	BehaviorRelease = "release"
	// BehaviorDelete deletes the keys.
	BehaviorDelete = "delete"
)

// Session limits, as Consul has them.
const (
	// DefaultLockDelay is the lock delay of a session created over HTTP
	// without one; the HTTP layer applies it before decoding the body.
	DefaultLockDelay = 15 * time.Second
	// MaxLockDelay caps a session's lock delay: a longer one is recorded as
	// MaxLockDelay.
	MaxLockDelay = 60 * time.Second
	// SessionTTLMin is the shortest TTL a session may have; "" or "0s"
	// means no TTL.
	SessionTTLMin = 10 * time.Second
	// SessionTTLMax is the longest TTL a session may have (86400s).
	SessionTTLMax = 24 * time.Hour
)

// lockDelayMinThreshold: a LockDelay below this many nanoseconds in a
// request body is taken as seconds, because users write 15 meaning 15s
// (Consul does the same).
const lockDelayMinThreshold = 1000

var (
	// ErrInvalidKey is returned for a write with an empty key.
	ErrInvalidKey = errors.New("invalid key")
	// ErrValueTooLarge is returned for a value over MaxValueSize. Its text
	// contains "too large", which Vault looks for.
	ErrValueTooLarge = errors.New("value too large")
	// ErrSessionNotFound is returned when a lock names no session or one
	// that does not exist.
	ErrSessionNotFound = errors.New("session not found")
	// ErrSessionExists is returned by SessionCreate for an ID in use.
	ErrSessionExists = errors.New("session already exists")
	// ErrInvalidSession is returned for a session without ID or node, with
	// an unknown behaviour, or with a TTL or lock delay out of range.
	ErrInvalidSession = errors.New("invalid session")
	// ErrInvalidTxn is returned by ValidateTxn for an operation without a
	// KV verb, with an unknown verb, or with an invalid key or value.
	ErrInvalidTxn = errors.New("invalid transaction")
	// ErrTooManyOps is returned by ValidateTxn for more than MaxTxnOps
	// operations (Consul answers 413 to it).
	ErrTooManyOps = errors.New("too many operations in transaction")
)

// DirEntry is one key, encoded as Consul's api.KVPair (Value is base64 in
// JSON; Session is left out when no session holds the key).
type DirEntry struct {
	LockIndex   uint64
	Key         string
	Flags       uint64
	Value       []byte
	Session     string `json:",omitempty"`
	CreateIndex uint64
	ModifyIndex uint64
}

// ServiceCheck names a service check a session is bound to
// (api.ServiceCheck). The check is on the session's node.
type ServiceCheck struct {
	ID        string
	Namespace string `json:",omitempty"`
}

// Session is a lock holder bound to a node and some of its checks, encoded
// as Consul's api.SessionEntry. LockDelay is written in nanoseconds; a
// request body may give it as a number (below 1000 meaning seconds) or a
// duration string such as "15s" or "15000ms" (what the Go client sends).
// Checks is the pre-1.7 spelling of NodeChecks and counts as node checks.
type Session struct {
	ID            string
	Name          string
	Node          string
	LockDelay     time.Duration
	Behavior      string
	TTL           string
	Checks        []string `json:",omitempty"`
	NodeChecks    []string
	ServiceChecks []ServiceCheck
	CreateIndex   uint64
	ModifyIndex   uint64
}

// UnmarshalJSON decodes a session as Consul's /v1/session/create reads it:
// LockDelay may be a number of nanoseconds, or a Go duration string; either
// below 1000ns is taken as that many seconds.
func (s *Session) UnmarshalJSON(b []byte) error {
	type plain Session
	aux := struct {
		*plain
		LockDelay json.RawMessage
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	raw := bytes.TrimSpace(aux.LockDelay)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var d time.Duration
	if raw[0] == '"' {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return fmt.Errorf("session LockDelay: %w", err)
		}
		v, err := time.ParseDuration(str)
		if err != nil {
			return fmt.Errorf("session LockDelay %q: %w", str, err)
		}
		d = v
	} else {
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return fmt.Errorf("session LockDelay %s: %w", raw, err)
		}
		d = time.Duration(f)
	}
	if d > 0 && d < lockDelayMinThreshold {
		d *= time.Second
	}
	s.LockDelay = d
	return nil
}

// checkIDs returns the IDs of every check s is bound to, without
// duplicates (case-insensitively, as catalog compares check IDs).
func (s *Session) checkIDs() []string {
	n := len(s.Checks) + len(s.NodeChecks) + len(s.ServiceChecks)
	if n == 0 {
		return nil
	}
	ids := make([]string, 0, n)
	ids = append(ids, s.Checks...)
	ids = append(ids, s.NodeChecks...)
	for _, c := range s.ServiceChecks {
		ids = append(ids, c.ID)
	}
	out := ids[:0]
	for i, id := range ids {
		if !slices.ContainsFunc(ids[:i], func(o string) bool { return strings.EqualFold(o, id) }) {
			out = append(out, id)
		}
	}
	return out
}

// CheckIDs returns the IDs of the checks s is bound to (Checks, NodeChecks
// and ServiceChecks, each once), all on s.Node: the server verifies they
// exist and are not critical before it applies SessionCreate.
func (s *Session) CheckIDs() []string { return slices.Clone(s.checkIDs()) }

// clone returns a copy of s that shares nothing with it.
func (s *Session) clone() *Session {
	c := *s
	c.Checks = slices.Clone(s.Checks)
	c.NodeChecks = slices.Clone(s.NodeChecks)
	c.ServiceChecks = slices.Clone(s.ServiceChecks)
	return &c
}

// ValidateKey reports whether key may be written: it must not be empty.
// Like Consul's servers it accepts any other string, a leading "/"
// included (the Go client strips one on GET and DELETE, not on PUT).
// Deleting a tree is the one write that takes an empty key (the prefix).
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("must provide key: %w", ErrInvalidKey)
	}
	return nil
}

// validateEntry checks a DirEntry about to be written.
func validateEntry(e *DirEntry) error {
	if e == nil {
		return fmt.Errorf("no entry: %w", ErrInvalidKey)
	}
	if err := ValidateKey(e.Key); err != nil {
		return err
	}
	if len(e.Value) > MaxValueSize {
		return fmt.Errorf("value for key %q is too large (%d > %d bytes): %w", e.Key, len(e.Value), MaxValueSize, ErrValueTooLarge)
	}
	return nil
}

// ValidateSession checks a session the way Consul's session endpoint does
// before it is applied: ID and Node set, Behavior empty (meaning release),
// "release" or "delete", TTL empty, zero or between SessionTTLMin and
// SessionTTLMax, LockDelay not negative. It does not check that the node
// and checks exist; the server does that against the catalog.
func ValidateSession(s *Session) error {
	if s == nil || s.ID == "" {
		return fmt.Errorf("session ID missing: %w", ErrInvalidSession)
	}
	if s.Node == "" {
		return fmt.Errorf("session %q: node missing: %w", s.ID, ErrInvalidSession)
	}
	switch s.Behavior {
	case "", BehaviorRelease, BehaviorDelete:
	default:
		return fmt.Errorf("session %q: invalid behavior %q: %w", s.ID, s.Behavior, ErrInvalidSession)
	}
	if s.LockDelay < 0 {
		return fmt.Errorf("session %q: negative lock delay %v: %w", s.ID, s.LockDelay, ErrInvalidSession)
	}
	if s.TTL != "" {
		ttl, err := time.ParseDuration(s.TTL)
		if err != nil {
			return fmt.Errorf("session %q: TTL %q: %w", s.ID, s.TTL, errors.Join(ErrInvalidSession, err))
		}
		if ttl != 0 && (ttl < SessionTTLMin || ttl > SessionTTLMax) {
			return fmt.Errorf("session %q: TTL %v not between %v and %v: %w", s.ID, ttl, SessionTTLMin, SessionTTLMax, ErrInvalidSession)
		}
	}
	return nil
}
