package server

import (
	"bufio"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
)

// TestLogOfVersion010Applies: the Raft log entries Meridian 0.1.0 wrote
// (testdata/log-v0.1.0.txt: a node, KV sets, a delete, a session, a lock,
// a transaction and a prepared query, in that order) still apply, each to
// what it meant then, so a data dir of that version keeps its state after
// an upgrade whatever the commands' Go types are called now.
func TestLogOfVersion010Applies(t *testing.T) {
	f, err := os.Open("testdata/log-v0.1.0.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	fsm := &fsm{state: st, sessionTTL: newSessionTimers()}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	idx := uint64(0)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, data, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("line %q: want a name, a tab and hex", line)
		}
		buf, err := hex.DecodeString(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		idx++
		if res, ok := fsm.applyCommand(idx, time.Unix(1764000000, 0), msgType(buf[0]), buf[1:]).(error); ok && res != nil {
			t.Fatalf("apply %s (index %d): %v", name, idx, res)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	tx, _ := st.read()
	defer tx.Abort()
	if _, node, err := catalog.GetNode(tx, nil, "n1"); err != nil || node == nil || node.Address != "10.0.0.1" {
		t.Errorf("node n1 = %+v (%v), want address 10.0.0.1", node, err)
	}
	for key, want := range map[string]string{"a": "1", "c": "held", "d": "4", "e": "5"} {
		if _, e, err := kvstore.KVGet(tx, nil, key); err != nil || e == nil || string(e.Value) != want {
			t.Errorf("key %q = %+v (%v), want value %q", key, e, err, want)
		}
	}
	if _, e, _ := kvstore.KVGet(tx, nil, "a"); e != nil && e.Flags != 7 {
		t.Errorf("key a flags %d, want 7", e.Flags)
	}
	if _, e, err := kvstore.KVGet(tx, nil, "b"); err != nil || e != nil {
		t.Errorf("deleted key b = %+v (%v), want none", e, err)
	}
	const sessionID = "5b4f2d2e-7d1c-4f3e-9a61-3d0c8a1f2b10"
	if _, s, err := kvstore.SessionGet(tx, nil, sessionID); err != nil || s == nil || s.Name != "s" {
		t.Errorf("session = %+v (%v), want the one named s", s, err)
	}
	if _, e, _ := kvstore.KVGet(tx, nil, "c"); e == nil || e.Session != sessionID {
		t.Errorf("key c = %+v, want locked by the session", e)
	}
	if _, q, err := catalog.QueryGet(tx, nil, "0e6a1b52-3c4d-4e5f-8a9b-0c1d2e3f4a5b"); err != nil || q == nil || q.Name != "web-q" || q.Service.Service != "web" {
		t.Errorf("prepared query = %+v (%v), want web-q for service web", q, err)
	}
}
