package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meridian/meridian/internal/testcluster"
)

func TestKVCommands(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	addr := "-http-addr=" + c.Clients[0].HTTPAddr()
	file := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(file, []byte("from a file"), 0o600); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		args     []string
		wantCode int
		want     string // substring of stdout
	}{
		{[]string{"kv", "put", addr, "-flags", "7", "cfg/a", "hello"}, 0, "Success! Data written to: cfg/a"},
		{[]string{"kv", "put", addr, "cfg/sub/b", "@" + file}, 0, "Success!"},
		{[]string{"kv", "get", addr, "cfg/a"}, 0, "hello"},
		{[]string{"kv", "get", addr, "-detailed", "cfg/a"}, 0, "Flags            7"},
		{[]string{"kv", "get", addr, "-recurse", "cfg/"}, 0, "cfg/sub/b:from a file"},
		{[]string{"kv", "get", addr, "-keys", "cfg/"}, 0, "cfg/sub/"},
		{[]string{"kv", "put", addr, "-cas", "-modify-index", "0", "cfg/a", "x"}, 1, ""},
		{[]string{"kv", "export", addr, "cfg/"}, 0, `"value": "aGVsbG8="`},
		{[]string{"kv", "delete", addr, "-recurse", "cfg/"}, 0, "Deleted"},
		{[]string{"kv", "get", addr, "cfg/a"}, 1, ""},
		{[]string{"kv", "frob"}, 1, ""},
	}
	for _, s := range steps {
		code, out, errOut := meridian(s.args...)
		if code != s.wantCode || !strings.Contains(out, s.want) {
			t.Fatalf("meridian %v = exit %d, stdout %q, stderr %q; want exit %d and %q", s.args, code, out, errOut, s.wantCode, s.want)
		}
	}

	// Import more than 100 entries: every key lands and progress is shown.
	var b strings.Builder
	b.WriteString("[")
	for i := range 150 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"key":"imp/%03d","flags":%d,"value":"dg=="}`, i, i)
	}
	b.WriteString("]")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := meridian("kv", "import", addr, "@"+file)
	if code != 0 || !strings.Contains(out, "Imported 150") || !strings.Contains(errOut, "imported 150/150") {
		t.Fatalf("kv import = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = meridian("kv", "get", addr, "-detailed", "imp/149")
	if code != 0 || !strings.Contains(out, "Flags            149") {
		t.Errorf("kv get imp/149 after import = %d %q", code, out)
	}
}
