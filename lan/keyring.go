package lan

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// KeyringResponse is what a keyring operation found across the pool: for
// each base64 key how many members hold it (Keys) or use it to send
// (PrimaryKeys), out of NumNodes; Messages has each member's refusal.
type KeyringResponse struct {
	Keys        map[string]int
	PrimaryKeys map[string]int
	NumNodes    int
	Messages    map[string]string
}

// ErrNoEncryption is returned by keyring operations on a pool that gossips
// in the clear: there is no keyring to change.
var ErrNoEncryption = errors.New("gossip encryption is not enabled (set encrypt)")

// loadKeyring reads the keyring file serf keeps (a JSON list of base64
// keys, the primary first). It answers nil, nil when the file does not
// exist.
func loadKeyring(path string) (*memberlist.Keyring, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyring file: %w", err)
	}
	var encoded []string
	if err := json.Unmarshal(data, &encoded); err != nil {
		return nil, fmt.Errorf("keyring file %s: not a JSON list of keys: %w", path, err)
	}
	if len(encoded) == 0 {
		return nil, fmt.Errorf("keyring file %s: no keys", path)
	}
	keys := make([][]byte, 0, len(encoded))
	for i, e := range encoded {
		k, err := decodeKey(e)
		if err != nil {
			return nil, fmt.Errorf("keyring file %s: key %d: %w", path, i+1, err)
		}
		keys = append(keys, k)
	}
	ring, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("keyring file %s: %w", path, err)
	}
	return ring, nil
}

// writeKeyring writes key as the only key of a new keyring file.
func writeKeyring(path string, key []byte) error {
	data, err := json.Marshal([]string{base64.StdEncoding.EncodeToString(key)})
	if err != nil {
		return fmt.Errorf("keyring file: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("keyring file: %w", err)
	}
	return nil
}

// decodeKey checks a base64 gossip key.
func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64 (make one with meridian keygen): %w", err)
	}
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("decodes to %d bytes, want 16, 24 or 32 (make one with meridian keygen)", n)
	}
	return k, nil
}

// keyring prepares mc's keyring from cfg: the keyring file when it exists
// (it holds the rotations made since the first start, so it wins over
// EncryptKey), else EncryptKey, which is then written to the file.
func keyring(cfg Config, mc *memberlist.Config) error {
	if cfg.KeyringFile == "" || cfg.EncryptKey == nil {
		mc.SecretKey = cfg.EncryptKey
		return nil
	}
	ring, err := loadKeyring(cfg.KeyringFile)
	if err != nil {
		return err
	}
	if ring == nil {
		if err := writeKeyring(cfg.KeyringFile, cfg.EncryptKey); err != nil {
			return err
		}
		mc.SecretKey = cfg.EncryptKey
		return nil
	}
	mc.Keyring = ring
	mc.SecretKey = nil // memberlist would make it the primary key
	return nil
}

// ListKeys asks every member which keys it holds.
func (p *Pool) ListKeys() (KeyringResponse, error) {
	return p.keyOp(func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.ListKeys() })
}

// InstallKey adds key (base64) to every member's keyring; they keep
// sending with their primary key.
func (p *Pool) InstallKey(key string) (KeyringResponse, error) {
	if _, err := decodeKey(key); err != nil {
		return KeyringResponse{}, fmt.Errorf("key: %w", err)
	}
	return p.keyOp(func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.InstallKey(key) })
}

// UseKey makes key, already installed, every member's primary key.
func (p *Pool) UseKey(key string) (KeyringResponse, error) {
	if _, err := decodeKey(key); err != nil {
		return KeyringResponse{}, fmt.Errorf("key: %w", err)
	}
	return p.keyOp(func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.UseKey(key) })
}

// RemoveKey removes key, which must not be primary, from every member.
func (p *Pool) RemoveKey(key string) (KeyringResponse, error) {
	if _, err := decodeKey(key); err != nil {
		return KeyringResponse{}, fmt.Errorf("key: %w", err)
	}
	return p.keyOp(func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.RemoveKey(key) })
}

// LocalKeys lists this member's own keyring, the primary key first.
func (p *Pool) LocalKeys() ([]string, error) {
	kr := p.keyringOf()
	if kr == nil {
		return nil, ErrNoEncryption
	}
	var out []string
	for _, k := range kr.GetKeys() {
		out = append(out, base64.StdEncoding.EncodeToString(k))
	}
	return out, nil
}

func (p *Pool) keyOp(op func(*serf.KeyManager) (*serf.KeyResponse, error)) (KeyringResponse, error) {
	if p.closed() {
		return KeyringResponse{}, ErrShutdown
	}
	if p.keyringOf() == nil {
		return KeyringResponse{}, ErrNoEncryption
	}
	r, err := op(p.serf.KeyManager())
	var out KeyringResponse
	if r != nil {
		out = KeyringResponse{Keys: r.Keys, PrimaryKeys: r.PrimaryKeys, NumNodes: r.NumNodes, Messages: r.Messages}
	}
	if err != nil {
		return out, fmt.Errorf("keyring: %w", err)
	}
	return out, nil
}

// keyringOf is the pool's keyring, nil without encryption.
func (p *Pool) keyringOf() *memberlist.Keyring { return p.ml.Keyring }
