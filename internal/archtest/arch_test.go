package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/meridian/meridian/"

// allowed lists, for each package of the module, the module's packages it
// may import (DESIGN.md "Packages and the direction of imports"). A package
// missing here fails the test until it is placed in the table.
var allowed = map[string][]string{
	"cmd/meridian":         {"agent", "configs", "httpapi", "server", "lan", "wan", "federation", "rpc", "catalog", "kvstore", "acl"},
	"cmd/meridian-bench":   {},
	"agent":                {"agent/checks", "configs", "dns", "httpapi", "server", "lan", "wan", "federation", "rpc", "catalog", "kvstore", "acl"},
	"dns":                  {"catalog"},
	"agent/checks":         {},
	"configs":              {},
	"httpapi":              {"catalog", "kvstore", "acl", "rpc", "ui", "internal/ratelog"},
	"server":               {"catalog", "kvstore", "acl", "lan", "wan", "federation", "rpc"},
	"federation":           {"wan", "rpc", "catalog"},
	"lan":                  {"internal/ratelog"},
	"wan":                  {"lan"}, // builds on lan.Pool: see wan/doc.go
	"rpc":                  {"internal/ratelog"},
	"catalog":              {},
	"kvstore":              {},
	"acl":                  {},
	"ui":                   {},
	"internal/testcluster": {"agent", "configs", "dns", "server", "lan", "wan", "federation", "rpc", "catalog", "kvstore", "acl", "httpapi", "internal/wait"},
	"internal/archtest":    {},
	"internal/gossiptest":  {"lan", "internal/wait"},
	"internal/leaktest":    {},
	"internal/ratelog":     {},
	"internal/wait":        {},
	"test/browser":         {}, // its tests import internal/testcluster; the package itself nothing
}

// thirdParty lists, for the packages DESIGN.md restricts, the only
// non-standard modules they may import.
var thirdParty = map[string][]string{
	"catalog":    {"github.com/hashicorp/go-memdb", "github.com/google/btree"},
	"kvstore":    {"github.com/hashicorp/go-memdb", "github.com/google/btree"},
	"acl":        {"github.com/hashicorp/go-memdb", "github.com/hashicorp/go-immutable-radix", "github.com/hashicorp/hcl"},
	"dns":        {"github.com/miekg/dns", "github.com/hashicorp/go-memdb"},
	"lan":        {"github.com/hashicorp/serf", "github.com/hashicorp/memberlist"},
	"wan":        {"github.com/hashicorp/serf", "github.com/hashicorp/memberlist"},
	"rpc":        {"github.com/hashicorp/yamux", "github.com/quic-go/quic-go", "github.com/hashicorp/go-msgpack/v2"},
	"configs":    {"github.com/spf13/viper", "github.com/hashicorp/hcl"},
	"federation": {},
	"ui":         {},
}

func TestImportsFollowDesign(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		may, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not in DESIGN.md's import table (add it to allowed)", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, module) {
				dep := strings.TrimPrefix(imp, module)
				if !contains(may, dep) {
					t.Errorf("%s imports %s, which DESIGN.md does not allow", pkg, dep)
				}
				continue
			}
			if allowedThird, restricted := thirdParty[pkg]; restricted && isThirdParty(imp) && !hasPrefix(allowedThird, imp) {
				t.Errorf("%s imports %s; DESIGN.md allows it only %v", pkg, imp, allowedThird)
			}
			if imp == "github.com/spf13/viper" && pkg != "configs" {
				t.Errorf("%s imports viper; only configs may", pkg)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasPrefix(prefixes []string, s string) bool {
	for _, p := range prefixes {
		if s == p || strings.HasPrefix(s, p+"/") {
			return true
		}
	}
	return false
}

// isThirdParty reports whether an import path is outside the standard
// library (its first element has a dot).
func isThirdParty(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return strings.Contains(first, ".")
}
