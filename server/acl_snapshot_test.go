package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

// TestACLSnapshotNeedsACLWrite: the server itself holds snapshot save and
// restore to acl:write (Consul's rule), whoever calls it: the anonymous
// token and operator:write are refused, a refused restore reads nothing
// and changes nothing, and acl:write saves and restores.
func TestACLSnapshotNeedsACLWrite(t *testing.T) {
	c, cl := newACLCluster(t, 1, server.ACLConfig{Enabled: true})
	srv := c.Servers[0].Agent().Server()
	mgmt := cl.bootstrap().SecretID
	tokenFor := func(rules string) string {
		t.Helper()
		p, err := cl.setPolicy(mgmt, acl.Policy{Name: strings.NewReplacer(" ", "", `"`, "", "=", "-").Replace(rules), Rules: rules})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cl.createToken(mgmt, acl.Token{Policies: []acl.PolicyLink{{ID: p.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		return tok.SecretID
	}
	operator, aclWrite := tokenFor(`operator = "write"`), tokenFor(`acl = "write"`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tc := range []struct{ name, token string }{{"anonymous", ""}, {"operator:write", operator}, {"unknown", "0d6c0e3a-1f2b-4c5d-8e9f-a0b1c2d3e4f5"}} {
		if rc, _, err := srv.SaveSnapshot(ctx, tc.token, true); err == nil {
			rc.Close()
			t.Errorf("SaveSnapshot with %s: allowed, want denied", tc.name)
		} else if !errors.Is(err, rpc.ErrPermissionDenied) && !errors.Is(err, rpc.ErrACLNotFound) {
			t.Errorf("SaveSnapshot with %s = %v, want a denial", tc.name, err)
		}
		read := &countingReader{r: strings.NewReader("not an archive")}
		if _, err := srv.RestoreSnapshot(ctx, tc.token, read); !errors.Is(err, rpc.ErrPermissionDenied) && !errors.Is(err, rpc.ErrACLNotFound) {
			t.Errorf("RestoreSnapshot with %s = %v, want a denial", tc.name, err)
		}
		if read.n != 0 {
			t.Errorf("RestoreSnapshot with %s read %d bytes of the archive before refusing", tc.name, read.n)
		}
	}

	rc, _, err := srv.SaveSnapshot(ctx, aclWrite, false)
	if err != nil {
		t.Fatalf("SaveSnapshot with acl:write: %v", err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.RestoreSnapshot(ctx, aclWrite, bytes.NewReader(archive)); err != nil {
		t.Fatalf("RestoreSnapshot with acl:write: %v", err)
	}
	// The restored state holds the tokens: acl:write still resolves.
	if _, err := cl.resolve(aclWrite); err != nil {
		t.Errorf("resolve the acl:write token after the restore: %v", err)
	}
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
