package server

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// TestCatalogTxnInBatch: a transaction with catalog operations is one
// entry (msgCatalogTxn); in a batch, one that fails is rolled back whole
// while the entries around it apply, each at its own index.
func TestCatalogTxnInBatch(t *testing.T) {
	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	f := &fsm{state: st, sessionTTL: newSessionTimers()}
	failing := &txnCommand{Ops: []*TxnOp{
		{KV: &kvstore.TxnOp{Verb: kvstore.VerbSet, Key: "half", Value: []byte("x")}},
		{Node: &catalog.NodeTxnOp{Verb: catalog.TxnSet, Node: catalog.Node{Node: "n1", Address: "10.0.0.1"}}},
		{Service: &catalog.ServiceTxnOp{Verb: catalog.TxnSet, Node: "ghost", Service: catalog.Service{Service: "web"}}},
	}}
	applied := &txnCommand{Ops: []*TxnOp{
		{Node: &catalog.NodeTxnOp{Verb: catalog.TxnSet, Node: catalog.Node{Node: "n2", Address: "10.0.0.2"}}},
		{Service: &catalog.ServiceTxnOp{Verb: catalog.TxnSet, Node: "n2", Service: catalog.Service{Service: "web"}}},
		{KV: &kvstore.TxnOp{Verb: kvstore.VerbSet, Key: "whole", Value: []byte("y")}},
	}}
	out := f.ApplyBatch(batchLogs(t, 10,
		&kvstore.KVRequest{Op: kvstore.VerbSet, Key: "before", Value: []byte("1")},
		failing,
		applied,
	))
	if len(out) != 3 || out[0] != true {
		t.Fatalf("ApplyBatch = %v, want [true <rolled back> <applied>]", out)
	}
	if r, ok := out[1].(*TxnResponse); !ok || len(r.Errors) != 1 || r.Errors[0].OpIndex != 2 || r.Results != nil {
		t.Fatalf("failing txn answered %+v, want the error of op 2 alone", out[1])
	}
	if r, ok := out[2].(*TxnResponse); !ok || len(r.Errors) != 0 || len(r.Results) != 3 || r.Results[1].Service.CreateIndex != 12 {
		t.Fatalf("applied txn answered %+v, want 3 results at index 12", out[2])
	}
	tx, _ := st.read()
	defer tx.Abort()
	for key, want := range map[string]bool{"before": true, "half": false, "whole": true} {
		if _, e, _ := kvstore.KVGet(tx, nil, key); (e != nil) != want {
			t.Errorf("key %q present = %v, want %v", key, e != nil, want)
		}
	}
	for name, want := range map[string]bool{"n1": false, "n2": true} {
		if _, n, _ := catalog.GetNode(tx, nil, name); (n != nil) != want {
			t.Errorf("node %q present = %v, want %v", name, n != nil, want)
		}
	}
}

// catalogTxnV1 is a msgCatalogTxn entry as the first version with the
// command wrote it (commit be06673, when its operation type was
// txnCommandOp): a KV set of k, a node n1, a service web on n1 and the
// delete of a check c of n1, at Now 1764000000 s.
const catalogTxnV1 = "" +
	"82a34e6f77d3187afca767ca0000a34f70739484a5436865636bc0a24b5686a5" +
	"466c61677300a5496e64657800a34b6579a16ba753657373696f6ea0a556616c" +
	"7565c40176a456657262a3736574a44e6f6465c0a753657276696365c084a543" +
	"6865636bc0a24b56c0a44e6f646582a44e6f646588a741646472657373a83130" +
	"2e302e302e31ab437265617465496e64657800aa4461746163656e746572a0a2" +
	"4944a0a44d657461c0ab4d6f64696679496e64657800a44e6f6465a26e31af54" +
	"6167676564416464726573736573c0a456657262a3736574a753657276696365" +
	"c084a5436865636bc0a24b56c0a44e6f6465c0a75365727669636583a44e6f64" +
	"65a26e31a7536572766963658aa741646472657373a0ab437265617465496e64" +
	"657800b1456e61626c655461674f76657272696465c2a24944a0a44d657461c0" +
	"ab4d6f64696679496e64657800a4506f727400a753657276696365a3776562a4" +
	"54616773c0a75765696768747382a750617373696e6700a75761726e696e6700" +
	"a456657262a373657484a5436865636b82a5436865636bde0010a7436865636b" +
	"4944a163ab437265617465496e64657800aa446566696e6974696f6e80ab4578" +
	"706f736564506f727400a8496e74657276616ca0ab4d6f64696679496e646578" +
	"00a44e616d65a0a44e6f6465a26e31a54e6f746573a0a64f7574707574a0a953" +
	"6572766963654944a0ab536572766963654e616d65a0ab536572766963655461" +
	"6773c0a6537461747573a0a754696d656f7574a0a454797065a0a456657262a6" +
	"64656c657465a24b56c0a44e6f6465c0a753657276696365c0"

// TestCatalogTxnEntryKeepsItsEncoding: that entry still decodes into
// txnCommand, encodes back to the same bytes (the command's operations
// are server.TxnOp now, whose fields are the same), and applies.
func TestCatalogTxnEntryKeepsItsEncoding(t *testing.T) {
	data, err := hex.DecodeString(catalogTxnV1)
	if err != nil {
		t.Fatal(err)
	}
	var cmd txnCommand
	if err := rpc.Unmarshal(data, &cmd); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(cmd.Ops) != 4 || cmd.Ops[0].KV == nil || cmd.Ops[1].Node == nil || cmd.Ops[2].Service == nil || cmd.Ops[3].Check == nil {
		t.Fatalf("decoded %+v, want KV, Node, Service and Check operations in that order", cmd.Ops)
	}
	again, err := rpc.Marshal(&cmd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Errorf("txnCommand encodes to\n%x\nwant (as written by be06673)\n%x", again, data)
	}

	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	f := &fsm{state: st, sessionTTL: newSessionTimers()}
	res := f.applyCommand(7, time.Unix(1764000000, 0), msgCatalogTxn, data)
	if r, ok := res.(*TxnResponse); !ok || len(r.Errors) != 0 {
		t.Fatalf("apply = %+v, want a TxnResponse without errors", res)
	}
	tx, _ := st.read()
	defer tx.Abort()
	if _, e, _ := kvstore.KVGet(tx, nil, "k"); e == nil || string(e.Value) != "v" || e.ModifyIndex != 7 {
		t.Errorf("key k = %+v, want v at index 7", e)
	}
	if _, n, _ := catalog.GetNode(tx, nil, "n1"); n == nil || n.Address != "10.0.0.1" {
		t.Errorf("node n1 = %+v, want address 10.0.0.1", n)
	}
}
