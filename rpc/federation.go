package rpc

import "time"

// MethodFederationRoutes is one server's view of the federation's routes
// (Query[struct{}] in, Answer[FederationRoutes] out): the server that
// answers is the one asked, or one of ?dc=; never the leader's.
const MethodFederationRoutes = "Operator.FederationRoutes"

// FederationRoutes is what one server knows of the other datacenters: the
// route exchange with each neighbour server, and the best route to every
// reachable datacenter, nearest first.
type FederationRoutes struct {
	// Datacenter and Server name the server that answered.
	Datacenter, Server string
	Links              []FederationLink
	Routes             []FederationRoute
}

// FederationLink is the route exchange with one server of a neighbour
// datacenter.
type FederationLink struct {
	Datacenter, Server, Addr string
	// Up is true while the exchange works.
	Up bool
	// Routes is how many datacenters that server advertised.
	Routes int
	// Error is why the exchange last failed, when it is down.
	Error string `json:",omitempty"`
}

// FederationRoute is the best route to one datacenter.
type FederationRoute struct {
	Datacenter string
	// NextHop is the neighbour datacenter requests go to; the datacenter
	// itself for a direct link.
	NextHop string
	// Path lists the datacenters crossed, NextHop first.
	Path []string
	// RTT is the estimated round trip along Path.
	RTT time.Duration
	// Hops is len(Path).
	Hops int
}
