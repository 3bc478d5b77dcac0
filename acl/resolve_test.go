package acl

import (
	"errors"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

func TestResolverCachesByIndex(t *testing.T) {
	db := newDB(t)
	p := newID(t)
	mustWrite(t, db, func(tx *memdb.Txn) error {
		return PolicySet(tx, 2, &Policy{ID: p, Name: "kv", Rules: `key_prefix "app/" { policy = "read" }`})
	})
	exp := time.Unix(2000, 0)
	tok := &Token{AccessorID: newID(t), SecretID: newID(t), Policies: []PolicyLink{{ID: p}}, ExpirationTime: &exp}
	mustWrite(t, db, func(tx *memdb.Txn) error { return TokenSet(tx, 3, tok) })

	loads := 0
	base := LoadFrom(func() *memdb.Txn { return db.Txn(false) }, "dc1", false)
	load := func(secret string) (*Authorizer, *time.Time, error) { loads++; return base(secret) }
	index := func() uint64 { tx := db.Txn(false); defer tx.Abort(); return Index(tx, nil) }
	r := NewResolver(10)
	now := time.Unix(1000, 0)

	for range 3 {
		a, err := r.Resolve(tok.SecretID, index(), func() time.Time { return now }, load)
		if err != nil || !a.Allowed(ResKey, "app/x", AccessRead) || a.Allowed(ResKey, "app/x", AccessWrite) {
			t.Fatalf("Resolve = %v, %v", a, err)
		}
	}
	if loads != 1 {
		t.Errorf("%d loads for three resolves at one index, want 1", loads)
	}
	// A policy change moves the index: the next resolve recompiles.
	mustWrite(t, db, func(tx *memdb.Txn) error {
		return PolicySet(tx, 4, &Policy{ID: p, Name: "kv", Rules: `key_prefix "app/" { policy = "write" }`})
	})
	a, err := r.Resolve(tok.SecretID, index(), func() time.Time { return now }, load)
	if err != nil || !a.Allowed(ResKey, "app/x", AccessWrite) || loads != 2 {
		t.Fatalf("after policy change: Resolve = %v, %v (%d loads), want write and a reload", a, err, loads)
	}
	// The token stops at its expiry, cached or not.
	if _, err := r.Resolve(tok.SecretID, index(), func() time.Time { return exp }, load); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("Resolve at expiry = %v, want ErrTokenExpired", err)
	}
	r.Purge()
	if _, err := r.Resolve(tok.SecretID, index(), func() time.Time { return exp.Add(time.Second) }, load); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("Resolve after expiry, uncached = %v, want ErrTokenExpired", err)
	}
	// A deleted token is not found once the index moves.
	mustWrite(t, db, func(tx *memdb.Txn) error { return TokenDelete(tx, 5, tok.AccessorID) })
	if a, err := r.Resolve(tok.SecretID, index(), func() time.Time { return now }, load); !errors.Is(err, ErrTokenNotFound) || a != nil {
		t.Errorf("Resolve(deleted) = %v, %v, want ErrTokenNotFound", a, err)
	}
	if _, err := r.Resolve("not-a-token", index(), func() time.Time { return now }, load); !errors.Is(err, ErrTokenNotFound) {
		t.Errorf("Resolve(unknown) = %v, want ErrTokenNotFound", err)
	}
}

func TestResolverBounded(t *testing.T) {
	r := NewResolver(2)
	load := func(secret string) (*Authorizer, *time.Time, error) { return NewAuthorizer(secret, false), nil, nil }
	for _, s := range []string{"a", "b", "c", "d"} {
		if _, err := r.Resolve(s, 1, time.Now, load); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.entries); n != 2 {
		t.Errorf("%d cached entries, want at most 2", n)
	}
}
