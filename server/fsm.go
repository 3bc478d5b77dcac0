package server

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// msgType is the first byte of every Raft log entry the FSM applies; the
// rest is the msgpack encoding of the command.
type msgType byte

const (
	msgRegister   msgType = 1
	msgDeregister msgType = 2
	msgKV         msgType = 3 // kvstore.KVRequest
	msgSession    msgType = 4 // kvstore.SessionRequest
	msgTxn        msgType = 5 // kvstore.TxnRequest
	msgKVReap     msgType = 6 // kvReapRequest
	msgCoordinate msgType = 7 // []catalog.CoordinateEntry, a batch (coordinate.go)
	msgQuery      msgType = 8 // catalog.QueryApplyRequest (query.go)
	// msgAutopilot (9) is in autopilot.go, msgCatalogTxn (10) in txn.go,
	// msgACL (32) in acl_fsm.go, msgKVReplicate (40) in kv_replication.go.
)

// snapshotVersion is written first in every snapshot so a future format can
// be told apart. Version 2 was catalog's section then kvstore's; version 3
// names each section before it (see snapshotSections) and ends with "".
const snapshotVersion = 3

// snapshotSection is one package's part of a snapshot.
type snapshotSection struct {
	name    string
	persist func(tx *memdb.Txn, enc catalog.Encoder) error
	restore func(tx *memdb.Txn, dec catalog.Decoder) error
}

// snapshotSections lists the sections a snapshot holds, in the order they
// are written. A new kind of replicated state adds its section here; an
// older snapshot without it restores with that state empty.
func snapshotSections() []snapshotSection {
	return []snapshotSection{
		{"catalog", catalog.Snapshot, catalog.Restore},
		{"kvstore", func(tx *memdb.Txn, enc catalog.Encoder) error { return kvstore.Snapshot(tx, enc) },
			func(tx *memdb.Txn, dec catalog.Decoder) error { return kvstore.Restore(tx, dec) }},
		{"coordinates", catalog.SnapshotCoordinates, catalog.RestoreCoordinates},
		{"queries", catalog.SnapshotQueries, catalog.RestoreQueries},
		{"acl", func(tx *memdb.Txn, enc catalog.Encoder) error { return acl.Snapshot(tx, enc) },
			func(tx *memdb.Txn, dec catalog.Decoder) error { return acl.Restore(tx, dec) }},
		{"autopilot", snapshotAutopilot, restoreAutopilot},
		{"kv-replication", snapshotKVReplication, restoreKVReplication},
	}
}

// encodeCommand builds a Raft log entry.
func encodeCommand(t msgType, cmd any) ([]byte, error) {
	body, err := rpc.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", t, err)
	}
	buf := make([]byte, 1+len(body))
	buf[0] = byte(t)
	copy(buf[1:], body)
	return buf, nil
}

// fsm applies committed Raft entries to the state store. Raft calls Apply,
// ApplyBatch, Snapshot and Restore from one goroutine at a time (Snapshot's
// Persist runs concurrently with later Applies, on an immutable read txn), so
// the FSM needs no lock of its own: the state store's atomic swap on Restore
// is what readers synchronise on.
type fsm struct {
	state  *state
	logger *slog.Logger

	// sessionTTL holds the leader's session TTL timers. The FSM never
	// touches them; they hang here because the fsm is the one piece of the
	// server that lives from New to Shutdown and that the KV files own.
	sessionTTL *sessionTimers

	// log, once Raft runs, is the log whose entries are applied: an entry
	// is applied only once it is on this server's disk (see leaderLog).
	log *leaderLog
}

var (
	_ raft.FSM         = (*fsm)(nil)
	_ raft.BatchingFSM = (*fsm)(nil)
)

// Apply applies one entry; its result is what raft's ApplyFuture.Response
// returns: nil or an error.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	appended := l.AppendedAt
	if appended.IsZero() {
		appended = time.Unix(0, 0) // an entry from before raft recorded it
	}
	return f.applyCommand(l.Index, appended, msgType(l.Data[0]), l.Data[1:])
}

// ApplyBatch applies entries in commit order in one shared transaction.
// Should a command's write fail, the batch is redone with each entry in its
// own transaction, so that one failing command leaves no half-applied change
// behind.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	if f.log != nil && len(logs) > 0 {
		f.log.waitDurable(logs[len(logs)-1].Index)
	}
	out := make([]any, len(logs))
	if len(logs) > 1 && f.state.writeBatch(len(logs), func(i int) { out[i] = f.Apply(logs[i]) }) {
		return out
	}
	for i, l := range logs {
		out[i] = f.Apply(l)
	}
	return out
}

// applyCommand applies one command. appended is the leader's clock when it
// appended the entry (replicated with it): catalog commands that invalidate
// sessions use it for lock delays, since they carry no clock of their own.
func (f *fsm) applyCommand(idx uint64, appended time.Time, t msgType, body []byte) any {
	switch t {
	case msgRegister:
		var req catalog.RegisterRequest
		if err := rpc.Unmarshal(body, &req); err != nil {
			return fmt.Errorf("decode register at index %d: %w", idx, err)
		}
		return f.state.write(func(tx *memdb.Txn) error {
			if err := catalog.Register(tx, idx, &req); err != nil {
				return err
			}
			return invalidateForRegister(tx, idx, appended, &req)
		})
	case msgDeregister:
		var req catalog.DeregisterRequest
		if err := rpc.Unmarshal(body, &req); err != nil {
			return fmt.Errorf("decode deregister at index %d: %w", idx, err)
		}
		return f.state.write(func(tx *memdb.Txn) error {
			if err := invalidateForDeregister(tx, idx, appended, &req); err != nil {
				return err
			}
			return catalog.Deregister(tx, idx, &req)
		})
	case msgKV, msgSession, msgTxn, msgKVReap:
		return f.applyKV(idx, t, body)
	case msgCoordinate:
		return f.applyCoordinates(idx, body)
	case msgCatalogTxn:
		return f.applyCatalogTxn(idx, body)
	case msgQuery:
		return f.applyQuery(idx, body)
	case msgACL:
		return f.applyACL(idx, body)
	case msgAutopilot:
		return f.applyAutopilot(idx, body)
	case msgKVReplicate:
		return f.applyKVReplicate(idx, body)
	default:
		// An entry from a newer version: skipping it would fork the state,
		// so stop loudly rather than diverge silently.
		panic(fmt.Sprintf("raft log entry %d has unknown command type %d: upgrade this server", idx, t))
	}
}

// Snapshot captures the state store as of now; Persist streams it later.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	tx, _ := f.state.read()
	return &fsmSnapshot{tx: tx}, nil
}

// Restore replaces the whole state store with a snapshot's content.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	dec := rpc.NewDecoder(bufio.NewReaderSize(rc, 256<<10))
	var version int
	if err := dec.Decode(&version); err != nil {
		return fmt.Errorf("read snapshot header: %w", err)
	}
	if version != 2 && version != snapshotVersion {
		return fmt.Errorf("snapshot version %d is not supported (want 2 or %d)", version, snapshotVersion)
	}
	sdb, err := newStateDB()
	if err != nil {
		return err
	}
	tx := sdb.db.Txn(true)
	if err := restoreSections(tx, dec, version); err != nil {
		tx.Abort()
		return err
	}
	tx.Commit()
	f.state.replace(sdb)
	return nil
}

// restoreSections reads the sections of a snapshot of the given version
// into tx: version 2 holds catalog's then kvstore's; version 3 names each
// section and ends with "".
func restoreSections(tx *memdb.Txn, dec catalog.Decoder, version int) error {
	sections := snapshotSections()
	if version == 2 {
		for _, sec := range sections[:2] {
			if err := sec.restore(tx, dec); err != nil {
				return fmt.Errorf("restore %s: %w", sec.name, err)
			}
		}
		return nil
	}
	for {
		var name string
		if err := dec.Decode(&name); err != nil {
			return fmt.Errorf("read snapshot section name: %w", err)
		}
		if name == "" {
			return nil
		}
		i := slices.IndexFunc(sections, func(s snapshotSection) bool { return s.name == name })
		if i < 0 {
			return fmt.Errorf("snapshot section %q is unknown: it was written by a newer version; upgrade this server", name)
		}
		if err := sections[i].restore(tx, dec); err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
	}
}

type fsmSnapshot struct {
	tx *memdb.Txn
}

// Persist writes the snapshot: a version, then each package's section.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriter(sink)
	enc := rpc.NewEncoder(w)
	err := enc.Encode(snapshotVersion)
	for _, sec := range snapshotSections() {
		if err == nil {
			err = enc.Encode(sec.name)
		}
		if err == nil {
			err = sec.persist(s.tx, enc)
		}
	}
	if err == nil {
		err = enc.Encode("")
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release ends the snapshot's read transaction.
func (s *fsmSnapshot) Release() { s.tx.Abort() }
