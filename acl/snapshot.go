package acl

import (
	"errors"
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// Encoder writes one value to a snapshot stream (as catalog.Encoder and
// kvstore.Encoder; the server's msgpack encoder satisfies all three).
type Encoder interface {
	Encode(v any) error
}

// Decoder reads one value from a snapshot stream, as written by the
// matching Encoder.
type Decoder interface {
	Decode(v any) error
}

// ErrBadSnapshot is returned by Restore when the stream does not hold an
// acl section this version can read.
var ErrBadSnapshot = errors.New("not an acl snapshot")

const (
	snapshotFormat  = "meridian-acl"
	snapshotVersion = 1
)

// snapshotHeader opens acl's section and says how many records of each
// kind follow.
type snapshotHeader struct {
	Format   string
	Version  int
	Policies int
	Roles    int
	Tokens   int
	Indexes  int
}

// Snapshot writes every ACL row visible in tx to enc: a header with the
// counts, then policies, roles, tokens (secrets included: a snapshot is as
// sensitive as the data dir) and the index rows, bootstrap index among them.
func Snapshot(tx *memdb.Txn, enc Encoder) error {
	policies, err := collect[*Policy](tx, tablePolicies)
	if err != nil {
		return err
	}
	roles, err := collect[*Role](tx, tableRoles)
	if err != nil {
		return err
	}
	tokens, err := collect[*Token](tx, tableTokens)
	if err != nil {
		return err
	}
	idxs, err := collect[*indexRow](tx, tableIndex)
	if err != nil {
		return err
	}
	h := snapshotHeader{Format: snapshotFormat, Version: snapshotVersion,
		Policies: len(policies), Roles: len(roles), Tokens: len(tokens), Indexes: len(idxs)}
	if err := enc.Encode(&h); err != nil {
		return fmt.Errorf("snapshot acl header: %w", err)
	}
	for _, p := range policies {
		if err := enc.Encode(p); err != nil {
			return fmt.Errorf("snapshot policy %s: %w", p.ID, err)
		}
	}
	for _, r := range roles {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("snapshot role %s: %w", r.ID, err)
		}
	}
	for _, t := range tokens {
		if err := enc.Encode(t); err != nil {
			return fmt.Errorf("snapshot token %s: %w", t.AccessorID, err)
		}
	}
	for _, r := range idxs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("snapshot acl index %q: %w", r.Key, err)
		}
	}
	return nil
}

func collect[T any](tx *memdb.Txn, table string) ([]T, error) {
	it, err := tx.Get(table, "id")
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", table, err)
	}
	var out []T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(T))
	}
	return out, nil
}

// Restore reads one acl section written by Snapshot from dec into tx, a
// write transaction on a database without ACL rows, keeping every stored
// index. It reads nothing past the section.
func Restore(tx *memdb.Txn, dec Decoder) error {
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("restore acl header: %w", err)
	}
	if h.Format != snapshotFormat || h.Version != snapshotVersion {
		return fmt.Errorf("restore acl: format %q version %d: %w", h.Format, h.Version, ErrBadSnapshot)
	}
	if err := restoreRows(dec, h.Policies, "policy", func(p *Policy) error { return tx.Insert(tablePolicies, p) }); err != nil {
		return err
	}
	if err := restoreRows(dec, h.Roles, "role", func(r *Role) error { return tx.Insert(tableRoles, r) }); err != nil {
		return err
	}
	if err := restoreRows(dec, h.Tokens, "token", func(t *Token) error { return tx.Insert(tableTokens, t) }); err != nil {
		return err
	}
	return restoreRows(dec, h.Indexes, "acl index", func(r *indexRow) error { return tx.Insert(tableIndex, r) })
}

func restoreRows[T any](dec Decoder, n int, what string, insert func(*T) error) error {
	if n < 0 {
		return fmt.Errorf("restore acl: %d %s records: %w", n, what, ErrBadSnapshot)
	}
	for i := range n {
		v := new(T)
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("restore %s %d of %d: %w", what, i+1, n, err)
		}
		if err := insert(v); err != nil {
			return fmt.Errorf("restore %s %d of %d: %w", what, i+1, n, err)
		}
	}
	return nil
}
