package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// maxTxnBody bounds a /v1/txn body: room for a few full-size values,
// base64 encoded, which is more than Consul's txn_max_req_len allows.
const maxTxnBody = 4 << 20

// TxnOp is one operation of a /v1/txn body, Consul's api.TxnOp: exactly
// one field is set, kvstore's operation on a key or catalog's on a node, a
// service or a check. The agent turns it into the server's transaction
// (httpapi does not import server); the fields are the same.
type TxnOp struct {
	KV      *kvstore.TxnOp        `json:",omitempty"`
	Node    *catalog.NodeTxnOp    `json:",omitempty"`
	Service *catalog.ServiceTxnOp `json:",omitempty"`
	Check   *catalog.CheckTxnOp   `json:",omitempty"`
}

// TxnRequest is a /v1/txn transaction with the read options it was sent
// with (see Agent.Txn).
type TxnRequest struct {
	Ops               []*TxnOp
	AllowStale        bool
	RequireConsistent bool
}

// TxnResult is what one operation answered, Consul's api.TxnResult: the
// entry it read or wrote, in the field of its kind.
type TxnResult struct {
	KV      *kvstore.DirEntry    `json:",omitempty"`
	Node    *catalog.Node        `json:",omitempty"`
	Service *catalog.Service     `json:",omitempty"`
	Check   *catalog.HealthCheck `json:",omitempty"`
}

// TxnResponse is the /v1/txn answer, Consul's api.TxnResponse: Results
// on 200, Errors on 409.
type TxnResponse struct {
	Results []*TxnResult
	Errors  []*rpc.TxnError
}

// decodeTxn decodes and checks a /v1/txn body: a JSON array of at most
// kvstore.MaxTxnOps operations, each of exactly one kind (KV, Node,
// Service or Check) and valid for it; anything else is a badRequest naming
// what is wrong, except too many operations, which answers 413 as
// Consul's does.
func decodeTxn(body []byte) ([]*TxnOp, error) {
	var ops []*TxnOp
	if err := json.Unmarshal(body, &ops); err != nil {
		return nil, badf("transaction: %s", jsonError(err))
	}
	if len(ops) > kvstore.MaxTxnOps {
		return nil, &tooLarge{msg: fmt.Sprintf("Transaction contains too many operations (%d > %d)", len(ops), kvstore.MaxTxnOps)}
	}
	for i, op := range ops {
		if err := validateTxnOp(op); err != nil {
			return nil, badf("transaction: operation %d: %v", i, err)
		}
	}
	return ops, nil
}

func validateTxnOp(op *TxnOp) error {
	n := 0
	if op != nil {
		for _, set := range []bool{op.KV != nil, op.Node != nil, op.Service != nil, op.Check != nil} {
			if set {
				n++
			}
		}
	}
	switch {
	case n != 1:
		return fmt.Errorf("want exactly one of KV, Node, Service or Check, got %d", n)
	case op.KV != nil:
		return op.KV.Validate()
	case op.Node != nil:
		return op.Node.Validate()
	case op.Service != nil:
		return op.Service.Validate()
	default:
		return op.Check.Validate()
	}
}

// txnReadOnly reports whether every operation only reads: the answer then
// carries the read headers.
func txnReadOnly(ops []*TxnOp) bool {
	for _, op := range ops {
		switch {
		case op.KV != nil && op.KV.ReadOnly():
		case op.Node != nil && op.Node.ReadOnly():
		case op.Service != nil && op.Service.ReadOnly():
		case op.Check != nil && op.Check.ReadOnly():
		default:
			return false
		}
	}
	return true
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
	args := rpc.Write[TxnRequest]{
		WriteOptions: rpc.WriteOptions{Datacenter: opts.Datacenter, Token: opts.Token},
		Args:         TxnRequest{Ops: ops, AllowStale: opts.AllowStale, RequireConsistent: opts.RequireConsistent},
	}
	var reply rpc.Answer[TxnResponse]
	if err := s.agent.Txn(r.Context(), &args, &reply); err != nil {
		return nil, err
	}
	if txnReadOnly(ops) {
		setMeta(w, &reply.QueryMeta)
	}
	if len(reply.Value.Errors) > 0 {
		return statusBody{code: http.StatusConflict, body: TxnResponse{Errors: reply.Value.Errors}}, nil
	}
	return TxnResponse{Results: emptyIfNil(reply.Value.Results)}, nil
}
