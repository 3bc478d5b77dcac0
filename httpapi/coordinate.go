package httpapi

import (
	"net/http"
	"strings"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/rpc"
)

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
// datacenter's agents (?dc= for another datacenter's).
func (s *Server) coordinateNodes(w http.ResponseWriter, r *http.Request) (any, error) {
	cs, err := query[struct{}, []catalog.CoordinateEntry](s, w, r, rpc.MethodCoordinateLAN, struct{}{})
	if err != nil {
		return nil, err
	}
	// Coordinates move with every probe, not with the Raft index.
	return uncached{emptyIfNil(cs)}, nil
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
			return uncached{[]catalog.CoordinateEntry{c}}, nil
		}
	}
	return nil, &notFound{msg: "no coordinate for node " + name}
}
