package server_test

import (
	"testing"
	"time"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/server"
)

// BenchmarkResolveAndCheck is a request's ACL cost on a server agent: the
// token resolved from the cache, then one check.
func BenchmarkResolveAndCheck(b *testing.B) {
	c := testcluster.New(b, testcluster.Options{Servers: 1, TuneServer: func(c *server.Config) { c.ACL = server.ACLConfig{Enabled: true} }})
	srv := c.Servers[0].Agent().Server()
	testcluster.Eventually(b, 10*time.Second, func() error { _, err := srv.ResolveToken(""); return err })
	b.ReportAllocs()
	for b.Loop() {
		auth, err := srv.ResolveToken("")
		if err != nil || auth.Allowed(acl.ResService, "web", acl.AccessRead) {
			b.Fatal("anonymous may read web")
		}
	}
}
