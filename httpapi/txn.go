package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// maxTxnBody bounds a /v1/txn body: room for a few full-size values,
// base64 encoded, which is more than Consul's txn_max_req_len allows.
const maxTxnBody = 4 << 20

// txnOpJSON is one operation of a /v1/txn body; only KV operations are
// supported.
type txnOpJSON struct {
	KV *kvstore.TxnOp
}

// txnAnswer is /v1/txn's answer: Results on 200, Errors on 409.
type txnAnswer struct {
	Results []*kvstore.TxnResult
	Errors  []*kvstore.TxnError
}

// decodeTxn decodes and checks a /v1/txn body: a JSON array of at most
// kvstore.MaxTxnOps {"KV": {...}} operations with known verbs and base64
// values; anything else is a badRequest naming what is wrong, except too
// many operations, which answers 413 as Consul's does.
func decodeTxn(body []byte) ([]*kvstore.TxnOp, error) {
	var raw []txnOpJSON
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, badf("transaction: %s", jsonError(err))
	}
	if len(raw) > kvstore.MaxTxnOps {
		return nil, &tooLarge{msg: fmt.Sprintf("Transaction contains too many operations (%d > %d)", len(raw), kvstore.MaxTxnOps)}
	}
	ops := make([]*kvstore.TxnOp, len(raw))
	for i, op := range raw {
		if op.KV == nil {
			return nil, badf("transaction: operation %d: only KV operations are supported", i)
		}
		ops[i] = op.KV
	}
	if err := kvstore.ValidateTxn(ops); err != nil {
		return nil, badf("transaction: %v", err)
	}
	return ops, nil
}

func (s *Server) txn(w http.ResponseWriter, r *http.Request) (any, error) {
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r, maxTxnBody)
	if err != nil {
		return nil, err
	}
	ops, err := decodeTxn(body)
	if err != nil {
		return nil, err
	}
	args := rpc.Write[kvstore.TxnRequest]{
		WriteOptions: rpc.WriteOptions{Datacenter: opts.Datacenter, Token: opts.Token},
		Args:         kvstore.TxnRequest{Ops: ops, AllowStale: opts.AllowStale, RequireConsistent: opts.RequireConsistent},
	}
	var reply rpc.Answer[kvstore.TxnResponse]
	if err := s.agent.RPC(r.Context(), rpc.MethodTxnApply, &args, &reply); err != nil {
		return nil, err
	}
	if kvstore.TxnReadOnly(ops) {
		setMeta(w, &reply.QueryMeta)
	}
	if len(reply.Value.Errors) > 0 {
		return statusBody{code: http.StatusConflict, body: txnAnswer{Errors: reply.Value.Errors}}, nil
	}
	return txnAnswer{Results: emptyIfNil(reply.Value.Results)}, nil
}
