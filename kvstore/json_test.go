package kvstore

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestDirEntryJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *DirEntry
		want *api.KVPair
	}{
		{"plain", &DirEntry{Key: "a/b", Value: []byte("hello\x00"), Flags: 42, CreateIndex: 3, ModifyIndex: 9},
			&api.KVPair{Key: "a/b", Value: []byte("hello\x00"), Flags: 42, CreateIndex: 3, ModifyIndex: 9}},
		{"locked", &DirEntry{Key: "l", Value: []byte{}, Session: "s1", LockIndex: 2, CreateIndex: 1, ModifyIndex: 2},
			&api.KVPair{Key: "l", Value: []byte{}, Session: "s1", LockIndex: 2, CreateIndex: 1, ModifyIndex: 2}},
		{"nil value", &DirEntry{Key: "n"}, &api.KVPair{Key: "n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tc.in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			var got api.KVPair
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("Unmarshal(%s) into api.KVPair: %v", b, err)
			}
			if !reflect.DeepEqual(&got, tc.want) {
				t.Errorf("api.KVPair from %s = %+v, want %+v", b, got, tc.want)
			}
		})
	}
	// Session is omitted when unset, as Consul writes it.
	b, _ := json.Marshal(&DirEntry{Key: "k"})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if _, ok := m["Session"]; ok {
		t.Errorf("json.Marshal(unlocked entry) = %s, want no Session field", b)
	}
}

func TestSessionJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want time.Duration
	}{
		{`{"LockDelay": "15s"}`, 15 * time.Second},
		{`{"LockDelay": "15000ms"}`, 15 * time.Second}, // what the Go client sends
		{`{"LockDelay": 15}`, 15 * time.Second},        // small numbers are seconds
		{`{"LockDelay": 999}`, 999 * time.Second},
		{`{"LockDelay": 15000000000}`, 15 * time.Second},
		{`{"LockDelay": "20ns"}`, 20 * time.Second},
		{`{"LockDelay": 0}`, 0},
		{`{"lockdelay": "1m"}`, time.Minute},
		{`{"LockDelay": null}`, 0},
		{`{}`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.body, func(t *testing.T) {
			var s Session
			if err := json.Unmarshal([]byte(tc.body), &s); err != nil || s.LockDelay != tc.want {
				t.Errorf("Unmarshal(%s) LockDelay = %v, %v, want %v", tc.body, s.LockDelay, err, tc.want)
			}
		})
	}
	for _, bad := range []string{`{"LockDelay": "soon"}`, `{"LockDelay": true}`, `{"Name": 3}`} {
		var s Session
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s) = nil error, want one", bad)
		}
	}

	// What the Go client creates decodes into a Session, and what we write
	// decodes into api.SessionEntry.
	in := api.SessionEntry{Name: "lock", Node: "n1", LockDelay: 15 * time.Second, Behavior: "delete", TTL: "30s",
		NodeChecks: []string{"serfHealth"}, ServiceChecks: []api.ServiceCheck{{ID: "web"}}}
	body := map[string]any{"Name": in.Name, "Node": in.Node, "LockDelay": "15000ms", "Behavior": in.Behavior,
		"TTL": in.TTL, "NodeChecks": in.NodeChecks, "ServiceChecks": in.ServiceChecks}
	b, _ := json.Marshal(body)
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	s.ID, s.CreateIndex, s.ModifyIndex = "1b4c2b8e-0000-4000-8000-000000000001", 7, 7
	out, err := json.Marshal(&s)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var got api.SessionEntry
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("Unmarshal(%s) into api.SessionEntry: %v", out, err)
	}
	want := in
	want.ID, want.CreateIndex = s.ID, 7
	if !reflect.DeepEqual(got, want) {
		t.Errorf("api.SessionEntry from %s = %+v, want %+v", out, got, want)
	}
}

func TestTxnJSON(t *testing.T) {
	t.Parallel()
	resp := struct {
		Results []*TxnResult
		Errors  []*TxnError
	}{
		Results: []*TxnResult{{KV: &DirEntry{Key: "k", Value: []byte("v"), ModifyIndex: 4}}},
		Errors:  []*TxnError{{OpIndex: 1, What: `key "foo" doesn't exist`}},
	}
	b, _ := json.Marshal(resp)
	var got api.TxnResponse
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("Unmarshal(%s) into api.TxnResponse: %v", b, err)
	}
	if len(got.Results) != 1 || got.Results[0].KV == nil || string(got.Results[0].KV.Value) != "v" ||
		len(got.Errors) != 1 || *got.Errors[0] != (api.TxnError{OpIndex: 1, What: `key "foo" doesn't exist`}) {
		t.Errorf("api.TxnResponse from %s = %+v", b, got)
	}

	// A KV op as the Go client sends it decodes into a TxnOp.
	op := api.KVTxnOp{Verb: api.KVCAS, Key: "k", Value: []byte("v"), Flags: 1, Index: 9, Session: "s"}
	b, _ = json.Marshal(op)
	var ours TxnOp
	if err := json.Unmarshal(b, &ours); err != nil {
		t.Fatalf("Unmarshal(%s) into TxnOp: %v", b, err)
	}
	want := TxnOp{Verb: VerbCAS, Key: "k", Value: []byte("v"), Flags: 1, Index: 9, Session: "s"}
	if !reflect.DeepEqual(ours, want) {
		t.Errorf("TxnOp from %s = %+v, want %+v", b, ours, want)
	}
}
