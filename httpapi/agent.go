package httpapi

import (
	"context"
	"github.com/meridian/meridian/catalog"
	"net/http"
	"time"
)

// leaveTimeout bounds a graceful leave asked for over the API.
const leaveTimeout = 15 * time.Second

// Self is /v1/agent/self in Consul's shape.
type Self struct {
	Config      SelfConfig
	DebugConfig SelfDebugConfig
	// Coord is the agent's LAN network coordinate (nil until gossip has
	// one).
	Coord  *catalog.Coord
	Member Member
	Stats  map[string]map[string]string
	Meta   map[string]string
}

// SelfDebugConfig is the part of Consul's DebugConfig that tools read:
// where the agent listens and what it advertises, addresses as Consul
// spells them (tcp://IP:port for the gossip and HTTP ones).
type SelfDebugConfig struct {
	Datacenter           string
	PrimaryDatacenter    string
	NodeName             string
	NodeID               string
	ServerMode           bool
	BindAddr             string
	AdvertiseAddrLAN     string
	AdvertiseAddrWAN     string
	SerfAdvertiseAddrLAN string
	SerfAdvertiseAddrWAN string
	SerfBindAddrLAN      string
	SerfBindAddrWAN      string
	ClientAddrs          []string
	HTTPAddrs            []string
	DNSAddrs             []string
	HTTPPort             int
	HTTPSPort            int
	DNSPort              int
	ServerPort           int
	SerfPortLAN          int
	SerfPortWAN          int
	GRPCPort             int
	Version              string
}

// SelfConfig is the Config part of /v1/agent/self: the fields tools read
// (Prometheus reads Datacenter, Vault and Fabio NodeName).
type SelfConfig struct {
	Datacenter        string
	PrimaryDatacenter string
	NodeName          string
	NodeID            string
	Server            bool
	Revision          string
	Version           string
}

// Member is one gossip pool member as /v1/agent/members lists it. Status is
// Consul's number: 0 none, 1 alive, 2 leaving, 3 left, 4 failed.
type Member struct {
	Name        string
	Addr        string
	Port        uint16
	Tags        map[string]string
	Status      int
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
}

func (s *Server) agentSelf(_ http.ResponseWriter, _ *http.Request) (any, error) {
	return s.agent.Self(), nil
}

func (s *Server) agentMembers(_ http.ResponseWriter, r *http.Request) (any, error) {
	wan, err := parseBool(r.URL.Query(), "wan")
	if err != nil {
		return nil, err
	}
	members, err := s.agent.Members(wan)
	if err != nil {
		return nil, err
	}
	if members == nil {
		members = []Member{}
	}
	return withFilter(r, members)
}

func (s *Server) agentJoin(_ http.ResponseWriter, r *http.Request) (any, error) {
	wan, err := parseBool(r.URL.Query(), "wan")
	if err != nil {
		return nil, err
	}
	addr := r.PathValue("addr")
	if addr == "" {
		return nil, badf("join: missing address")
	}
	if err := s.agent.Join(r.Context(), addr, wan); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *Server) agentLeave(_ http.ResponseWriter, r *http.Request) (any, error) {
	// Leaving shuts this very HTTP server down, so the leave runs on past
	// this request, bounded by its own timeout; the answer waits until
	// the pools have been told (as Consul's: the servers see the node
	// left when the call returns), then the shutdown waits for it.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
		defer cancel()
		if err := s.agent.Leave(ctx); err != nil {
			s.log.Warn("leave failed", "error", err)
		}
	}()
	t := time.NewTimer(leaveTimeout)
	defer t.Stop()
	select {
	case <-s.agent.Left():
	case <-t.C:
	case <-r.Context().Done():
	}
	return nil, nil
}

func (s *Server) agentForceLeave(_ http.ResponseWriter, r *http.Request) (any, error) {
	prune, err := parseBool(r.URL.Query(), "prune")
	if err != nil {
		return nil, err
	}
	wan, err := parseBool(r.URL.Query(), "wan")
	if err != nil {
		return nil, err
	}
	if err := s.agent.ForceLeave(r.PathValue("node"), prune, wan); err != nil {
		return nil, err
	}
	return nil, nil
}
