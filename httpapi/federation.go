package httpapi

import (
	"net/http"

	"github.com/meridian/meridian/rpc"
)

// federationRoutes mounts the view of the federation's links and routes.
func (s *Server) federationRoutes() {
	s.handle("GET /v1/operator/federation/routes", s.federationRoutesGet)
}

// federationRouteJSON is one route as the endpoint writes it.
type federationRouteJSON struct {
	Datacenter string
	NextHop    string
	Path       []string
	RTT        readableDuration
	Hops       int
}

// federationRoutesGet is GET /v1/operator/federation/routes: one server's
// route exchange with each neighbour server (Links) and its best route to
// every reachable datacenter, nearest first (Routes). ?dc= asks a server
// of that datacenter.
func (s *Server) federationRoutesGet(w http.ResponseWriter, r *http.Request) (any, error) {
	v, err := query[struct{}, rpc.FederationRoutes](s, w, r, rpc.MethodFederationRoutes, struct{}{})
	if err != nil {
		return nil, err
	}
	out := struct {
		Datacenter, Server string
		Links              []rpc.FederationLink
		Routes             []federationRouteJSON
	}{Datacenter: v.Datacenter, Server: v.Server, Links: v.Links, Routes: []federationRouteJSON{}}
	if out.Links == nil {
		out.Links = []rpc.FederationLink{}
	}
	for _, rt := range v.Routes {
		out.Routes = append(out.Routes, federationRouteJSON{Datacenter: rt.Datacenter, NextHop: rt.NextHop, Path: rt.Path, RTT: readableDuration(rt.RTT), Hops: rt.Hops})
	}
	return uncached{out}, nil
}
