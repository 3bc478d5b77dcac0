package configs

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestLoadReplication(t *testing.T) {
	t.Parallel()
	want := []KVReplication{
		{Prefix: "config/global/", From: "dc1"},
		{Prefix: "feature/", From: "dc3", Writes: ReplicationWritesForward},
	}
	for name, file := range map[string]string{
		"a.yaml": "datacenter: dc2\ndata_dir: /d\nreplication:\n  kv:\n    - {prefix: config/global/, from: dc1}\n    - {prefix: feature/, from: dc3, writes: forward}\n",
		"a.json": `{"datacenter": "dc2", "data_dir": "/d", "replication": {"kv": [{"prefix": "config/global/", "from": "dc1"}, {"prefix": "feature/", "from": "dc3", "writes": "forward"}]}}`,
		"a.hcl":  "datacenter = \"dc2\"\ndata_dir = \"/d\"\nreplication {\n  kv = [\n    { prefix = \"config/global/\", from = \"dc1\" },\n    { prefix = \"feature/\", from = \"dc3\", writes = \"forward\" },\n  ]\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, []string{"-config-dir", writeFiles(t, map[string]string{name: file})}, nil)
			if got := c.Replication.KV; !reflect.DeepEqual(got, want) {
				t.Errorf("Replication.KV = %+v, want %+v", got, want)
			}
		})
	}
}

func TestLoadReplicationRefusesBadRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"from this datacenter", "kv: [{prefix: a/, from: dc2}]",
			`replication.kv[0].from: rule "a/" replicates from dc2, which is this datacenter`},
		{"no source", "kv: [{prefix: a/}]", `replication.kv[0].from: rule "a/" names no source datacenter`},
		{"bad source", "kv: [{prefix: a/, from: DC1}]", `rule "a/": "DC1" is not a datacenter name`},
		{"overlap", "kv: [{prefix: config/, from: dc1}, {prefix: config/global/, from: dc3}]",
			`replication.kv[0].prefix: rule "config/" overlaps rule "config/global/" (replication.kv[1])`},
		{"same prefix twice", "kv: [{prefix: a/, from: dc1}, {prefix: a/, from: dc1}]", `rule "a/" overlaps rule "a/"`},
		{"empty prefix beside another", "kv: [{prefix: '', from: dc1}, {prefix: b/, from: dc1}]",
			`replication.kv[0].prefix: rule "" replicates every key from dc1, so it must be the only rule`},
		{"unknown writes", "kv: [{prefix: a/, from: dc1, writes: allow}]", `replication.kv[0].writes: rule "a/": must be refuse or forward, got "allow"`},
		{"unknown key", "kv: [{prefix: a/, form: dc1}]", `unknown key`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, map[string]string{"a.yaml": "datacenter: dc2\ndata_dir: /d\nreplication:\n  " + tc.yaml + "\n"})
			_, err := Load([]string{"-config-dir", dir}, nil, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load(%s) = %v, want an error containing %q", tc.yaml, err, tc.want)
			}
		})
	}
	// The empty prefix alone is fine.
	dir := writeFiles(t, map[string]string{"a.yaml": "datacenter: dc2\ndata_dir: /d\nreplication: {kv: [{prefix: '', from: dc1}]}\n"})
	if _, err := Load([]string{"-config-dir", dir}, nil, io.Discard); err != nil {
		t.Errorf("Load(empty prefix alone) = %v, want no error", err)
	}
}
