package lan_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/lan"
)

func key(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return k
}

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// TestKeyRotation rotates the gossip key of a running pool (install, use,
// remove, as in the README's runbook): every member follows, a member
// restarted from its keyring file keeps the new key, and a member that
// missed the rotation, still on the old key, is refused afterwards.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := key(1), key(2)
	pools := startCluster(t, func(c *lan.Config) {
		steady(c)
		c.EncryptKey = k1
		c.KeyringFile = filepath.Join(dir, c.NodeName+".keyring")
	}, "a", "b", "c")

	// A keyring operation is a serf query answered within a few gossip
	// intervals; on a loaded machine some answers come late, and the
	// operations are safe to repeat.
	retry := func(what string, op func() (lan.KeyringResponse, error)) lan.KeyringResponse {
		t.Helper()
		var r lan.KeyringResponse
		wait.Eventually(t, 20*time.Second, func() error {
			var err error
			if r, err = op(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		})
		return r
	}
	list := retry("ListKeys", pools[0].ListKeys)
	if list.Keys[b64(k1)] != 3 || list.PrimaryKeys[b64(k1)] != 3 {
		t.Fatalf("ListKeys() = %+v; want k1 on and primary on 3 members", list)
	}
	retry("InstallKey(k2)", func() (lan.KeyringResponse, error) { return pools[0].InstallKey(b64(k2)) })
	retry("UseKey(k2)", func() (lan.KeyringResponse, error) { return pools[1].UseKey(b64(k2)) })
	retry("RemoveKey(k1)", func() (lan.KeyringResponse, error) { return pools[2].RemoveKey(b64(k1)) })
	list = retry("ListKeys", pools[0].ListKeys)
	if len(list.Keys) != 1 || list.PrimaryKeys[b64(k2)] != 3 {
		t.Fatalf("ListKeys() after the rotation = %+v; want only k2, primary on 3 members", list)
	}
	if local, err := pools[1].LocalKeys(); err != nil || len(local) != 1 || local[0] != b64(k2) {
		t.Fatalf("LocalKeys() = %v, %v; want [k2]", local, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "b.keyring"))
	if err != nil || !strings.Contains(string(data), b64(k2)) || strings.Contains(string(data), b64(k1)) {
		t.Fatalf("b's keyring file = %q, %v; want k2 only", data, err)
	}

	addr := func(p *testPool) string {
		ip, port := p.Addr()
		return fmt.Sprintf("%s:%d", ip, port)
	}
	// A restart from the keyring file, with the old key still in the
	// configuration, gossips with the new one.
	cfg := fastConfig("b2")
	cfg.EncryptKey = k1
	cfg.KeyringFile = filepath.Join(dir, "b2.keyring")
	if err := os.WriteFile(cfg.KeyringFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	restarted := startPool(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := restarted.Join(ctx, []string{addr(pools[0])}); err != nil {
		t.Fatalf("join of a pool restarted from its keyring file: %v", err)
	}

	// A member that missed the rotation is refused.
	stale := fastConfig("stale")
	stale.EncryptKey = k1
	sp := startPool(t, stale)
	wait.Eventually(t, 10*time.Second, func() error {
		n, err := sp.Join(ctx, []string{addr(pools[0])})
		if n != 0 || !errors.Is(err, lan.ErrEncryptionMismatch) {
			return fmt.Errorf("Join with the old key = %d, %v; want refused with ErrEncryptionMismatch", n, err)
		}
		return nil
	})
}

// TestKeyringBadInput: a key of the wrong length or not base64 is refused
// with the reason, and a pool without encryption has no keyring.
func TestKeyringBadInput(t *testing.T) {
	p := startPool(t, fastConfig("plain"))
	if _, err := p.ListKeys(); !errors.Is(err, lan.ErrNoEncryption) {
		t.Errorf("ListKeys() on a plain pool = %v, want ErrNoEncryption", err)
	}
	enc := fastConfig("enc")
	enc.EncryptKey = key(3)
	e := startPool(t, enc)
	for _, tc := range []struct{ key, want string }{
		{base64.StdEncoding.EncodeToString([]byte("short")), "decodes to 5 bytes, want 16, 24 or 32"},
		{"not base64!", "not base64"},
	} {
		if _, err := e.InstallKey(tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("InstallKey(%q) = %v, want %q", tc.key, err, tc.want)
		}
	}
	bad := fastConfig("bad")
	bad.EncryptKey = key(3)
	bad.KeyringFile = filepath.Join(t.TempDir(), "keyring")
	os.WriteFile(bad.KeyringFile, []byte(`["AAAA"]`), 0o600)
	if _, err := lan.New(bad); err == nil || !strings.Contains(err.Error(), bad.KeyringFile) || !strings.Contains(err.Error(), "decodes to 3 bytes") {
		t.Errorf("New with a bad keyring file = %v, want an error naming it and the key length", err)
	}
}
