package server

import (
	"errors"
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
	// aclOpReplicate applies one round of replication from the primary:
	// Delete (IDs of Kind) goes, then Policies, Roles or Tokens are
	// stored, all in one transaction.
	aclOpReplicate aclOp = "replicate"
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
	// Kind, Delete, Policies, Roles and Tokens are a replication round's
	// (aclOpReplicate).
	Kind     replicationKind `json:",omitempty"`
	Delete   []string        `json:",omitempty"`
	Policies []*acl.Policy   `json:",omitempty"`
	Roles    []*acl.Role     `json:",omitempty"`
	Tokens   []*acl.Token    `json:",omitempty"`
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
		case cmd.Op == aclOpReplicate:
			return applyReplication(tx, idx, &cmd)
		}
		return fmt.Errorf("acl write at index %d: operation %q without its object: %w", idx, cmd.Op, acl.ErrInvalid)
	})
}

// applyReplication stores one replication round: the deletes first (so
// that a name freed in the primary can be taken again), then the objects.
func applyReplication(tx *memdb.Txn, idx uint64, cmd *aclCommand) error {
	del := map[replicationKind]func(*memdb.Txn, uint64, string) error{
		replicatePolicies: acl.PolicyDelete, replicateRoles: acl.RoleDelete, replicateTokens: acl.TokenDelete,
	}[cmd.Kind]
	if del == nil {
		return fmt.Errorf("acl replication at index %d: unknown kind %q: %w", idx, cmd.Kind, acl.ErrInvalid)
	}
	for _, id := range cmd.Delete {
		if err := del(tx, idx, id); err != nil && !errors.Is(err, acl.ErrNotFound) {
			return err
		}
	}
	for _, p := range cmd.Policies {
		if err := acl.PolicySet(tx, idx, p); err != nil {
			return err
		}
	}
	for _, r := range cmd.Roles {
		if err := acl.RoleSet(tx, idx, r); err != nil {
			return err
		}
	}
	for _, t := range cmd.Tokens {
		if err := acl.TokenSet(tx, idx, t); err != nil {
			return err
		}
	}
	return nil
}
