package acl

import (
	"crypto/sha256"
	"fmt"
	"strings"

	memdb "github.com/hashicorp/go-memdb"
)

// Table names, prefixed because catalog and kvstore add their tables to
// the same database.
const (
	tableTokens   = "acl_tokens"
	tablePolicies = "acl_policies"
	tableRoles    = "acl_roles"
	tableIndex    = "acl_index"
)

// Rows of tableIndex that are not a table's: the index at which the
// cluster was bootstrapped (0: not yet), and the highest index of any ACL
// change.
const (
	indexBootstrap = "acl_bootstrap"
	indexAll       = "acl"
)

// indexRow is what tableIndex stores: the highest Raft index at which the
// thing named by Key changed.
type indexRow struct {
	Key   string
	Value uint64
}

// Tables returns the schemas of acl's go-memdb tables, to be merged with
// the other packages' into one memdb.DBSchema:
//
//   - "acl_tokens": *Token rows; indexes "id" (AccessorID, lower-cased),
//     "secret" (a SHA-256 of SecretID, so a lookup's time says nothing of
//     how much of a guess matched), "policies" and "roles" (the linked IDs).
//   - "acl_policies": *Policy rows; indexes "id" and "name"
//     (case-insensitive, unique).
//   - "acl_roles": *Role rows; indexes "id", "name" and "policies".
//   - "acl_index": the highest index of each table and of all of them
//     ("acl"), and the bootstrap index.
//
// Each call returns fresh values that the caller may keep.
func Tables() map[string]*memdb.TableSchema {
	tokID := func(obj any) (string, bool) { return obj.(*Token).AccessorID, true }
	polID := func(obj any) (string, bool) { return obj.(*Policy).ID, true }
	polName := func(obj any) (string, bool) { return obj.(*Policy).Name, true }
	roleID := func(obj any) (string, bool) { return obj.(*Role).ID, true }
	roleName := func(obj any) (string, bool) { return obj.(*Role).Name, true }
	idxKey := func(obj any) (string, bool) { return obj.(*indexRow).Key, true }
	tokPolicies := func(obj any) []string { return policyIDs(obj.(*Token).Policies) }
	tokRoles := func(obj any) []string {
		var ids []string
		for _, l := range obj.(*Token).Roles {
			ids = append(ids, l.ID)
		}
		return ids
	}
	rolePolicies := func(obj any) []string { return policyIDs(obj.(*Role).Policies) }
	return map[string]*memdb.TableSchema{
		tableTokens: {
			Name: tableTokens,
			Indexes: map[string]*memdb.IndexSchema{
				"id":       {Name: "id", Unique: true, Indexer: &stringIndexer{fn: tokID}},
				"secret":   {Name: "secret", Unique: true, Indexer: secretIndexer{}},
				"policies": {Name: "policies", AllowMissing: true, Indexer: &multiIndexer{fn: tokPolicies}},
				"roles":    {Name: "roles", AllowMissing: true, Indexer: &multiIndexer{fn: tokRoles}},
			},
		},
		tablePolicies: {
			Name: tablePolicies,
			Indexes: map[string]*memdb.IndexSchema{
				"id":   {Name: "id", Unique: true, Indexer: &stringIndexer{fn: polID}},
				"name": {Name: "name", Unique: true, Indexer: &stringIndexer{fn: polName}},
			},
		},
		tableRoles: {
			Name: tableRoles,
			Indexes: map[string]*memdb.IndexSchema{
				"id":       {Name: "id", Unique: true, Indexer: &stringIndexer{fn: roleID}},
				"name":     {Name: "name", Unique: true, Indexer: &stringIndexer{fn: roleName}},
				"policies": {Name: "policies", AllowMissing: true, Indexer: &multiIndexer{fn: rolePolicies}},
			},
		},
		tableIndex: {
			Name: tableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &stringIndexer{fn: idxKey, exact: true}},
			},
		},
	}
}

func policyIDs(links []PolicyLink) []string {
	ids := make([]string, 0, len(links))
	for _, l := range links {
		ids = append(ids, l.ID)
	}
	return ids
}

// stringIndexer indexes the string computed by fn, lower-cased unless
// exact (IDs and names are case-insensitive, as in Consul).
type stringIndexer struct {
	fn    func(obj any) (string, bool)
	exact bool
}

var _ memdb.SingleIndexer = (*stringIndexer)(nil)

// FromObject implements memdb.SingleIndexer.
func (s *stringIndexer) FromObject(obj any) (bool, []byte, error) {
	v, ok := s.fn(obj)
	if !ok || v == "" {
		return false, nil, nil
	}
	return true, s.key(v), nil
}

// FromArgs implements memdb.Indexer.
func (s *stringIndexer) FromArgs(args ...any) ([]byte, error) {
	v, err := oneString(args)
	if err != nil {
		return nil, err
	}
	return s.key(v), nil
}

func (s *stringIndexer) key(v string) []byte {
	if !s.exact {
		v = strings.ToLower(v)
	}
	return []byte(v)
}

// multiIndexer indexes each of the strings fn returns, lower-cased and
// NUL-terminated (so "a" does not match "ab").
type multiIndexer struct {
	fn func(obj any) []string
}

var _ memdb.MultiIndexer = (*multiIndexer)(nil)

// FromObject implements memdb.MultiIndexer.
func (m *multiIndexer) FromObject(obj any) (bool, [][]byte, error) {
	vals := m.fn(obj)
	if len(vals) == 0 {
		return false, nil, nil
	}
	out := make([][]byte, 0, len(vals))
	for _, v := range vals {
		out = append(out, []byte(strings.ToLower(v)+"\x00"))
	}
	return true, out, nil
}

// FromArgs implements memdb.Indexer.
func (m *multiIndexer) FromArgs(args ...any) ([]byte, error) {
	v, err := oneString(args)
	if err != nil {
		return nil, err
	}
	return []byte(strings.ToLower(v) + "\x00"), nil
}

// secretIndexer indexes a token by the SHA-256 of its SecretID.
type secretIndexer struct{}

var _ memdb.SingleIndexer = secretIndexer{}

// FromObject implements memdb.SingleIndexer.
func (secretIndexer) FromObject(obj any) (bool, []byte, error) {
	t := obj.(*Token)
	if t.SecretID == "" {
		return false, nil, nil
	}
	h := sha256.Sum256([]byte(t.SecretID))
	return true, h[:], nil
}

// FromArgs implements memdb.Indexer.
func (secretIndexer) FromArgs(args ...any) ([]byte, error) {
	v, err := oneString(args)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(v))
	return h[:], nil
}

func oneString(args []any) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("index takes 1 argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return "", fmt.Errorf("index argument %v: want a string, got %T", args[0], args[0])
	}
	return s, nil
}
