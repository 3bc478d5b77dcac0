package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/testcluster"
)

// meridian runs the CLI in-process and returns its exit code and output.
func meridian(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCommandsAgainstAnAgent(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	addr := "-http-addr=" + c.Clients[0].HTTPAddr()

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // substrings of stdout
	}{
		{"members", []string{"members", addr}, 0, []string{"Node", "server1", "client1", "alive", "server", "client", "dc1"}},
		{"list-peers", []string{"operator", "raft", "list-peers", addr}, 0, []string{"server1", "leader", "true"}},
		{"version", []string{"version"}, 0, []string{"Meridian v"}},
		{"force-leave alive member", []string{"force-leave", addr, "nobody"}, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := meridian(tc.args...)
			if code != tc.wantCode {
				t.Fatalf("meridian %v exit %d, want %d; stderr %q", tc.args, code, tc.wantCode, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("meridian %v output lacks %q:\n%s", tc.args, w, out)
				}
			}
		})
	}

	t.Setenv("MERIDIAN_HTTP_ADDR", c.Servers[0].HTTPAddr())
	if code, out, errOut := meridian("members"); code != 0 || !strings.Contains(out, "client1") {
		t.Errorf("members with MERIDIAN_HTTP_ADDR: exit %d, out %q, err %q", code, out, errOut)
	}
}

func TestBadInvocations(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string // substring of stderr
	}{
		{"unknown command", []string{"frobnicate"}, 1, `unknown command "frobnicate"`},
		{"unknown agent flag", []string{"agent", "-bogus"}, 1, "-bogus"},
		{"agent help", []string{"agent", "-h"}, 0, "-bootstrap-expect"},
		{"members extra argument", []string{"members", "x"}, 1, "expected no arguments"},
		{"join without address", []string{"join"}, 1, "at least one address"},
		{"unreachable agent", []string{"members", "-http-addr=127.0.0.1:1"}, 1, "cannot reach the agent at http://127.0.0.1:1"},
		{"operator without subcommand", []string{"operator"}, 1, "list-peers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := meridian(tc.args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("meridian %v = exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.wantCode, tc.wantErr)
			}
		})
	}
}

func TestFederationCommands(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true, CoordinateInterval: 50 * time.Millisecond})
	srv := "-http-addr=" + c.Servers[0].HTTPAddr()
	cli := "-http-addr=" + c.Clients[0].HTTPAddr()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string // substring of stdout, or of stderr when wantCode != 0
	}{
		{"wan members", []string{"members", "-wan", srv}, 0, "server1.dc1"},
		{"wan members on a client", []string{"members", "-wan", cli}, 1, "only servers"},
		{"wan join on a client", []string{"join", "-wan", cli, "127.0.0.1:1"}, 1, "only servers"},
		{"wan force-leave of nobody", []string{"force-leave", "-wan", srv, "nobody.dc9"}, 1, "nobody.dc9"},
		{"wan rtt to itself", []string{"rtt", "-wan", srv, "server1.dc1"}, 0, "ms (using WAN coordinates)"},
		{"wan rtt to nobody", []string{"rtt", "-wan", srv, "nobody.dc9"}, 1, `no WAN coordinate for node "nobody.dc9"`},
		{"rtt without nodes", []string{"rtt", srv}, 1, "one or two node names"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := meridian(tc.args...)
			got := out
			if tc.wantCode != 0 {
				got = errOut
			}
			if code != tc.wantCode || !strings.Contains(got, tc.want) {
				t.Errorf("meridian %v = exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.wantCode, tc.want)
			}
		})
	}
	// LAN coordinates reach the catalog once the agents have sent theirs.
	testcluster.Eventually(t, 10*time.Second, func() error {
		code, out, errOut := meridian("rtt", cli, "server1", "client1")
		if code != 0 || !strings.Contains(out, "Estimated server1 <-> client1 rtt:") || !strings.Contains(out, "using LAN coordinates") {
			return fmt.Errorf("rtt server1 client1 = exit %d, %q, %q", code, out, errOut)
		}
		return nil
	})
}
