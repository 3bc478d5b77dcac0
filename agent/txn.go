package agent

import (
	"context"

	"github.com/meridian/meridian/httpapi"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

// Txn applies a /v1/txn transaction: httpapi's body becomes the server's
// Txn.Apply request and the server's answer httpapi's. The two have the
// same fields (kvstore's and catalog's operations and entries), so each
// operation and result converts as a whole; httpapi cannot import server,
// which owns the command.
func (a *Agent) Txn(ctx context.Context, args *rpc.Write[httpapi.TxnRequest], reply *rpc.Answer[httpapi.TxnResponse]) error {
	req := rpc.Write[server.TxnRequest]{
		WriteOptions: args.WriteOptions,
		Args: server.TxnRequest{
			Ops:               make([]*server.TxnOp, len(args.Args.Ops)),
			AllowStale:        args.Args.AllowStale,
			RequireConsistent: args.Args.RequireConsistent,
		},
	}
	for i, op := range args.Args.Ops {
		if op != nil {
			req.Args.Ops[i] = new(server.TxnOp(*op))
		}
	}
	var out rpc.Answer[server.TxnResponse]
	if err := a.RPC(ctx, rpc.MethodTxnApply, &req, &out); err != nil {
		return err
	}
	reply.QueryMeta = out.QueryMeta
	reply.Value = httpapi.TxnResponse{Errors: out.Value.Errors}
	if out.Value.Results != nil {
		reply.Value.Results = make([]*httpapi.TxnResult, len(out.Value.Results))
		for i, r := range out.Value.Results {
			if r != nil {
				reply.Value.Results[i] = new(httpapi.TxnResult(*r))
			}
		}
	}
	return nil
}
