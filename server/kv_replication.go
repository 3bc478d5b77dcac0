package server

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// Built-in KV replication (what Consul users run consul-replicate for):
// the leader of a datacenter with rules copies each rule's prefix from its
// source datacenter. It follows the source with blocking KV.Changes reads
// (what changed under the prefix since the index it holds, through the
// federation forwarder, so over relays too), and applies the changes
// through Raft in batches (msgKVReplicate): sets with their flags, deletes,
// and in the same entry the source index the copy is complete up to, its
// cursor. The cursor is replicated state (a table in snapshots), so a new
// leader, or the whole datacenter after a restart, resumes from it instead
// of copying the prefix again. Keys under a replicated prefix are read-only
// locally: a write is refused naming the source, or forwarded to it.

// KVReplicationRule is one KV prefix this datacenter copies from another.
type KVReplicationRule struct {
	// Prefix is the key prefix copied ("" copies every key, and is then
	// the only rule).
	Prefix string
	// From is the source datacenter, not this one.
	From string
	// Forward sends a write under Prefix made here to From, and answers
	// from there; without it such a write is refused (403) naming From.
	Forward bool
}

// writes names what a write under the rule's prefix gets, as configured.
func (r KVReplicationRule) writes() string {
	if r.Forward {
		return "forward"
	}
	return "refuse"
}

// validateKVReplication checks rules for the datacenter local: none from
// local itself, no two whose prefixes overlap (a key would have two
// sources), and the empty prefix only alone.
func validateKVReplication(local string, rules []KVReplicationRule) error {
	for i, r := range rules {
		switch {
		case r.From == "":
			return fmt.Errorf("server: kv replication rule %q: no source datacenter", r.Prefix)
		case r.From == local:
			return fmt.Errorf("server: kv replication rule %q: from %s is this datacenter", r.Prefix, r.From)
		case r.Prefix == "" && len(rules) > 1:
			return errors.New("server: kv replication rule \"\" (every key) must be the only rule")
		}
		for _, o := range rules[i+1:] {
			if strings.HasPrefix(r.Prefix, o.Prefix) || strings.HasPrefix(o.Prefix, r.Prefix) {
				return fmt.Errorf("server: kv replication rules %q and %q overlap", r.Prefix, o.Prefix)
			}
		}
	}
	return nil
}

const (
	// msgKVReplicate is the Raft command that applies a batch of
	// replicated changes with the rule's new cursor (kvReplicateRequest).
	msgKVReplicate msgType = 40

	tableKVReplication = "kv-replication"
	// kvReplicationSnapshotFormat names the snapshot section's header.
	kvReplicationSnapshotFormat = "meridian-kv-replication"

	// kvReplicationMaxOps and kvReplicationMaxBytes bound one Raft entry
	// of replicated changes (one change always fits, whatever its size):
	// 256 ops of small values cost one fsync, where 10,000 keys one by one
	// would cost 10,000.
	kvReplicationMaxOps   = 256
	kvReplicationMaxBytes = 1 << 20
)

// DefaultKVReplicationAnswerBytes is Config.KVReplicationAnswerBytes when
// unset: 16 MiB, a quarter of the RPC layer's reply cap (an answer also
// carries every key's name when the whole prefix is copied).
const DefaultKVReplicationAnswerBytes = 16 << 20

// kvReplicateRequest is a batch of changes of one rule, applied in one
// transaction with the source index the copy is then complete up to; with
// Forget, the cursor of a rule no longer configured is dropped instead, so
// that the rule, configured again, copies its prefix whole (its keys may
// have been written here meanwhile).
type kvReplicateRequest struct {
	From, Prefix string
	Index        uint64
	Ops          []*kvstore.TxnOp
	Now          int64
	Forget       bool
}

// kvCursor is a row of tableKVReplication: how far the copy of a rule's
// prefix follows its source.
type kvCursor struct {
	ID           string // From + "\x00" + Prefix
	From, Prefix string
	Index        uint64
}

func kvCursorID(from, prefix string) string { return from + "\x00" + prefix }

func kvReplicationTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{tableKVReplication: {
		Name: tableKVReplication,
		Indexes: map[string]*memdb.IndexSchema{"id": {
			Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"},
		}},
	}}
}

// storedKVCursor is the source index the copy of rule is complete up to
// (0: nothing copied yet).
func storedKVCursor(tx *memdb.Txn, r KVReplicationRule) (uint64, error) {
	raw, err := tx.First(tableKVReplication, "id", kvCursorID(r.From, r.Prefix))
	if err != nil || raw == nil {
		return 0, err
	}
	return raw.(*kvCursor).Index, nil
}

// applyKVReplicate applies a batch of replicated changes and the rule's
// cursor, all or nothing.
func (f *fsm) applyKVReplicate(idx uint64, body []byte) any {
	var req kvReplicateRequest
	if err := rpc.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("decode kv replication at index %d: %w", idx, err)
	}
	return f.state.write(func(tx *memdb.Txn) error {
		if req.Forget {
			_, err := tx.DeleteAll(tableKVReplication, "id", kvCursorID(req.From, req.Prefix))
			return err
		}
		if len(req.Ops) > 0 {
			if _, errs := kvstore.Txn(tx, idx, time.Unix(0, req.Now), req.Ops); len(errs) > 0 {
				return fmt.Errorf("replicate %q from %s: operation %d: %s", req.Prefix, req.From, errs[0].OpIndex, errs[0].What)
			}
		}
		return tx.Insert(tableKVReplication, &kvCursor{ID: kvCursorID(req.From, req.Prefix), From: req.From, Prefix: req.Prefix, Index: req.Index})
	})
}

type kvReplicationSnapshotHeader struct {
	Format  string
	Version int
	Cursors int
}

func snapshotKVReplication(tx *memdb.Txn, enc catalog.Encoder) error {
	var rows []*kvCursor
	it, err := tx.Get(tableKVReplication, "id")
	if err != nil {
		return fmt.Errorf("snapshot kv replication: %w", err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		rows = append(rows, raw.(*kvCursor))
	}
	if err := enc.Encode(&kvReplicationSnapshotHeader{Format: kvReplicationSnapshotFormat, Version: 1, Cursors: len(rows)}); err != nil {
		return fmt.Errorf("snapshot kv replication header: %w", err)
	}
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("snapshot kv replication cursor: %w", err)
		}
	}
	return nil
}

func restoreKVReplication(tx *memdb.Txn, dec catalog.Decoder) error {
	var h kvReplicationSnapshotHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("restore kv replication header: %w", err)
	}
	if h.Format != kvReplicationSnapshotFormat || h.Version != 1 || h.Cursors < 0 {
		return fmt.Errorf("restore kv replication: format %q version %d: %w", h.Format, h.Version, catalog.ErrBadSnapshot)
	}
	for range h.Cursors {
		var c kvCursor
		if err := dec.Decode(&c); err != nil {
			return fmt.Errorf("restore kv replication cursor: %w", err)
		}
		if err := tx.Insert(tableKVReplication, &c); err != nil {
			return fmt.Errorf("restore kv replication cursor: %w", err)
		}
	}
	return nil
}

// kvReplication is the leader's status of each rule, by rule index.
type kvReplication struct {
	mu     sync.Mutex
	status map[int]*rpc.KVReplicationStatus
}

// update changes rule i's status under the lock.
func (k *kvReplication) update(i int, fn func(st *rpc.KVReplicationStatus)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.status == nil {
		k.status = map[int]*rpc.KVReplicationStatus{}
	}
	st := k.status[i]
	if st == nil {
		st = &rpc.KVReplicationStatus{}
		k.status[i] = st
	}
	fn(st)
}

// startKVReplication runs, on the leader, one routine per rule, after
// forgetting the cursors of rules no longer configured; the function it
// returns stops them and waits for them.
func (s *Server) startKVReplication(ctx context.Context) func() {
	s.forgetKVCursors(ctx)
	rules := s.cfg.KVReplication
	if len(rules) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, r := range rules {
		s.kvRepl.update(i, func(st *rpc.KVReplicationStatus) {
			*st = rpc.KVReplicationStatus{Prefix: r.Prefix, SourceDatacenter: r.From, Writes: r.writes(), Running: true}
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.replicateKVLoop(ctx, i, r)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
		for i := range rules {
			s.kvRepl.update(i, func(st *rpc.KVReplicationStatus) { st.Running = false })
		}
	}
}

// forgetKVCursors drops the stored cursors that no configured rule has.
func (s *Server) forgetKVCursors(ctx context.Context) {
	tx, _ := s.state.read()
	it, err := tx.Get(tableKVReplication, "id")
	if err != nil {
		tx.Abort()
		s.logger.Error("kv replication: read cursors", "error", err)
		return
	}
	var stale []*kvCursor
	for raw := it.Next(); raw != nil; raw = it.Next() {
		c := raw.(*kvCursor)
		if !slices.ContainsFunc(s.cfg.KVReplication, func(r KVReplicationRule) bool { return r.From == c.From && r.Prefix == c.Prefix }) {
			stale = append(stale, c)
		}
	}
	tx.Abort()
	for _, c := range stale {
		if _, _, err := s.apply(ctx, msgKVReplicate, &kvReplicateRequest{From: c.From, Prefix: c.Prefix, Forget: true}); err != nil {
			s.logger.Warn("kv replication: forget the cursor of a rule no longer configured", "prefix", c.Prefix, "from", c.From, "error", err)
			return
		}
		s.logger.Info("kv replication: forgot the cursor of a rule no longer configured", "prefix", c.Prefix, "from", c.From)
	}
}

// replicateKVLoop replicates rule r (the i-th) until ctx ends, from the
// stored cursor on, backing off (up to 10 s) while the source is
// unreachable or refuses.
func (s *Server) replicateKVLoop(ctx context.Context, i int, r KVReplicationRule) {
	tx, _ := s.state.read()
	cursor, err := storedKVCursor(tx, r)
	tx.Abort()
	if err != nil {
		s.logger.Error("kv replication: read cursor", "prefix", r.Prefix, "from", r.From, "error", err)
	}
	s.kvRepl.update(i, func(st *rpc.KVReplicationStatus) { st.ReplicatedIndex = cursor })
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.replicateKVOnce(ctx, i, r, &cursor)
		if ctx.Err() != nil {
			return
		}
		now := time.Now().UTC()
		if err == nil {
			backoff = 100 * time.Millisecond
			s.kvRepl.update(i, func(st *rpc.KVReplicationStatus) { st.LastSuccess = now })
			continue
		}
		s.metrics.kvRepl.errors.WithLabelValues(r.From, r.Prefix).Inc()
		s.kvRepl.update(i, func(st *rpc.KVReplicationStatus) {
			st.LastError, st.LastErrorMessage = now, fmt.Sprintf("replicate %q from %s: %v", r.Prefix, r.From, err)
			if !st.LastSuccess.IsZero() {
				st.Lag = now.Sub(st.LastSuccess)
				s.metrics.kvRepl.lag.WithLabelValues(r.From, r.Prefix).Set(float64(st.Lag) / float64(time.Millisecond))
			}
		})
		s.logger.Warn("kv replication", "prefix", r.Prefix, "from", r.From, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// kvChange is one change to apply, at the source index it was made at (0
// for a key a full copy drops).
type kvChange struct {
	index uint64
	op    *kvstore.TxnOp
}

// replicateKVOnce waits for the source's prefix to move past *cursor,
// then applies what differs from the local copy, in batches, moving
// *cursor with each.
func (s *Server) replicateKVOnce(ctx context.Context, i int, r KVReplicationRule, cursor *uint64) error {
	since := *cursor
	q := &rpc.Query[kvstore.ChangesRequest]{
		QueryOptions: rpc.QueryOptions{Datacenter: r.From, Token: s.replicationToken(), MinIndex: since, MaxWait: replicationWait},
		Args:         kvstore.ChangesRequest{Prefix: r.Prefix, Since: since, MaxBytes: cmp.Or(s.cfg.KVReplicationAnswerBytes, DefaultKVReplicationAnswerBytes)},
	}
	var reply rpc.Answer[kvstore.Changes]
	if err := s.forwardDC(ctx, r.From, rpc.MethodKVChanges, q, &reply); err != nil {
		return err
	}
	arrived := time.Now()
	if reply.Index < since {
		// The source's state is younger than the copy (rebuilt, or
		// restored from an older snapshot): copy it whole again.
		s.logger.Warn("kv replication: source index went back; copying the prefix again", "prefix", r.Prefix, "from", r.From, "index", reply.Index, "cursor", since)
		*cursor = 0
		return nil
	}
	changes, err := s.kvChangesToApply(r.Prefix, &reply.Value)
	if err != nil {
		return err
	}
	if len(changes) == 0 && reply.Index == since {
		s.setKVLag(i, r, 0)
		return nil // the wait ended with nothing new
	}
	for start := 0; start == 0 || start < len(changes); {
		end, size := start, 0
		for end < len(changes) && end-start < kvReplicationMaxOps && (end == start || size+len(changes[end].op.Value) <= kvReplicationMaxBytes) {
			size += len(changes[end].op.Value)
			end++
		}
		next := reply.Index
		if end < len(changes) {
			// Complete up to just before the first change not applied
			// yet; a change of that index already applied is applied
			// again as a no-op when a new leader resumes from here.
			next = since
			if n := changes[end].index; n > 0 {
				next = n - 1
			}
		}
		req := &kvReplicateRequest{From: r.From, Prefix: r.Prefix, Index: next, Now: time.Now().UnixNano()}
		for _, c := range changes[start:end] {
			req.Ops = append(req.Ops, c.op)
		}
		if _, _, err := s.apply(ctx, msgKVReplicate, req); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		*cursor = next
		n := uint64(end - start)
		s.metrics.kvRepl.applied.WithLabelValues(r.From, r.Prefix).Add(float64(n))
		s.metrics.kvRepl.index.WithLabelValues(r.From, r.Prefix).Set(float64(next))
		s.kvRepl.update(i, func(st *rpc.KVReplicationStatus) {
			st.ReplicatedIndex, st.KeysApplied, st.Applies = next, st.KeysApplied+n, st.Applies+1
		})
		if end == len(changes) {
			break
		}
		start = end
	}
	s.setKVLag(i, r, time.Since(arrived))
	return nil
}

func (s *Server) setKVLag(i int, r KVReplicationRule, lag time.Duration) {
	s.metrics.kvRepl.lag.WithLabelValues(r.From, r.Prefix).Set(float64(lag) / float64(time.Millisecond))
	s.kvRepl.update(i, func(st *rpc.KVReplicationStatus) { st.Lag = lag })
}

// kvChangesToApply turns the source's changes into the writes the local
// copy needs, in the source's order: what is already as the source has it
// is left out, and a full answer drops the local keys the source lacks
// (first, at index 0). A full answer's entries are those changed since the
// cursor: the copy is complete up to it.
func (s *Server) kvChangesToApply(prefix string, ch *kvstore.Changes) ([]kvChange, error) {
	tx, _ := s.state.read()
	defer tx.Abort()
	var out []kvChange
	for _, e := range ch.Entries {
		if !strings.HasPrefix(e.Key, prefix) {
			continue // not asked for: never write outside the rule
		}
		_, local, err := kvstore.KVGet(tx, nil, e.Key)
		if err != nil {
			return nil, err
		}
		if local != nil && local.Flags == e.Flags && bytes.Equal(local.Value, e.Value) {
			continue
		}
		out = append(out, kvChange{e.ModifyIndex, &kvstore.TxnOp{Verb: kvstore.VerbSet, Key: e.Key, Value: e.Value, Flags: e.Flags}})
	}
	for _, d := range ch.Deleted {
		if !strings.HasPrefix(d.Key, prefix) {
			continue
		}
		_, local, err := kvstore.KVGet(tx, nil, d.Key)
		if err != nil {
			return nil, err
		}
		if local != nil {
			out = append(out, kvChange{d.Index, &kvstore.TxnOp{Verb: kvstore.VerbDelete, Key: d.Key}})
		}
	}
	if ch.Full {
		remote := make(map[string]bool, len(ch.Keys))
		for _, k := range ch.Keys {
			remote[k] = true
		}
		_, locals, err := kvstore.KVList(tx, nil, prefix)
		if err != nil {
			return nil, err
		}
		for _, l := range locals {
			if !remote[l.Key] {
				out = append(out, kvChange{0, &kvstore.TxnOp{Verb: kvstore.VerbDelete, Key: l.Key}})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b kvChange) int {
		switch {
		case a.index < b.index:
			return -1
		case a.index > b.index:
			return 1
		}
		return 0
	})
	return out, nil
}

// registerKVReplicationEndpoints registers the read replication follows a
// source with and the leader's status.
func (s *Server) registerKVReplicationEndpoints() {
	register(s, rpc.MethodKVChanges, s.kvChanges)
	register(s, rpc.MethodKVReplicationStatus, s.kvReplicationStatus)
}

// kvChanges answers what changed under a prefix since an index, blocking
// as a KV list does.
func (s *Server) kvChanges(ctx context.Context, args *rpc.Query[kvstore.ChangesRequest], reply *rpc.Answer[kvstore.Changes]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodKVChanges, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, ch, err := kvstore.KVChanges(tx, ws, args.Args)
		if ch != nil {
			reply.Value = *ch
		}
		return idx, err
	})
}

// kvReplicationStatus answers /v1/operator/replication from the leader:
// every rule, in configuration order.
func (s *Server) kvReplicationStatus(ctx context.Context, args *rpc.Query[struct{}], reply *rpc.Answer[[]rpc.KVReplicationStatus]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodKVReplicationStatus, args, reply); done {
		return err
	}
	reply.Value, reply.Index = s.KVReplication(), 1
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}

// KVReplication is this server's status of every KV replication rule, in
// configuration order: Running only on the leader, the figures of its
// last term as leader on another server. It needs no leader.
func (s *Server) KVReplication() []rpc.KVReplicationStatus {
	out := make([]rpc.KVReplicationStatus, 0, len(s.cfg.KVReplication))
	s.kvRepl.mu.Lock()
	defer s.kvRepl.mu.Unlock()
	for i, r := range s.cfg.KVReplication {
		st := rpc.KVReplicationStatus{Prefix: r.Prefix, SourceDatacenter: r.From, Writes: r.writes()}
		if cur := s.kvRepl.status[i]; cur != nil {
			st = *cur
		}
		out = append(out, st)
	}
	return out
}

// kvTarget is a key, or with tree a prefix, that a KV operation touches.
type kvTarget struct {
	key         string
	tree, write bool
}

// replicatedBy returns the rule whose prefix t falls under, and whether t
// is wholly under it (a tree over a wider prefix is not); nil for none.
func (s *Server) replicatedBy(t kvTarget) (*KVReplicationRule, bool) {
	for i := range s.cfg.KVReplication {
		r := &s.cfg.KVReplication[i]
		if strings.HasPrefix(t.key, r.Prefix) {
			return r, true
		}
		if t.tree && strings.HasPrefix(r.Prefix, t.key) {
			return r, false
		}
	}
	return nil, false
}

// replicatedWrite handles a KV write (KV.Apply, Txn.Apply) for this
// datacenter that touches a prefix it replicates: refused, naming the
// source, or, when the rule forwards writes and every key of the write is
// under rules that forward to the same source, sent there and answered
// from there. It reports whether it handled the write.
func (s *Server) replicatedWrite(ctx context.Context, method string, args, reply any) (bool, error) {
	if len(s.cfg.KVReplication) == 0 {
		return false, nil
	}
	var (
		dc       string
		targets  []kvTarget
		retarget func(dc string)
		// catalogOps: the transaction also has catalog operations.
		catalogOps bool
	)
	switch a := args.(type) {
	case *kvWrite:
		dc, retarget = a.Datacenter, func(to string) { a.Datacenter = to }
		targets = []kvTarget{{key: a.Args.Key, tree: a.Args.Op == kvstore.VerbDeleteTree, write: true}}
	case *txnWrite:
		dc, retarget = a.Datacenter, func(to string) { a.Datacenter = to }
		for _, op := range a.Args.Ops {
			if op == nil || op.KV == nil {
				catalogOps = true // this datacenter's own, so never forwarded
				continue
			}
			kv := op.KV
			tree := kv.Verb == kvstore.VerbDeleteTree || kv.Verb == kvstore.VerbGetTree
			targets = append(targets, kvTarget{key: kv.Key, tree: tree, write: !kv.ReadOnly()})
		}
	default:
		return false, nil
	}
	if s.remote(dc) {
		return false, nil
	}
	var (
		hit     *KVReplicationRule
		hitKey  kvTarget
		source  string
		forward = !catalogOps
	)
	for _, t := range targets {
		r, whole := s.replicatedBy(t)
		if r == nil {
			forward = false
			continue
		}
		if t.write && hit == nil {
			hit, hitKey = r, t
		}
		if !whole || !r.Forward || (source != "" && source != r.From) {
			forward = false
		}
		source = r.From
	}
	if hit == nil {
		return false, nil
	}
	if forward {
		retarget(source)
		return true, s.forwardDC(ctx, source, method, args, reply)
	}
	return true, replicatedKeyError(hitKey, hit, len(targets) > 1 || catalogOps)
}

// replicatedKeyError is the refusal of a write to t, under rule r.
func replicatedKeyError(t kvTarget, r *KVReplicationRule, txn bool) error {
	if t.tree && !strings.HasPrefix(t.key, r.Prefix) {
		return fmt.Errorf("%w: keys under %q include %q, replicated from %s; write them in %s", rpc.ErrPermissionDenied, t.key, r.Prefix, r.From, r.From)
	}
	what := "key " + t.key
	if t.tree {
		what = fmt.Sprintf("keys under %q", t.key)
	}
	if r.Forward && txn {
		return fmt.Errorf("%w: %s is replicated from %s; a transaction is forwarded there only when all its keys are replicated from it; write it in %s", rpc.ErrPermissionDenied, what, r.From, r.From)
	}
	return fmt.Errorf("%w: %s is replicated from %s; write it in %s", rpc.ErrPermissionDenied, what, r.From, r.From)
}
