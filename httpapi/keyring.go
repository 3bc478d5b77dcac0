package httpapi

import (
	"context"
	"errors"
	"net/http"
)

// Keyring operations of /v1/operator/keyring.
const (
	KeyringList    = "list"
	KeyringInstall = "install"
	KeyringUse     = "use"
	KeyringRemove  = "remove"
)

// KeyringResponse is one gossip pool's answer to a keyring operation, as
// Consul's /v1/operator/keyring reports it.
type KeyringResponse struct {
	WAN         bool
	Datacenter  string
	Segment     string
	Messages    map[string]string
	Keys        map[string]int
	PrimaryKeys map[string]int
	NumNodes    int
}

// Keyring is the gossip keyring an agent offers; an agent without it
// answers /v1/operator/keyring with 501.
type Keyring interface {
	// KeyringOp runs op (KeyringList, ...) with key (base64; empty for a
	// list) on the agent's LAN pool and, on a server, the WAN pool and the
	// other datacenters' LAN pools, whose servers check token. localOnly
	// lists this agent's own keyring instead of asking the pool. The route
	// guard has checked token here (keyring:read to list, keyring:write
	// otherwise).
	KeyringOp(ctx context.Context, token, op, key string, localOnly bool) ([]KeyringResponse, error)
}

// keyringRoutes mounts /v1/operator/keyring as Consul has it: GET lists,
// POST installs, PUT uses, DELETE removes.
func (s *Server) keyringRoutes() {
	s.handle("GET /v1/operator/keyring", s.keyring(KeyringList))
	s.handle("POST /v1/operator/keyring", s.keyring(KeyringInstall))
	s.handle("PUT /v1/operator/keyring", s.keyring(KeyringUse))
	s.handle("DELETE /v1/operator/keyring", s.keyring(KeyringRemove))
}

// errNoKeyring answers 501.
var errNoKeyring = errors.New("this agent has no gossip keyring")

func (s *Server) keyring(op string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		kr, ok := s.agent.(Keyring)
		if !ok {
			http.Error(w, errNoKeyring.Error(), http.StatusNotImplemented)
			return nil, errAnswered
		}
		var body struct{ Key string }
		if op != KeyringList {
			if err := decodeBody(r, &body); err != nil {
				return nil, err
			}
			if body.Key == "" {
				return nil, badf("request body: Key is required (a base64 gossip key, as made by meridian keygen)")
			}
		}
		_, localOnly := r.URL.Query()["local-only"]
		if localOnly && op != KeyringList {
			return nil, badf("local-only applies to listing keys only")
		}
		resp, err := kr.KeyringOp(r.Context(), requestToken(r), op, body.Key, localOnly)
		if err != nil {
			return nil, err
		}
		if op != KeyringList {
			return nil, nil
		}
		return resp, nil
	}
}
