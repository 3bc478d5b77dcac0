package acl

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// twentyRules is a 20-rule policy, the size the figures ask for.
func twentyRules() string {
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, "key_prefix \"team%d/app/\" { policy = \"write\" }\n", i)
	}
	for i := range 6 {
		fmt.Fprintf(&b, "service \"svc-%d\" { policy = \"write\" }\n", i)
	}
	b.WriteString(`service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
key "team1/app/secret" { policy = "deny" }
session_prefix "" { policy = "write" }
query_prefix "" { policy = "read" }
operator = "read"
`)
	return b.String()
}

func BenchmarkAuthorizerCheck(b *testing.B) {
	a := NewAuthorizer("bench", false, mustParse(b, twentyRules()))
	cases := []struct {
		name string
		res  Resource
		seg  string
		want Access
		ok   bool
	}{
		{"key prefix hit", ResKey, "team3/app/config/database/url", AccessWrite, true},
		{"key exact deny", ResKey, "team1/app/secret", AccessRead, false},
		{"key miss", ResKey, "other/thing", AccessRead, false},
		{"service exact", ResService, "svc-4", AccessWrite, true},
		{"service prefix", ResService, "web", AccessRead, true},
		{"operator", ResOperator, "", AccessRead, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if a.Allowed(c.res, c.seg, c.want) != c.ok {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

// BenchmarkResolveAndCheck is the hot path of a request: the cached
// authorizer for a secret at the current index, then one check.
func BenchmarkResolveAndCheck(b *testing.B) {
	a := NewAuthorizer("bench", false, mustParse(b, twentyRules()))
	r := NewResolver(1024)
	load := func(string) (*Authorizer, *time.Time, error) { return a, nil, nil }
	secret := "8f246b77-f3e1-ff88-5b48-8ec93abf3e05"
	b.ReportAllocs()
	for b.Loop() {
		auth, err := r.Resolve(secret, 7, time.Now, load)
		if err != nil || !auth.Allowed(ResKey, "team3/app/config", AccessWrite) {
			b.Fatal("denied")
		}
	}
}
