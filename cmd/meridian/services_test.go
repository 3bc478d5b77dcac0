package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/testcluster"
)

func TestServicesAndCatalogCommands(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	addr := "-http-addr=" + c.Clients[0].HTTPAddr()
	file := filepath.Join(t.TempDir(), "db.yaml")
	def := "services:\n  - name: db\n    port: 5432\n    tags: [primary]\n    check:\n      ttl: 30s\n  - name: cache\n    port: 6379\n"
	if err := os.WriteFile(file, []byte(def), 0o600); err != nil {
		t.Fatal(err)
	}

	// Catalog reads follow the agent's pushes, which are prompt but not
	// synchronous with the register command: runSteps retries.
	runSteps(t, []cliStep{
		{"register from flags", []string{"services", "register", addr, "-name", "web", "-port", "8080", "-tag", "a", "-tag", "b"}, 0, []string{"Registered service: web"}},
		{"register from file", []string{"services", "register", addr, file}, 0, []string{"Registered service: db", "Registered service: cache"}},
		{"catalog services", []string{"catalog", "services", addr}, 0, []string{"web", "db", "cache"}},
		{"catalog services with tags", []string{"catalog", "services", addr, "-tags"}, 0, []string{"a,b", "primary"}},
		{"catalog nodes", []string{"catalog", "nodes", addr}, 0, []string{"server1", "client1"}},
		{"catalog nodes of a service", []string{"catalog", "nodes", addr, "-service", "web"}, 0, []string{"client1"}},
		{"deregister", []string{"services", "deregister", addr, "web"}, 0, []string{"Deregistered service: web"}},
	})
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, out, _ := meridian("catalog", "nodes", addr, "-service", "web")
		if strings.Contains(out, "client1") {
			return &cliError{[]string{"catalog nodes -service web after deregister"}, 0, out, ""}
		}
		return nil
	})
	if code, out, errOut := meridian("reload", addr); code != 1 || !strings.Contains(errOut, "reload") {
		t.Errorf("reload of an agent not started from files = exit %d, %q, %q; want exit 1 naming reload", code, out, errOut)
	}
}

// cliStep is one command of a CLI test against an agent: what it must exit
// with and print.
type cliStep struct {
	name     string
	args     []string
	wantCode int
	want     []string // substrings of stdout
}

// runSteps runs each step as a subtest, retrying it for up to 10s (what it
// reads may follow the agent's state a little later) until it exits with
// wantCode and prints every want.
func runSteps(t *testing.T, steps []cliStep) {
	t.Helper()
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			testcluster.Eventually(t, 10*time.Second, func() error {
				code, out, errOut := meridian(st.args...)
				if code != st.wantCode {
					return &cliError{st.args, code, out, errOut}
				}
				for _, w := range st.want {
					if !strings.Contains(out, w) {
						return &cliError{st.args, code, out, errOut}
					}
				}
				return nil
			})
		})
	}
}

// cliError is a command's outcome that a step did not want, for failure
// messages.
type cliError struct {
	args        []string
	code        int
	out, errOut string
}

func (e *cliError) Error() string {
	return fmt.Sprintf("meridian %s: exit %d, stdout %q, stderr %q", strings.Join(e.args, " "), e.code, e.out, e.errOut)
}

func TestServicesBadInvocations(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no subcommand", []string{"services"}, "Usage"},
		{"unknown subcommand", []string{"services", "frob"}, `unknown subcommand "frob"`},
		{"register without anything", []string{"services", "register"}, "FILE or -name"},
		{"register missing file", []string{"services", "register", "/nonexistent/x.yaml"}, "x.yaml"},
		{"deregister without id", []string{"services", "deregister"}, "one service ID"},
		{"catalog unknown", []string{"catalog", "frob"}, `unknown subcommand "frob"`},
		{"reload extra argument", []string{"reload", "x"}, "no arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := meridian(tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("meridian %v = exit %d, stderr %q; want exit 1 and %q", tc.args, code, errOut, tc.wantErr)
			}
		})
	}
}
