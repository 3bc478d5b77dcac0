package acl

import (
	"bytes"
	"encoding/gob"
	"errors"
	"reflect"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

func TestSnapshotRoundTrip(t *testing.T) {
	db := newDB(t)
	now := time.Unix(1000, 0).UTC()
	boot := &Token{AccessorID: newID(t), SecretID: newID(t), Policies: []PolicyLink{{ID: ManagementPolicyID}}, CreateTime: now}
	mustWrite(t, db, func(tx *memdb.Txn) error { return Bootstrap(tx, 3, now, boot, 0) })
	p := newID(t)
	exp := now.Add(time.Hour)
	mustWrite(t, db, func(tx *memdb.Txn) error {
		if err := PolicySet(tx, 4, &Policy{ID: p, Name: "p", Rules: `key "a" { policy = "read" }`, Datacenters: []string{"dc1"}}); err != nil {
			return err
		}
		if err := RoleSet(tx, 5, &Role{ID: newID(t), Name: "r", Policies: []PolicyLink{{ID: p}}}); err != nil {
			return err
		}
		return TokenSet(tx, 6, &Token{AccessorID: newID(t), SecretID: newID(t), Roles: []RoleLink{{Name: "r"}}, Local: true, ExpirationTime: &exp})
	})

	var buf bytes.Buffer
	src := db.Txn(false)
	if err := Snapshot(src, gob.NewEncoder(&buf)); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	restored := newDB(t)
	dec := gob.NewDecoder(&buf)
	mustWrite(t, restored, func(tx *memdb.Txn) error { return Restore(tx, dec) })

	dst := restored.Txn(false)
	for _, pair := range [][2]any{
		{must3(Tokens(src, nil, "", "")), must3(Tokens(dst, nil, "", ""))},
		{must3(Policies(src, nil)), must3(Policies(dst, nil))},
		{must3(Roles(src, nil, "")), must3(Roles(dst, nil, ""))},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("restored %#v\nwant %#v", pair[1], pair[0])
		}
	}
	if Index(dst, nil) != Index(src, nil) || BootstrapIndex(dst) != 3 {
		t.Errorf("restored Index %d bootstrap %d, want %d and 3", Index(dst, nil), BootstrapIndex(dst), Index(src, nil))
	}
	if tok, _, _ := TokenBySecret(dst, nil, boot.SecretID); tok == nil {
		t.Error("restored state does not find the bootstrap token by its secret")
	}
	// Bootstrap stays done after a restore.
	err := write(restored, func(tx *memdb.Txn) error {
		return Bootstrap(tx, 9, now, &Token{AccessorID: newID(t), SecretID: newID(t), Policies: []PolicyLink{{ID: ManagementPolicyID}}}, 0)
	})
	var done *BootstrapDoneError
	if !errors.As(err, &done) {
		t.Errorf("Bootstrap after restore = %v, want BootstrapDoneError", err)
	}
}

func TestRestoreRefusesOtherSections(t *testing.T) {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	if err := enc.Encode(&snapshotHeader{Format: "meridian-kvstore", Version: 1}); err != nil {
		t.Fatal(err)
	}
	err := write(newDB(t), func(tx *memdb.Txn) error { return Restore(tx, gob.NewDecoder(&buf)) })
	if !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("Restore(kvstore header) = %v, want ErrBadSnapshot", err)
	}
}

func must3[T any](v T, _ uint64, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
