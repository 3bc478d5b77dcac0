package main

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestKeygenAndKeyring: keygen prints a 32-byte key, and keyring rotates
// to it on a running agent (install, use, remove the old one, list).
func TestKeygenAndKeyring(t *testing.T) {
	code, out, errOut := meridian("keygen")
	k2 := strings.TrimSpace(out)
	if raw, err := base64.StdEncoding.DecodeString(k2); code != 0 || err != nil || len(raw) != 32 {
		t.Fatalf("keygen = %d, %q, %q; want 32 bytes of base64", code, out, errOut)
	}
	_, out, _ = meridian("keygen")
	k1 := strings.TrimSpace(out)
	c := testcluster.New(t, testcluster.Options{Servers: 1, Configure: func(cfg *configs.Config) { cfg.Encrypt = k1 }})
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()
	for _, s := range []struct {
		args []string
		want string
	}{
		{[]string{"keyring", addr, "-install", k2}, "Done"},
		{[]string{"keyring", addr, "-use", k2}, "Done"},
		{[]string{"keyring", addr, "-remove", k1}, "Done"},
		{[]string{"keyring", addr, "-list"}, k2 + " [1/1] (primary on 1)"},
		{[]string{"keyring", addr, "-list", "-local-only"}, "dc1 (LAN):\n  " + k2},
	} {
		// A keyring step is a serf query, whose answers can come late on
		// a loaded machine; every step is safe to repeat.
		testcluster.Eventually(t, 20*time.Second, func() error {
			code, out, errOut := meridian(s.args...)
			if code != 0 || !strings.Contains(out, s.want) {
				return fmt.Errorf("meridian %v = %d, %q, %q; want %q", s.args, code, out, errOut, s.want)
			}
			if strings.Contains(out, k1) && s.args[2] == "-list" {
				return fmt.Errorf("meridian %v still lists the removed key: %q", s.args, out)
			}
			return nil
		})
	}
	for _, s := range []struct {
		args []string
		want string
	}{
		{[]string{"keyring", addr}, "exactly one of -list, -install, -use and -remove"},
		{[]string{"keyring", addr, "-install", "c2hvcnQ="}, "decodes to 5 bytes"},
		{[]string{"keyring", addr, "-use", k1, "-local-only"}, "-local-only goes with -list only"},
	} {
		code, _, errOut := meridian(s.args...)
		if code == 0 || !strings.Contains(errOut, s.want) {
			t.Errorf("meridian %v = %d, stderr %q; want %q", s.args, code, errOut, s.want)
		}
	}
}
