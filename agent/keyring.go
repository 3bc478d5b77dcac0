package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/meridian/meridian/httpapi"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

// keyringPool is a gossip pool's keyring (*lan.Pool and *wan.Pool).
type keyringPool interface {
	ListKeys() (lan.KeyringResponse, error)
	InstallKey(key string) (lan.KeyringResponse, error)
	UseKey(key string) (lan.KeyringResponse, error)
	RemoveKey(key string) (lan.KeyringResponse, error)
	LocalKeys() ([]string, error)
}

var _ httpapi.Keyring = (*Agent)(nil)

// KeyringOp runs a keyring operation on the WAN pool (servers) and the
// LAN pool, through serf's key manager, which asks every member of each,
// and, on a server, on the LAN pool of every other datacenter;
// the keyring files in data_dir/serf keep the result across restarts. The
// HTTP API's route guard has checked token; the servers of the other
// datacenters check it again.
func (a *Agent) KeyringOp(ctx context.Context, token, op, key string, localOnly bool) ([]httpapi.KeyringResponse, error) {
	if a.cfg.EncryptKey() == nil {
		return nil, fmt.Errorf("%w: %w", rpc.ErrBadRequest, lan.ErrNoEncryption)
	}
	if op != httpapi.KeyringList {
		k, err := base64.StdEncoding.DecodeString(key)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: key is not base64 (make one with meridian keygen): %w", rpc.ErrBadRequest, err)
		case len(k) != 16 && len(k) != 24 && len(k) != 32:
			return nil, fmt.Errorf("%w: key decodes to %d bytes, want 16, 24 or 32 (make one with meridian keygen)", rpc.ErrBadRequest, len(k))
		}
	}
	type pool struct {
		wan bool
		p   keyringPool
	}
	pools := []pool{{false, a.lan}}
	if a.wan != nil {
		pools = []pool{{true, a.wan}, {false, a.lan}}
	}
	var out []httpapi.KeyringResponse
	for _, p := range pools {
		resp := httpapi.KeyringResponse{WAN: p.wan, Datacenter: a.cfg.Datacenter}
		var (
			r   lan.KeyringResponse
			err error
		)
		switch op {
		case httpapi.KeyringList:
			if localOnly {
				var keys []string
				keys, err = p.p.LocalKeys()
				r = localResponse(keys)
			} else {
				r, err = p.p.ListKeys()
			}
		case httpapi.KeyringInstall:
			r, err = p.p.InstallKey(key)
		case httpapi.KeyringUse:
			r, err = p.p.UseKey(key)
		case httpapi.KeyringRemove:
			r, err = p.p.RemoveKey(key)
		default:
			return nil, fmt.Errorf("%w: unknown keyring operation %q", rpc.ErrBadRequest, op)
		}
		if err != nil {
			pool := "lan"
			if p.wan {
				pool = "wan"
			}
			if errors.Is(err, lan.ErrNoEncryption) {
				err = fmt.Errorf("%w: %w", rpc.ErrBadRequest, err)
			}
			return nil, fmt.Errorf("keyring %s on the %s pool: %w%s", op, pool, err, refusals(r))
		}
		resp.Keys, resp.PrimaryKeys, resp.NumNodes, resp.Messages = r.Keys, r.PrimaryKeys, r.NumNodes, r.Messages
		out = append(out, resp)
		a.logger.Info("keyring operation", "op", op, "wan", p.wan, "nodes", r.NumNodes)
	}
	if a.server == nil || localOnly {
		return out, nil
	}
	remote, err := a.keyringRemote(ctx, token, op, key)
	return append(out, remote...), err
}

// keyringRemote runs the operation on the LAN pool of every other
// datacenter, through one of its servers, so that a rotation reaches every
// agent of the federation.
func (a *Agent) keyringRemote(ctx context.Context, token, op, key string) ([]httpapi.KeyringResponse, error) {
	var out []httpapi.KeyringResponse
	for _, dc := range a.server.Datacenters() {
		if dc == a.cfg.Datacenter {
			continue
		}
		args := rpc.Write[rpc.KeyringRequest]{WriteOptions: rpc.WriteOptions{Datacenter: dc, Token: token}, Args: rpc.KeyringRequest{Op: op, Key: key}}
		var r rpc.KeyringAnswer
		if err := a.server.Call(ctx, rpc.MethodKeyringOperation, &args, &r); err != nil {
			return out, fmt.Errorf("keyring %s on the lan pool of %s: %w%s", op, dc, err, refusals(lan.KeyringResponse{Messages: r.Messages}))
		}
		out = append(out, httpapi.KeyringResponse{Datacenter: dc, Keys: r.Keys, PrimaryKeys: r.PrimaryKeys, NumNodes: r.NumNodes, Messages: r.Messages})
		a.logger.Info("keyring operation", "op", op, "datacenter", dc, "nodes", r.NumNodes)
	}
	return out, nil
}

// localResponse reports this member's own keys.
func localResponse(keys []string) lan.KeyringResponse {
	r := lan.KeyringResponse{Keys: map[string]int{}, PrimaryKeys: map[string]int{}, NumNodes: 1}
	for i, k := range keys {
		r.Keys[k] = 1
		if i == 0 {
			r.PrimaryKeys[k] = 1
		}
	}
	return r
}

// refusals renders the members' messages of a failed operation.
func refusals(r lan.KeyringResponse) string {
	s := ""
	for node, msg := range r.Messages {
		s += fmt.Sprintf("; %s: %s", node, msg)
	}
	return s
}
