package configs

import (
	"strconv"
	"strings"
)

// The values of KVReplication.Writes.
const (
	// ReplicationWritesRefuse refuses a write under a replicated prefix
	// (403, naming the source datacenter). It is the default.
	ReplicationWritesRefuse = "refuse"
	// ReplicationWritesForward forwards such a write to the source
	// datacenter and answers from there.
	ReplicationWritesForward = "forward"
)

// Replication is what this datacenter's servers copy from other
// datacenters (servers only; every server of the datacenter should have
// the same rules, since any of them may lead).
type Replication struct {
	// KV lists the key prefixes copied, one source each.
	KV []KVReplication `config:"kv"`
}

// KVReplication copies the keys under Prefix from datacenter From: the
// leader follows From with blocking reads over the WAN links and applies
// the changes (deletes included, flags kept) through Raft. The keys are
// read-only here. The source is read with acl.tokens.replication, which
// needs key:read on the prefix there when ACLs are on.
type KVReplication struct {
	// Prefix is the key prefix copied; "" copies every key and must then
	// be the only rule.
	Prefix string `config:"prefix"`
	// From is the source datacenter; it must not be this one.
	From string `config:"from"`
	// Writes is what a write under Prefix made here gets: "refuse"
	// (default) or "forward" (sent to From).
	Writes string `config:"writes"`
}

// replication checks the replication rules: a source that is another
// datacenter, prefixes that do not overlap (a key would have two sources),
// the empty prefix only alone, and a known writes value.
func (v *validation) replication() {
	rules := v.c.Replication.KV
	for i, r := range rules {
		key := "replication.kv[" + strconv.Itoa(i) + "]"
		switch {
		case r.From == "":
			v.failf(key+".from", "rule %q names no source datacenter: set from", r.Prefix)
		case r.From == v.c.Datacenter:
			v.failf(key+".from", "rule %q replicates from %s, which is this datacenter: name another", r.Prefix, r.From)
		case !isDatacenterName(r.From):
			v.failf(key+".from", "rule %q: %q is not a datacenter name (lowercase letters, digits, '-' and '_')", r.Prefix, r.From)
		}
		switch r.Writes {
		case "", ReplicationWritesRefuse, ReplicationWritesForward:
		default:
			v.failf(key+".writes", "rule %q: must be refuse or forward, got %q", r.Prefix, r.Writes)
		}
		if r.Prefix == "" && len(rules) > 1 {
			v.failf(key+".prefix", "rule \"\" replicates every key from %s, so it must be the only rule", r.From)
			continue
		}
		for j, o := range rules[i+1:] {
			if o.Prefix != "" && (strings.HasPrefix(r.Prefix, o.Prefix) || strings.HasPrefix(o.Prefix, r.Prefix)) {
				v.failf(key+".prefix", "rule %q overlaps rule %q (replication.kv[%d]): a key would have two sources", r.Prefix, o.Prefix, i+1+j)
			}
		}
	}
}
