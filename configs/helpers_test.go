package configs

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes each name -> content into a new temporary directory and
// returns the directory. A name ending in "/" makes a directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// expandDir replaces $DIR in each argument with dir.
func expandDir(args []string, dir string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "$DIR", dir)
	}
	return out
}

// mustLoad loads args and env, failing the test on an error.
func mustLoad(t *testing.T, args, env []string) *Config {
	t.Helper()
	c, err := Load(args, env, io.Discard)
	if err != nil {
		t.Fatalf("Load(%q, %q) error = %v, want nil", args, env, err)
	}
	return c
}

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatalf("os.Hostname() error = %v", err)
	}
	return h
}
