package wan

import "github.com/meridian/meridian/lan"

// KeyringResponse is a keyring operation's answer (see lan.KeyringResponse).
type KeyringResponse = lan.KeyringResponse

// ListKeys asks every server of the WAN pool which keys it holds.
func (p *Pool) ListKeys() (KeyringResponse, error) { return p.lan.ListKeys() }

// InstallKey adds key (base64) to every server's WAN keyring.
func (p *Pool) InstallKey(key string) (KeyringResponse, error) { return p.lan.InstallKey(key) }

// UseKey makes key every server's primary WAN key.
func (p *Pool) UseKey(key string) (KeyringResponse, error) { return p.lan.UseKey(key) }

// RemoveKey removes key from every server's WAN keyring.
func (p *Pool) RemoveKey(key string) (KeyringResponse, error) { return p.lan.RemoveKey(key) }

// LocalKeys lists this server's own WAN keyring, the primary key first.
func (p *Pool) LocalKeys() ([]string, error) { return p.lan.LocalKeys() }
