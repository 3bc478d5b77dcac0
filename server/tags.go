package server

import (
	"net"
	"strconv"

	"github.com/meridian/meridian/lan"
)

// LAN gossip tags every agent publishes, named as Consul names them so that
// tools reading /v1/agent/members see what they expect.
const (
	TagRole       = "role"   // "consul" for servers, "node" for clients
	TagDatacenter = "dc"     // the agent's datacenter
	TagPort       = "port"   // servers: the server (RPC and Raft) port
	TagExpect     = "expect" // servers: their bootstrap_expect, when set
	TagID         = "id"     // the node ID
	TagBuild      = "build"  // the version the agent runs
	RoleServer    = "consul"
	RoleClient    = "node"
)

// Meta is what a LAN member's tags say about a server.
type Meta struct {
	Name       string
	ID         string
	Datacenter string
	// Addr is the server's RPC (and Raft) address, host:port.
	Addr   string
	Expect int
	Status lan.Status
}

// ParseMember reports whether m is a server and, if so, where to reach it.
func ParseMember(m lan.Member) (Meta, bool) {
	if m.Tags[TagRole] != RoleServer {
		return Meta{}, false
	}
	port, err := strconv.Atoi(m.Tags[TagPort])
	if err != nil || port <= 0 || port > 65535 {
		return Meta{}, false
	}
	expect, _ := strconv.Atoi(m.Tags[TagExpect])
	return Meta{
		Name:       m.Name,
		ID:         m.Tags[TagID],
		Datacenter: m.Tags[TagDatacenter],
		Addr:       net.JoinHostPort(m.Addr.String(), strconv.Itoa(port)),
		Expect:     expect,
		Status:     m.Status,
	}, true
}
