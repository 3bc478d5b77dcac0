package server

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/meridian/meridian/acl"
)

func applyACLCmd(t *testing.T, f *fsm, idx uint64, cmd *aclCommand) error {
	t.Helper()
	buf, err := encodeCommand(msgACL, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err, ok := f.applyCommand(idx, time.Unix(0, 0), msgType(buf[0]), buf[1:]).(error); ok {
		return err
	}
	return nil
}

// TestACLSnapshotRestore applies ACL commands through the FSM, takes the
// state through a Raft snapshot, and finds every token, policy and role,
// the bootstrap done, and the secrets resolving, after the restore.
func TestACLSnapshotRestore(t *testing.T) {
	st, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	f := &fsm{state: st}
	id := func() string { v, _ := acl.NewID(); return v }
	exp := time.Unix(4000, 0).UTC()
	boot := &acl.Token{AccessorID: id(), SecretID: id(), Policies: []acl.PolicyLink{{ID: acl.ManagementPolicyID}}}
	pol := &acl.Policy{ID: id(), Name: "kv", Rules: `key_prefix "app/" { policy = "write" }`}
	role := &acl.Role{ID: id(), Name: "r", Policies: []acl.PolicyLink{{ID: pol.ID}}}
	tok := &acl.Token{AccessorID: id(), SecretID: id(), Roles: []acl.RoleLink{{ID: role.ID}}, Local: true, ExpirationTime: &exp}
	for i, cmd := range []*aclCommand{
		{Op: aclOpBootstrap, Token: boot},
		{Op: aclOpPolicySet, Policy: pol},
		{Op: aclOpRoleSet, Role: role},
		{Op: aclOpTokenSet, Token: tok},
	} {
		if err := applyACLCmd(t, f, uint64(10+i), cmd); err != nil {
			t.Fatalf("apply %s: %v", cmd.Op, err)
		}
	}
	if err := applyACLCmd(t, f, 20, &aclCommand{Op: aclOpTokenSet}); !errors.Is(err, acl.ErrInvalid) {
		t.Errorf("token-set without a token = %v, want ErrInvalid", err)
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatalf("Persist = %v", err)
	}
	snap.Release()
	restored, err := newState()
	if err != nil {
		t.Fatal(err)
	}
	rf := &fsm{state: restored}
	if err := rf.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatalf("Restore = %v", err)
	}
	tx, _ := restored.read()
	defer tx.Abort()
	got, _, err := acl.TokenBySecret(tx, nil, tok.SecretID)
	if err != nil || got == nil || !got.Local || got.ExpirationTime == nil || !got.ExpirationTime.Equal(exp) || len(got.Roles) != 1 {
		t.Fatalf("restored token = %+v, %v", got, err)
	}
	auth, err := acl.Compile(tx, got, "dc1", false)
	if err != nil || !auth.Allowed(acl.ResKey, "app/x", acl.AccessWrite) {
		t.Errorf("restored token cannot write app/x: %v", err)
	}
	if p, _, _ := acl.PolicyByName(tx, nil, "kv"); p == nil || p.CreateIndex != 11 {
		t.Errorf("restored policy = %+v, want created at 11", p)
	}
	if acl.BootstrapIndex(tx) != 10 || acl.Index(tx, nil) != 13 {
		t.Errorf("restored bootstrap index %d, acl index %d; want 10 and 13", acl.BootstrapIndex(tx), acl.Index(tx, nil))
	}
	if err := applyACLCmd(t, rf, 30, &aclCommand{Op: aclOpBootstrap, Token: &acl.Token{AccessorID: id(), SecretID: id(), Policies: []acl.PolicyLink{{ID: acl.ManagementPolicyID}}}}); err == nil {
		t.Error("bootstrap after restore succeeded; the restored state was bootstrapped")
	}
}
