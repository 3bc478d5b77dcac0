package kvstore

import (
	"errors"
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// MaxTxnOps is the most operations one transaction may hold (Consul's
// limit).
const MaxTxnOps = 64

// Verb is what a TxnOp does, spelled as Consul's api.KVOp.
type Verb string

// The KV verbs of a transaction.
const (
	// VerbSet sets a key as KVSet does.
	VerbSet Verb = "set"
	// VerbCAS sets a key if its ModifyIndex is Index (0: if absent).
	VerbCAS Verb = "cas"
	// VerbLock acquires a key for Session, as KVLock does.
	VerbLock Verb = "lock"
	// VerbUnlock releases a key held by Session, as KVUnlock does.
	VerbUnlock Verb = "unlock"
	// VerbGet reads a key, failing if it does not exist.
	VerbGet Verb = "get"
	// VerbGetOrEmpty reads a key, answering an empty entry if absent.
	VerbGetOrEmpty Verb = "get-or-empty"
	// VerbGetTree reads every key under a prefix.
	VerbGetTree Verb = "get-tree"
	// VerbCheckIndex fails unless the key's ModifyIndex is Index.
	VerbCheckIndex Verb = "check-index"
	// VerbCheckSession fails unless Session holds the key.
	VerbCheckSession Verb = "check-session"
	// VerbCheckNotExists fails if the key exists.
	VerbCheckNotExists Verb = "check-not-exists"
	// VerbDelete deletes a key.
	VerbDelete Verb = "delete"
	// VerbDeleteTree deletes every key under a prefix.
	VerbDeleteTree Verb = "delete-tree"
	// VerbDeleteCAS deletes a key if its ModifyIndex is Index.
	VerbDeleteCAS Verb = "delete-cas"
)

// readOnly tells the known verbs apart: true for those that write nothing.
func (v Verb) readOnly() (readOnly, known bool) {
	switch v {
	case VerbGet, VerbGetOrEmpty, VerbGetTree, VerbCheckIndex, VerbCheckSession, VerbCheckNotExists:
		return true, true
	case VerbSet, VerbCAS, VerbLock, VerbUnlock, VerbDelete, VerbDeleteTree, VerbDeleteCAS:
		return false, true
	}
	return false, false
}

// TxnOp is one KV operation of a transaction, shaped as Consul's
// api.KVTxnOp (the HTTP layer unwraps it from {"KV": {...}}). Index is the
// ModifyIndex that cas, delete-cas and check-index compare with.
type TxnOp struct {
	Verb    Verb
	Key     string
	Value   []byte
	Flags   uint64
	Index   uint64
	Session string
}

// TxnResult is one result of a transaction, shaped as Consul's
// api.TxnResult with only KV set. Results of writes and checks carry no
// Value; those of get and get-tree do.
type TxnResult struct {
	KV *DirEntry
}

// TxnError says why operation OpIndex failed, shaped as Consul's
// api.TxnError; What is worded as Consul words it.
type TxnError struct {
	OpIndex int
	What    string
}

// ValidateTxn checks a transaction before it is submitted: at most
// MaxTxnOps operations (ErrTooManyOps), each valid (see TxnOp.Validate).
func ValidateTxn(ops []*TxnOp) error {
	if len(ops) > MaxTxnOps {
		return fmt.Errorf("transaction contains too many operations (%d > %d): %w", len(ops), MaxTxnOps, ErrTooManyOps)
	}
	for i, op := range ops {
		if err := op.Validate(); err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	return nil
}

// Validate checks one operation before it is submitted: non-nil, with a
// known verb, a key unless it is delete-tree or get-tree, and a value
// within MaxValueSize (ErrInvalidTxn, wrapping ErrValueTooLarge for the
// latter).
func (op *TxnOp) Validate() error {
	if op == nil {
		return fmt.Errorf("no KV operation: %w", ErrInvalidTxn)
	}
	if _, known := op.Verb.readOnly(); !known {
		return fmt.Errorf("unknown KV verb %q: %w", op.Verb, ErrInvalidTxn)
	}
	if op.Key == "" && op.Verb != VerbDeleteTree && op.Verb != VerbGetTree {
		return fmt.Errorf("%s: must provide key: %w", op.Verb, ErrInvalidTxn)
	}
	if len(op.Value) > MaxValueSize {
		return fmt.Errorf("value for key %q is too large (%d > %d bytes): %w",
			op.Key, len(op.Value), MaxValueSize, errors.Join(ErrInvalidTxn, ErrValueTooLarge))
	}
	return nil
}

// ReadOnly reports whether the operation only reads (get, get-tree and the
// checks), so that a transaction of such operations needs no Raft entry.
func (op *TxnOp) ReadOnly() bool {
	ro, _ := op.Verb.readOnly()
	return ro
}

// TxnReadOnly reports whether ops only read, so that the server may answer
// them from a read transaction without going through Raft.
func TxnReadOnly(ops []*TxnOp) bool {
	for _, op := range ops {
		if op == nil || !op.ReadOnly() {
			return false
		}
	}
	return true
}

// Txn applies ops in order in tx, at Raft index idx, with now the leader's
// clock for lock delays (see KVLock). Every operation runs even after one
// fails, so that all failures are reported. When errs is empty the caller
// commits tx and answers results; otherwise it must abort tx, so that
// nothing is applied, and answer errs (results is then nil). A read-only
// transaction (TxnReadOnly) may run on a read transaction.
func Txn(tx *memdb.Txn, idx uint64, now time.Time, ops []*TxnOp) ([]*TxnResult, []*TxnError) {
	var results []*TxnResult
	var errs []*TxnError
	for i, op := range ops {
		if op == nil {
			errs = append(errs, &TxnError{OpIndex: i, What: "no KV operation"})
			continue
		}
		res, err := txnOp(tx, idx, now, op)
		if err != nil {
			errs = append(errs, &TxnError{OpIndex: i, What: err.Error()})
			continue
		}
		results = append(results, res...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return nonNil(results), nil
}

// refusal is an operation's expected "no": a stale CAS index, a lock held
// or under delay, an unlock by a session that does not hold the key, a
// failed check. A transaction answers it as a TxnError worded as Consul
// words it; a single KV write (KVApply) answers false.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refused(format string, args ...any) error { return &refusal{msg: fmt.Sprintf(format, args...)} }

// txnOp applies one operation; its error text is what TxnError.What says.
func txnOp(tx *memdb.Txn, idx uint64, now time.Time, op *TxnOp) ([]*TxnResult, error) {
	if op.Verb == VerbGetTree {
		t, err := readTable(tx, nil)
		if err != nil {
			return nil, err
		}
		entries := entriesUnder(t, op.Key)
		res := make([]*TxnResult, len(entries))
		for i, e := range entries {
			res[i] = &TxnResult{KV: e}
		}
		return res, nil
	}
	out, err := applyOp(tx, idx, now, op)
	switch {
	case err != nil:
		return nil, err
	case out == nil:
		return nil, nil
	case op.Verb == VerbGet || op.Verb == VerbGetOrEmpty:
		return []*TxnResult{{KV: out}}, nil
	}
	c := *out
	c.Value = nil
	return []*TxnResult{{KV: &c}}, nil
}

// applyOp applies one operation other than VerbGetTree, the one place
// where a verb is given its meaning, for a transaction and for a single KV
// write alike. It answers the entry the operation wrote or read, if any,
// and a *refusal for an expected "no".
func applyOp(tx *memdb.Txn, idx uint64, now time.Time, op *TxnOp) (*DirEntry, error) {
	e := &DirEntry{Key: op.Key, Value: op.Value, Flags: op.Flags, Session: op.Session, ModifyIndex: op.Index}
	var (
		out *DirEntry
		ok  bool
		err error
	)
	switch op.Verb {
	case VerbSet:
		out, err = kvSet(tx, idx, e)
	case VerbCAS:
		out, ok, err = kvSetCAS(tx, idx, e)
		if !ok && err == nil {
			err = refused("failed to set key %q, index is stale", op.Key)
		}
	case VerbLock:
		var r lockResult
		out, r, err = kvLock(tx, idx, now, e)
		switch {
		case err != nil:
		case r == lockHeld:
			err = refused("failed to lock key %q, lock is already held", op.Key)
		case r == lockDelayed:
			err = refused("failed to lock key %q due to lock delay", op.Key)
		}
	case VerbUnlock:
		out, ok, err = kvUnlock(tx, idx, e)
		if !ok && err == nil {
			err = refused("failed to unlock key %q, lock isn't held, or is held by another session", op.Key)
		}
	case VerbGet, VerbGetOrEmpty:
		out, err = getEntry(tx, op.Key)
		if out == nil && err == nil {
			if op.Verb == VerbGet {
				err = refused("key %q doesn't exist", op.Key)
			} else {
				out = &DirEntry{Key: op.Key}
			}
		}
	case VerbCheckIndex:
		out, err = getEntry(tx, op.Key)
		switch {
		case err != nil:
		case out == nil:
			err = refused("failed to check index, key %q doesn't exist", op.Key)
		case out.ModifyIndex != op.Index:
			err = refused("failed index check for key %q, current modify index %d != %d", op.Key, out.ModifyIndex, op.Index)
		}
	case VerbCheckSession:
		out, err = getEntry(tx, op.Key)
		switch {
		case err != nil:
		case out == nil:
			err = refused("failed to check session, key %q doesn't exist", op.Key)
		case out.Session != op.Session:
			err = refused("failed session check for key %q, current session %q != %q", op.Key, out.Session, op.Session)
		}
	case VerbCheckNotExists:
		out, err = getEntry(tx, op.Key)
		if out != nil && err == nil {
			err = refused("key %q exists", op.Key)
		}
		out = nil
	case VerbDelete:
		err = KVDelete(tx, idx, op.Key)
	case VerbDeleteTree:
		err = KVDeleteTree(tx, idx, op.Key)
	case VerbDeleteCAS:
		ok, err = KVDeleteCAS(tx, idx, op.Index, op.Key)
		if !ok && err == nil {
			err = refused("failed to delete key %q, index is stale", op.Key)
		}
	default:
		err = fmt.Errorf("unknown KV verb %q", op.Verb)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
