package main

import (
	"bytes"
	"strings"
	"testing"

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
