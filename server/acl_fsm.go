package server

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/rpc"
)

// msgACL is the Raft command type of every ACL write (an aclCommand). It
// is numbered apart from the others so that command types added meanwhile
// by other changes do not collide with it.
const msgACL msgType = 32

// aclOp is what an aclCommand does.
type aclOp string

const (
	aclOpBuiltins     aclOp = "builtins"
	aclOpBootstrap    aclOp = "bootstrap"
	aclOpTokenSet     aclOp = "token-set"
	aclOpTokenDelete  aclOp = "token-delete"
	aclOpPolicySet    aclOp = "policy-set"
	aclOpPolicyDelete aclOp = "policy-delete"
	aclOpRoleSet      aclOp = "role-set"
	aclOpRoleDelete   aclOp = "role-delete"
)

// aclCommand is one ACL write. Now is the leader's clock when it made the
// command (create times); the FSM never reads its own.
type aclCommand struct {
	Op         aclOp
	Token      *acl.Token  `json:",omitempty"`
	Policy     *acl.Policy `json:",omitempty"`
	Role       *acl.Role   `json:",omitempty"`
	ID         string      `json:",omitempty"`
	ResetIndex uint64      `json:",omitempty"`
	Now        int64
}

// applyACL is the FSM's side of msgACL.
func (f *fsm) applyACL(idx uint64, body []byte) any {
	var cmd aclCommand
	if err := rpc.Unmarshal(body, &cmd); err != nil {
		return fmt.Errorf("decode acl write at index %d: %w", idx, err)
	}
	now := time.Unix(0, cmd.Now)
	return f.state.write(func(tx *memdb.Txn) error {
		switch {
		case cmd.Op == aclOpBuiltins:
			return acl.EnsureBuiltins(tx, idx, now)
		case cmd.Op == aclOpBootstrap && cmd.Token != nil:
			return acl.Bootstrap(tx, idx, now, cmd.Token, cmd.ResetIndex)
		case cmd.Op == aclOpTokenSet && cmd.Token != nil:
			return acl.TokenSet(tx, idx, cmd.Token)
		case cmd.Op == aclOpTokenDelete:
			return acl.TokenDelete(tx, idx, cmd.ID)
		case cmd.Op == aclOpPolicySet && cmd.Policy != nil:
			return acl.PolicySet(tx, idx, cmd.Policy)
		case cmd.Op == aclOpPolicyDelete:
			return acl.PolicyDelete(tx, idx, cmd.ID)
		case cmd.Op == aclOpRoleSet && cmd.Role != nil:
			return acl.RoleSet(tx, idx, cmd.Role)
		case cmd.Op == aclOpRoleDelete:
			return acl.RoleDelete(tx, idx, cmd.ID)
		}
		return fmt.Errorf("acl write at index %d: operation %q without its object: %w", idx, cmd.Op, acl.ErrInvalid)
	})
}
