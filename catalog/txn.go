package catalog

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// TxnVerb is what a node, service or check operation of a transaction
// does, spelled as Consul's api.NodeOp, api.ServiceOp and api.CheckOp.
type TxnVerb string

// The verbs of the catalog's transaction operations.
const (
	// TxnGet reads the node, service or check, failing if it is absent.
	TxnGet TxnVerb = "get"
	// TxnSet creates or replaces it, as a registration does.
	TxnSet TxnVerb = "set"
	// TxnCAS sets it if its ModifyIndex is the operation's (0: if absent).
	TxnCAS TxnVerb = "cas"
	// TxnDelete removes it; removing something absent is not an error.
	TxnDelete TxnVerb = "delete"
	// TxnDeleteCAS removes it if it exists with the operation's
	// ModifyIndex.
	TxnDeleteCAS TxnVerb = "delete-cas"
)

func (v TxnVerb) known() bool {
	switch v {
	case TxnGet, TxnSet, TxnCAS, TxnDelete, TxnDeleteCAS:
		return true
	}
	return false
}

// NodeTxnOp is a node operation of a transaction (api.NodeTxnOp). Get
// finds the node by ID when one is given, else by name; the others by
// name (a delete given only an ID looks the name up). Node.ModifyIndex is
// what cas and delete-cas compare with. Only the node is written: its
// services and checks take operations of their own.
type NodeTxnOp struct {
	Verb TxnVerb
	Node Node
}

// ServiceTxnOp is a service operation of a transaction
// (api.ServiceTxnOp): Service on the node named Node. Service.ID (or, when
// it is empty, Service.Service) names the instance; Service.ModifyIndex is
// what cas and delete-cas compare with.
type ServiceTxnOp struct {
	Verb    TxnVerb
	Node    string
	Service Service
}

// CheckTxnOp is a check operation of a transaction (api.CheckTxnOp):
// Check.Node and Check.CheckID (or, when it is empty, Check.Name) name the
// check; Check.ModifyIndex is what cas and delete-cas compare with.
type CheckTxnOp struct {
	Verb  TxnVerb
	Check HealthCheck
}

// ReadOnly reports whether the operation only reads.
func (op *NodeTxnOp) ReadOnly() bool { return op.Verb == TxnGet }

// ReadOnly reports whether the operation only reads.
func (op *ServiceTxnOp) ReadOnly() bool { return op.Verb == TxnGet }

// ReadOnly reports whether the operation only reads.
func (op *CheckTxnOp) ReadOnly() bool { return op.Verb == TxnGet }

// Validate checks a node operation before it is submitted: a known verb
// and a node name (or, for get and the deletes, a node ID). Its errors
// wrap ErrInvalidRequest.
func (op *NodeTxnOp) Validate() error {
	if !op.Verb.known() {
		return fmt.Errorf("unknown Node verb %q (want get, set, cas, delete or delete-cas): %w", op.Verb, ErrInvalidRequest)
	}
	n := &op.Node
	if n.Node == "" && (n.ID == "" || op.Verb == TxnSet || op.Verb == TxnCAS) {
		return fmt.Errorf("node %s: must provide the node's name (Node.Node): %w", op.Verb, ErrInvalidRequest)
	}
	return nil
}

// Validate checks a service operation before it is submitted: a known
// verb, a node name, a service ID or name, and a name to set. Its errors
// wrap ErrInvalidRequest.
func (op *ServiceTxnOp) Validate() error {
	if !op.Verb.known() {
		return fmt.Errorf("unknown Service verb %q (want get, set, cas, delete or delete-cas): %w", op.Verb, ErrInvalidRequest)
	}
	switch {
	case op.Node == "":
		return fmt.Errorf("service %s: must provide the node's name (Node): %w", op.Verb, ErrInvalidRequest)
	case op.Service.ID == "" && op.Service.Service == "":
		return fmt.Errorf("service %s on node %q: must provide the service's ID or name: %w", op.Verb, op.Node, ErrInvalidRequest)
	case op.Service.Service == "" && (op.Verb == TxnSet || op.Verb == TxnCAS):
		return fmt.Errorf("service %s %q on node %q: must provide the service's name (Service.Service): %w", op.Verb, op.Service.ID, op.Node, ErrInvalidRequest)
	}
	return nil
}

// Validate checks a check operation before it is submitted: a known verb,
// a node name, a check ID or name, and a known status to set. Its errors
// wrap ErrInvalidRequest.
func (op *CheckTxnOp) Validate() error {
	if !op.Verb.known() {
		return fmt.Errorf("unknown Check verb %q (want get, set, cas, delete or delete-cas): %w", op.Verb, ErrInvalidRequest)
	}
	c := &op.Check
	switch {
	case c.Node == "":
		return fmt.Errorf("check %s: must provide the node's name (Check.Node): %w", op.Verb, ErrInvalidRequest)
	case c.CheckID == "" && c.Name == "":
		return fmt.Errorf("check %s on node %q: must provide the check's ID (Check.CheckID): %w", op.Verb, c.Node, ErrInvalidRequest)
	}
	if op.Verb == TxnSet || op.Verb == TxnCAS {
		switch c.Status {
		case "", HealthPassing, HealthWarning, HealthCritical:
		default:
			return fmt.Errorf("check %s %q on node %q: status %q is not passing, warning or critical: %w", op.Verb, op.checkID(), c.Node, c.Status, ErrInvalidRequest)
		}
	}
	return nil
}

func (op *CheckTxnOp) checkID() string {
	if op.Check.CheckID == "" {
		return op.Check.Name
	}
	return op.Check.CheckID
}

// refusal is an operation's expected "no" (absent, stale index), worded
// as Consul words it in a transaction's errors.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refusedf(format string, args ...any) error { return &refusal{msg: fmt.Sprintf(format, args...)} }

// NodeTxn applies a node operation in tx at Raft index idx (get may run on
// a read transaction) and answers the node as it is after it, or nil for
// the deletes. An error means the transaction must be rolled back: tx may
// hold part of the operation. Its text is what the transaction reports.
func NodeTxn(tx *memdb.Txn, idx uint64, op *NodeTxnOp) (*Node, error) {
	if err := op.Validate(); err != nil {
		return nil, err
	}
	n := &op.Node
	var existing *Node
	var err error
	if op.Verb == TxnGet || n.Node == "" {
		existing, err = nodeByIDOrName(tx, n.ID, n.Node)
	} else {
		existing, err = getNode(tx, n.Node)
	}
	if err != nil {
		return nil, err
	}
	name := n.Node
	if name == "" && existing != nil {
		name = existing.Node
	}
	switch op.Verb {
	case TxnGet:
		if existing == nil {
			return nil, refusedf("node %q doesn't exist", nodeLabel(n))
		}
		return cloneNode(existing), nil
	case TxnCAS:
		if !casMatches(existing != nil, modifyIndex(existing), n.ModifyIndex) {
			return nil, refusedf("failed to set node %q, index is stale", n.Node)
		}
		fallthrough
	case TxnSet:
		if err := EnsureNode(tx, idx, n); err != nil {
			return nil, err
		}
		stored, err := getNode(tx, n.Node)
		if err != nil || stored == nil {
			return nil, wrapIf(err, "node %q not stored", n.Node)
		}
		return cloneNode(stored), nil
	case TxnDeleteCAS:
		if existing == nil || existing.ModifyIndex != n.ModifyIndex {
			return nil, refusedf("failed to delete node %q, index is stale", nodeLabel(n))
		}
		fallthrough
	default: // TxnDelete
		if name == "" {
			return nil, nil // an ID that names no node: nothing to delete
		}
		return nil, DeleteNode(tx, idx, name)
	}
}

// ServiceTxn applies a service operation as NodeTxn does a node's: set
// needs the node registered (ErrMissingNode otherwise).
func ServiceTxn(tx *memdb.Txn, idx uint64, op *ServiceTxnOp) (*Service, error) {
	if err := op.Validate(); err != nil {
		return nil, err
	}
	id := op.Service.ID
	if id == "" {
		id = op.Service.Service
	}
	existing, err := getService(tx, op.Node, id)
	if err != nil {
		return nil, err
	}
	switch op.Verb {
	case TxnGet:
		if existing == nil {
			return nil, refusedf("service %q on node %q doesn't exist", id, op.Node)
		}
		return cloneService(existing), nil
	case TxnCAS:
		if !casMatches(existing != nil, serviceModifyIndex(existing), op.Service.ModifyIndex) {
			return nil, refusedf("failed to set service %q on node %q, index is stale", id, op.Node)
		}
		fallthrough
	case TxnSet:
		if err := EnsureService(tx, idx, op.Node, &op.Service); err != nil {
			return nil, err
		}
		stored, err := getService(tx, op.Node, id)
		if err != nil || stored == nil {
			return nil, wrapIf(err, "service %q on node %q not stored", id, op.Node)
		}
		return cloneService(stored), nil
	case TxnDeleteCAS:
		if existing == nil || existing.ModifyIndex != op.Service.ModifyIndex {
			return nil, refusedf("failed to delete service %q on node %q, index is stale", id, op.Node)
		}
		fallthrough
	default: // TxnDelete
		return nil, DeleteService(tx, idx, op.Node, id)
	}
}

// CheckTxn applies a check operation as NodeTxn does a node's: set needs
// the node registered (ErrMissingNode) and, for a service check, the
// service on it (ErrMissingService).
func CheckTxn(tx *memdb.Txn, idx uint64, op *CheckTxnOp) (*HealthCheck, error) {
	if err := op.Validate(); err != nil {
		return nil, err
	}
	c := op.Check
	c.CheckID = op.checkID()
	existing, err := getCheck(tx, c.Node, c.CheckID)
	if err != nil {
		return nil, err
	}
	switch op.Verb {
	case TxnGet:
		if existing == nil {
			return nil, refusedf("check %q on node %q doesn't exist", c.CheckID, c.Node)
		}
		return cloneCheck(existing), nil
	case TxnCAS:
		var have uint64
		if existing != nil {
			have = existing.ModifyIndex
		}
		if !casMatches(existing != nil, have, c.ModifyIndex) {
			return nil, refusedf("failed to set check %q on node %q, index is stale", c.CheckID, c.Node)
		}
		fallthrough
	case TxnSet:
		if err := EnsureCheck(tx, idx, &c); err != nil {
			return nil, err
		}
		stored, err := getCheck(tx, c.Node, c.CheckID)
		if err != nil || stored == nil {
			return nil, wrapIf(err, "check %q on node %q not stored", c.CheckID, c.Node)
		}
		return cloneCheck(stored), nil
	case TxnDeleteCAS:
		if existing == nil || existing.ModifyIndex != c.ModifyIndex {
			return nil, refusedf("failed to delete check %q on node %q, index is stale", c.CheckID, c.Node)
		}
		fallthrough
	default: // TxnDelete
		return nil, DeleteCheck(tx, idx, c.Node, c.CheckID)
	}
}

// Index returns the highest index of the node, service and check tables
// (at least 1): what a read-only transaction answers with.
func Index(tx *memdb.Txn) (uint64, error) {
	return tablesIndex(tx, nil, tableNodes, tableServices, tableChecks)
}

// casMatches is Consul's check-and-set rule: index 0 sets only what does
// not exist; any other index only what exists with that ModifyIndex.
func casMatches(exists bool, have, want uint64) bool {
	if want == 0 {
		return !exists
	}
	return exists && have == want
}

func modifyIndex(n *Node) uint64 {
	if n == nil {
		return 0
	}
	return n.ModifyIndex
}

func serviceModifyIndex(s *Service) uint64 {
	if s == nil {
		return 0
	}
	return s.ModifyIndex
}

// nodeByIDOrName finds a node by ID when one is given (Consul's
// precedence), else by name.
func nodeByIDOrName(tx *memdb.Txn, id, name string) (*Node, error) {
	if id == "" {
		return getNode(tx, name)
	}
	name, err := nodeNameOf(tx, id)
	if err != nil || name == "" {
		return nil, err
	}
	return getNode(tx, name)
}

// getService returns the service with that ID on the node, or nil.
func getService(tx *memdb.Txn, node, id string) (*Service, error) {
	r, err := getRow(tx, node)
	if r == nil {
		return nil, err
	}
	return r.service(id), nil
}

// getCheck returns the check with that ID on the node, or nil.
func getCheck(tx *memdb.Txn, node, id string) (*HealthCheck, error) {
	r, err := getRow(tx, node)
	if r == nil {
		return nil, err
	}
	if c := r.check(id); c != nil {
		return r.healthCheck(c), nil
	}
	return nil, nil
}

// nodeLabel names a node in an error: its name, or its ID when it has
// none.
func nodeLabel(n *Node) string {
	if n.Node == "" {
		return n.ID
	}
	return n.Node
}
