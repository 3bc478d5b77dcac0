package acl

import (
	"errors"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

func newDB(t testing.TB) *memdb.MemDB {
	t.Helper()
	db, err := memdb.NewMemDB(&memdb.DBSchema{Tables: Tables()})
	if err != nil {
		t.Fatalf("NewMemDB: %v", err)
	}
	return db
}

// write applies fn in a write transaction, committed when it succeeds.
func write(db *memdb.MemDB, fn func(tx *memdb.Txn) error) error {
	tx := db.Txn(true)
	if err := fn(tx); err != nil {
		tx.Abort()
		return err
	}
	tx.Commit()
	return nil
}

func mustWrite(t testing.TB, db *memdb.MemDB, fn func(tx *memdb.Txn) error) {
	t.Helper()
	if err := write(db, fn); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func newID(t testing.TB) string {
	t.Helper()
	id, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestBootstrapOnce(t *testing.T) {
	db := newDB(t)
	now := time.Unix(1000, 0)
	boot := &Token{AccessorID: newID(t), SecretID: newID(t), Policies: []PolicyLink{{ID: ManagementPolicyID}}}
	mustWrite(t, db, func(tx *memdb.Txn) error { return Bootstrap(tx, 5, now, boot, 0) })

	second := &Token{AccessorID: newID(t), SecretID: newID(t), Policies: []PolicyLink{{ID: ManagementPolicyID}}}
	err := write(db, func(tx *memdb.Txn) error { return Bootstrap(tx, 6, now, second, 0) })
	var done *BootstrapDoneError
	if !errors.As(err, &done) || done.ResetIndex != 5 {
		t.Fatalf("second Bootstrap = %v, want BootstrapDoneError with reset index 5", err)
	}
	if !strings.Contains(err.Error(), "reset index: 5") {
		t.Errorf("error %q does not give the reset index", err)
	}
	// A reset naming the bootstrap index allows it again.
	mustWrite(t, db, func(tx *memdb.Txn) error { return Bootstrap(tx, 7, now, second, 5) })

	tx := db.Txn(false)
	got, _, err := TokenBySecret(tx, nil, boot.SecretID)
	if err != nil || got == nil || got.AccessorID != boot.AccessorID {
		t.Fatalf("TokenBySecret(bootstrap) = %v, %v", got, err)
	}
	if len(got.Policies) != 1 || got.Policies[0].Name != ManagementPolicyName {
		t.Errorf("bootstrap token policies = %v, want the management policy by name", got.Policies)
	}
	anon, _, _ := TokenByAccessor(tx, nil, AnonymousAccessorID)
	if anon == nil || anon.SecretID != AnonymousSecretID {
		t.Errorf("anonymous token = %v, want it created by bootstrap", anon)
	}
	if BootstrapIndex(tx) != 7 {
		t.Errorf("BootstrapIndex = %d, want 7", BootstrapIndex(tx))
	}
}

func TestWritesRefuseBadInput(t *testing.T) {
	db := newDB(t)
	now := time.Unix(1000, 0)
	mustWrite(t, db, func(tx *memdb.Txn) error { return EnsureBuiltins(tx, 1, now) })
	polID := newID(t)
	mustWrite(t, db, func(tx *memdb.Txn) error {
		return PolicySet(tx, 2, &Policy{ID: polID, Name: "kv-app", Rules: `key_prefix "app/" { policy = "write" }`})
	})
	tokID, tokSecret := newID(t), newID(t)
	mustWrite(t, db, func(tx *memdb.Txn) error {
		return TokenSet(tx, 3, &Token{AccessorID: tokID, SecretID: tokSecret, Policies: []PolicyLink{{Name: "kv-app"}}})
	})
	tests := []struct {
		name string
		fn   func(tx *memdb.Txn) error
		want string
	}{
		{"policy name reused", func(tx *memdb.Txn) error {
			return PolicySet(tx, 9, &Policy{ID: newID(t), Name: "KV-app"})
		}, `policy name "KV-app" is already in use`},
		{"malformed rules", func(tx *memdb.Txn) error {
			return PolicySet(tx, 9, &Policy{ID: newID(t), Name: "bad", Rules: "key \"a\" {\n policy = \"rw\"\n}"})
		}, "line 2, column 11"},
		{"unknown resource", func(tx *memdb.Txn) error {
			return PolicySet(tx, 9, &Policy{ID: newID(t), Name: "bad", Rules: `kv "a" { policy = "read" }`})
		}, `unknown resource "kv"`},
		{"policy ID not a UUID", func(tx *memdb.Txn) error {
			return PolicySet(tx, 9, &Policy{ID: "p1", Name: "p1"})
		}, "not a UUID"},
		{"policy name bad", func(tx *memdb.Txn) error {
			return PolicySet(tx, 9, &Policy{ID: newID(t), Name: "a b"})
		}, `policy name "a b"`},
		{"management renamed", func(tx *memdb.Txn) error {
			return PolicySet(tx, 9, &Policy{ID: ManagementPolicyID, Name: "mine", Rules: ManagementRules})
		}, "cannot be renamed"},
		{"management rules changed", func(tx *memdb.Txn) error {
			return PolicySet(tx, 9, &Policy{ID: ManagementPolicyID, Name: ManagementPolicyName, Rules: `acl = "read"`})
		}, "cannot change"},
		{"management deleted", func(tx *memdb.Txn) error { return PolicyDelete(tx, 9, ManagementPolicyID) }, "cannot be deleted"},
		{"secret not a UUID", func(tx *memdb.Txn) error {
			return TokenSet(tx, 9, &Token{AccessorID: newID(t), SecretID: "hunter2"})
		}, "SecretID is not a UUID"},
		{"accessor not a UUID", func(tx *memdb.Txn) error {
			return TokenSet(tx, 9, &Token{AccessorID: "x", SecretID: newID(t)})
		}, `AccessorID "x" is not a UUID`},
		{"secret reused", func(tx *memdb.Txn) error {
			return TokenSet(tx, 9, &Token{AccessorID: newID(t), SecretID: tokSecret})
		}, "already in use"},
		{"secret changed", func(tx *memdb.Txn) error {
			return TokenSet(tx, 9, &Token{AccessorID: tokID, SecretID: newID(t)})
		}, "cannot change"},
		{"local changed", func(tx *memdb.Txn) error {
			return TokenSet(tx, 9, &Token{AccessorID: tokID, Local: true})
		}, "between local and global"},
		{"link to no policy", func(tx *memdb.Txn) error {
			return TokenSet(tx, 9, &Token{AccessorID: newID(t), SecretID: newID(t), Policies: []PolicyLink{{Name: "nope"}}})
		}, `policy "nope" does not exist`},
		{"link to no role", func(tx *memdb.Txn) error {
			return TokenSet(tx, 9, &Token{AccessorID: newID(t), SecretID: newID(t), Roles: []RoleLink{{ID: newID(t)}}})
		}, "does not exist"},
		{"empty link", func(tx *memdb.Txn) error {
			return TokenSet(tx, 9, &Token{AccessorID: newID(t), SecretID: newID(t), Policies: []PolicyLink{{}}})
		}, "needs an ID or a Name"},
		{"bad service identity", func(tx *memdb.Txn) error {
			return TokenSet(tx, 9, &Token{AccessorID: newID(t), SecretID: newID(t), ServiceIdentities: []*ServiceIdentity{{ServiceName: "Web!"}}})
		}, "service identity name"},
		{"node identity without dc", func(tx *memdb.Txn) error {
			return TokenSet(tx, 9, &Token{AccessorID: newID(t), SecretID: newID(t), NodeIdentities: []*NodeIdentity{{NodeName: "n1"}}})
		}, "needs a Datacenter"},
		{"anonymous deleted", func(tx *memdb.Txn) error { return TokenDelete(tx, 9, AnonymousAccessorID) }, "cannot be deleted"},
		{"role name reused", func(tx *memdb.Txn) error {
			if err := RoleSet(tx, 9, &Role{ID: newID(t), Name: "r"}); err != nil {
				return err
			}
			return RoleSet(tx, 9, &Role{ID: newID(t), Name: "R"})
		}, `role name "R" is already in use`},
		{"bootstrap without management", func(tx *memdb.Txn) error {
			return Bootstrap(tx, 9, now, &Token{AccessorID: newID(t), SecretID: newID(t)}, 0)
		}, "must hold the global-management policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := write(db, tc.fn)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
		})
	}
	for name, fn := range map[string]func(tx *memdb.Txn) error{
		"token":  func(tx *memdb.Txn) error { return TokenDelete(tx, 9, newID(t)) },
		"policy": func(tx *memdb.Txn) error { return PolicyDelete(tx, 9, newID(t)) },
		"role":   func(tx *memdb.Txn) error { return RoleDelete(tx, 9, newID(t)) },
	} {
		if err := write(db, fn); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete missing %s = %v, want ErrNotFound", name, err)
		}
	}
}

func TestDeletedPolicyLosesItsRightsOnly(t *testing.T) {
	db := newDB(t)
	kv, svc := newID(t), newID(t)
	mustWrite(t, db, func(tx *memdb.Txn) error {
		if err := PolicySet(tx, 2, &Policy{ID: kv, Name: "kv", Rules: `key_prefix "app/" { policy = "write" }`}); err != nil {
			return err
		}
		return PolicySet(tx, 3, &Policy{ID: svc, Name: "svc", Rules: `service "web" { policy = "write" }`})
	})
	roleID := newID(t)
	mustWrite(t, db, func(tx *memdb.Txn) error {
		return RoleSet(tx, 4, &Role{ID: roleID, Name: "web-role", Policies: []PolicyLink{{ID: svc}}, NodeIdentities: []*NodeIdentity{{NodeName: "n1", Datacenter: "dc1"}}})
	})
	tok := &Token{AccessorID: newID(t), SecretID: newID(t), Policies: []PolicyLink{{ID: kv}}, Roles: []RoleLink{{Name: "web-role"}}}
	mustWrite(t, db, func(tx *memdb.Txn) error { return TokenSet(tx, 5, tok) })

	compile := func() *Authorizer {
		tx := db.Txn(false)
		got, _, err := TokenBySecret(tx, nil, tok.SecretID)
		if err != nil || got == nil {
			t.Fatalf("TokenBySecret = %v, %v", got, err)
		}
		a, err := Compile(tx, got, "dc1", false)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		return a
	}
	runChecks(t, compile(), []check{
		{ResKey, "app/x", AccessWrite, true},
		{ResService, "web", AccessWrite, true},
		{ResNode, "n1", AccessWrite, true},
	})
	mustWrite(t, db, func(tx *memdb.Txn) error { return PolicyDelete(tx, 6, kv) })
	runChecks(t, compile(), []check{
		{ResKey, "app/x", AccessWrite, false},
		{ResService, "web", AccessWrite, true},
		{ResNode, "n1", AccessWrite, true},
	})
	tx := db.Txn(false)
	got, _, _ := TokenByAccessor(tx, nil, tok.AccessorID)
	if len(got.Policies) != 0 || len(got.Roles) != 1 || got.Roles[0].Name != "web-role" {
		t.Errorf("token after delete: policies %v roles %v, want no policies and the role by name", got.Policies, got.Roles)
	}
	list, _, _ := Tokens(tx, nil, "", roleID)
	if len(list) != 1 {
		t.Errorf("Tokens(role) = %d tokens, want 1", len(list))
	}
	list, _, _ = Tokens(tx, nil, svc, "")
	if len(list) != 0 {
		t.Errorf("Tokens(policy svc) = %d tokens, want 0 (linked through the role only)", len(list))
	}
	roles, _, _ := Roles(tx, nil, svc)
	if len(roles) != 1 {
		t.Errorf("Roles(policy) = %d, want 1", len(roles))
	}
	mustWrite(t, db, func(tx *memdb.Txn) error { return RoleDelete(tx, 7, roleID) })
	runChecks(t, compile(), []check{{ResService, "web", AccessWrite, false}, {ResNode, "n1", AccessWrite, false}})
}

func TestDatacenterLimits(t *testing.T) {
	db := newDB(t)
	p := newID(t)
	mustWrite(t, db, func(tx *memdb.Txn) error {
		return PolicySet(tx, 2, &Policy{ID: p, Name: "dc2-only", Rules: `key_prefix "" { policy = "write" }`, Datacenters: []string{"dc2"}})
	})
	tok := &Token{AccessorID: newID(t), SecretID: newID(t), Policies: []PolicyLink{{ID: p}},
		ServiceIdentities: []*ServiceIdentity{{ServiceName: "web", Datacenters: []string{"dc2"}}},
		NodeIdentities:    []*NodeIdentity{{NodeName: "n1", Datacenter: "dc2"}}}
	mustWrite(t, db, func(tx *memdb.Txn) error { return TokenSet(tx, 3, tok) })
	tx := db.Txn(false)
	for dc, ok := range map[string]bool{"dc1": false, "dc2": true} {
		a, err := Compile(tx, tok, dc, false)
		if err != nil {
			t.Fatal(err)
		}
		runChecks(t, a, []check{{ResKey, "k", AccessWrite, ok}, {ResService, "web", AccessWrite, ok}, {ResNode, "n1", AccessWrite, ok}})
	}
}

func TestUpdateKeepsSecretAndCreateIndex(t *testing.T) {
	db := newDB(t)
	exp := time.Unix(5000, 0)
	tok := &Token{AccessorID: newID(t), SecretID: newID(t), Description: "a", ExpirationTime: &exp, CreateTime: time.Unix(10, 0)}
	mustWrite(t, db, func(tx *memdb.Txn) error { return TokenSet(tx, 3, tok) })
	mustWrite(t, db, func(tx *memdb.Txn) error {
		return TokenSet(tx, 4, &Token{AccessorID: strings.ToUpper(tok.AccessorID), Description: "b"})
	})
	tx := db.Txn(false)
	got, idx, _ := TokenByAccessor(tx, nil, tok.AccessorID)
	if got.SecretID != tok.SecretID || got.Description != "b" || got.CreateIndex != 3 || got.ModifyIndex != 4 || idx != 4 {
		t.Errorf("updated token = %+v (index %d)", got, idx)
	}
	if got.ExpirationTime == nil || !got.ExpirationTime.Equal(exp) || !got.CreateTime.Equal(tok.CreateTime) {
		t.Errorf("update changed expiry or create time: %+v", got)
	}
	if Index(tx, nil) != 4 {
		t.Errorf("Index = %d, want 4", Index(tx, nil))
	}
	if other, _, _ := TokenBySecret(tx, nil, newID(t)); other != nil {
		t.Errorf("TokenBySecret(unknown) = %v, want nil", other)
	}
}
