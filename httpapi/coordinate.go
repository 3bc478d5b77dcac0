package httpapi

import (
	"net"
	"net/http"
	"strings"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/rpc"
)

// The ?near= values that name a node without naming it: the agent's own,
// and the requester's (the node registered with the request's source
// address, X-Forwarded-For first).
const (
	nearAgent = "_agent"
	nearIP    = "_ip"
)

// resolveNear turns ?near=_agent and ?near=_ip into what the server sorts
// from.
func (s *Server) resolveNear(r *http.Request, near string) string {
	switch near {
	case nearAgent:
		return s.agent.NodeName()
	case nearIP:
		ip := r.RemoteAddr
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
			first, _, _ := strings.Cut(fwd, ",")
			ip = strings.TrimSpace(first)
		}
		return catalog.NearIP + ip
	}
	return near
}

// nearAnswer marks an answer sorted by ?near= as uncached: its order
// follows the coordinates, which move without moving the answer's index.
func nearAnswer(r *http.Request, v any) any {
	if params(r).Get("near") != "" {
		return uncached{v}
	}
	return v
}

// coordinateDatacenters is /v1/coordinate/datacenters: the WAN coordinates
// of every datacenter's servers, as the answering server's WAN pool knows
// them (no leader needed, like Consul).
func (s *Server) coordinateDatacenters(_ http.ResponseWriter, r *http.Request) (any, error) {
	var dcs []catalog.DatacenterCoordinates
	if err := s.agent.RPC(r.Context(), rpc.MethodCoordinateDCs, &struct{}{}, &dcs); err != nil {
		return nil, err
	}
	for i := range dcs {
		dcs[i].Coordinates = emptyIfNil(dcs[i].Coordinates)
	}
	return emptyIfNil(dcs), nil
}

// coordinateNodes is /v1/coordinate/nodes: the LAN coordinates of the
// datacenter's nodes as the catalog stores them (?dc= for another
// datacenter's). Their index is the coordinates' own, so the answer is
// cached and blocking queries work like the catalog's.
func (s *Server) coordinateNodes(w http.ResponseWriter, r *http.Request) (any, error) {
	cs, err := query[struct{}, []catalog.CoordinateEntry](s, w, r, rpc.MethodCoordinateLAN, struct{}{})
	if err != nil {
		return nil, err
	}
	return emptyIfNil(cs), nil
}

// coordinateNode is /v1/coordinate/node/:node: that node's entry of
// /v1/coordinate/nodes, 404 when it has none.
func (s *Server) coordinateNode(w http.ResponseWriter, r *http.Request) (any, error) {
	cs, err := query[struct{}, []catalog.CoordinateEntry](s, w, r, rpc.MethodCoordinateLAN, struct{}{})
	if err != nil {
		return nil, err
	}
	name := r.PathValue("node")
	for _, c := range cs {
		if strings.EqualFold(c.Node, name) {
			return []catalog.CoordinateEntry{c}, nil
		}
	}
	return nil, &notFound{msg: "no coordinate for node " + name}
}

// coordinateUpdate is PUT /v1/coordinate/update: a node's LAN coordinate
// in Consul's body ({Node, Segment, Coord}), which the leader stores with
// its next batch. A coordinate of the wrong dimension answers 400.
func (s *Server) coordinateUpdate(_ http.ResponseWriter, r *http.Request) (any, error) {
	var e catalog.CoordinateEntry
	if err := decodeBody(r, &e); err != nil {
		return nil, err
	}
	if _, err := write(s, r, rpc.MethodCoordinateUpdate, e); err != nil {
		return nil, err
	}
	return nil, nil
}
