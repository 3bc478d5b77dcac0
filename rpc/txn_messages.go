package rpc

// TxnError says why operation OpIndex of a transaction (Txn.Apply) failed,
// Consul's api.TxnError: the error envelope of a transaction, whose
// operations and results are the types of the packages that own the state
// (the server composes them into its command).
type TxnError struct {
	OpIndex int
	What    string
}
