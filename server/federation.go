package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/federation"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

// WANPool is the WAN gossip pool as a server reads it; *wan.Pool is one.
type WANPool interface {
	Members() []lan.Member
	LocalMember() lan.Member
	Coordinate() (*lan.Coordinate, error)
	MemberCoordinate(name string) (*lan.Coordinate, bool)
	RTT(name string) (time.Duration, bool)
}

// resortInterval is how often the routing order follows the coordinates,
// which keep moving as serf measures round trips.
const resortInterval = 5 * time.Second

// startFederation starts WAN routing: the forwarder, the QUIC listener on
// the server port's UDP side, and the loop that keeps the routing order.
func (s *Server) startFederation() error {
	fc := s.cfg.Federation
	fc.Datacenter = s.cfg.Datacenter
	if fc.RTT == nil {
		fc.RTT = s.cfg.WAN.RTT
	}
	fc.Logger = s.logger.With("component", "federation")
	fc.Node = s.cfg.NodeName
	fed, err := federation.New(fc)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.fed = fed
	if s.cfg.StaleView {
		s.views = federation.NewViews(fed)
	}
	if fc.TLS != nil {
		qc := fc.QUIC
		qc.TLS = fc.TLS
		qc.Logger = fc.Logger
		ln, err := rpc.ListenQUIC(s.cfg.Listener.Addr().String(), qc)
		if err != nil {
			fed.Close()
			return fmt.Errorf("server: wan links: %w", err)
		}
		s.quic = ln
		s.goFunc(func() { s.rpcServer.ServeQUIC(ln) })
	}
	s.NotifyWAN()
	s.goFunc(func() { fed.Run(s.ctx) })
	s.goFunc(func() {
		t := time.NewTicker(resortInterval)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				s.fed.Resort()
			}
		}
	})
	return nil
}

// registerFederationEndpoints exposes the route exchange, relaying and the
// operator's view of routes.
func (s *Server) registerFederationEndpoints() {
	register(s, federation.MethodRoutes, s.federationRoutesExchange)
	register(s, federation.MethodRelay, s.federationRelay)
	register(s, rpc.MethodFederationRoutes, s.federationRoutes)
}

// federationRoutesExchange answers a neighbour server's route exchange
// call with this server's advertisement, once it changes.
func (s *Server) federationRoutesExchange(ctx context.Context, args *federation.RoutesRequest, reply *federation.Advertisement) error {
	if s.fed == nil {
		return fmt.Errorf("%w: this server is in no WAN pool", rpc.ErrNoPathToDC)
	}
	wait := min(max(args.Wait, 0), federation.RefreshInterval)
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)/2)
	}
	*reply = *s.fed.Table().Advertise(ctx.Done(), args.Datacenter, args.Index, wait)
	return nil
}

// federationRelay answers or hands on a request relayed from another
// datacenter. At its destination it runs as a call from the network,
// checked against the token it carries.
func (s *Server) federationRelay(ctx context.Context, args *federation.RelayRequest, reply *federation.RelayReply) error {
	if s.fed == nil {
		return fmt.Errorf("%w: this server is in no WAN pool", rpc.ErrNoPathToDC)
	}
	return s.fed.Relay(ctx, args, reply, s.rpcServer.Dispatch)
}

// federationRoutes is this server's view of links and routes (or, with
// ?dc=, that of a server of that datacenter).
func (s *Server) federationRoutes(ctx context.Context, args *rpc.Query[struct{}], reply *rpc.Answer[rpc.FederationRoutes]) error {
	if s.remote(args.Datacenter) {
		return s.forwardDC(ctx, args.Datacenter, rpc.MethodFederationRoutes, args, reply)
	}
	v := rpc.FederationRoutes{Datacenter: s.cfg.Datacenter, Server: s.cfg.NodeName, Links: []rpc.FederationLink{}, Routes: []rpc.FederationRoute{}}
	if s.fed != nil {
		t := s.fed.Table()
		for _, l := range t.Links() {
			v.Links = append(v.Links, rpc.FederationLink{Datacenter: l.Datacenter, Server: l.Server, Addr: l.Addr, Up: l.Up, Routes: l.Routes, Error: l.Error})
		}
		for _, r := range t.Routes() {
			v.Routes = append(v.Routes, rpc.FederationRoute{Datacenter: r.Dest, NextHop: r.NextHop, Path: r.Path, RTT: r.RTT, Hops: r.Hops()})
		}
	}
	reply.Value = v
	reply.Index = 1
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}

// NotifyWAN tells the server that WAN membership changed, so routing
// follows. It does not block on the network.
func (s *Server) NotifyWAN() {
	if s.fed == nil {
		return
	}
	var servers []federation.Server
	for _, m := range s.cfg.WAN.Members() {
		meta, ok := ParseMember(m)
		if !ok || meta.Datacenter == "" {
			continue
		}
		servers = append(servers, federation.Server{
			Name:       m.Name,
			Datacenter: meta.Datacenter,
			Addr:       meta.Addr,
			Alive:      m.Status == lan.StatusAlive,
			Left:       m.Status == lan.StatusLeft || m.Status == lan.StatusLeaving,
		})
	}
	s.fed.Update(servers)
}

// remote reports whether dc names another datacenter than this server's.
func (s *Server) remote(dc string) bool {
	return dc != "" && dc != s.cfg.Datacenter
}

// forwardDC sends a request to a server of another datacenter.
func (s *Server) forwardDC(ctx context.Context, dc, method string, args, reply any) error {
	if s.fed == nil {
		return fmt.Errorf("%w %q", rpc.ErrNoPathToDC, dc)
	}
	return s.fed.Forward(ctx, dc, method, args, reply)
}

// Datacenters lists the known datacenters, this one first, then by
// distance; it needs no leader.
func (s *Server) Datacenters() []string {
	if s.fed == nil {
		return []string{s.cfg.Datacenter}
	}
	return s.fed.Datacenters()
}

// DatacenterStatus reports whether dc is known and, if so, whether one of
// its servers is reachable now. It is cheap: no network.
func (s *Server) DatacenterStatus(dc string) (known, reachable bool) {
	if !s.remote(dc) {
		return true, true
	}
	if s.fed == nil {
		return false, false
	}
	return s.fed.Known(dc), s.fed.Reachable(dc)
}

func (s *Server) catalogDatacenters(_ context.Context, _ *struct{}, reply *[]string) error {
	*reply = s.Datacenters()
	return nil
}

// coordinateDatacenters lists the WAN coordinates of every datacenter's
// servers, as this server's WAN pool knows them.
func (s *Server) coordinateDatacenters(_ context.Context, _ *struct{}, reply *[]catalog.DatacenterCoordinates) error {
	byDC := map[string][]catalog.CoordinateEntry{s.cfg.Datacenter: nil}
	if w := s.cfg.WAN; w != nil {
		self := w.LocalMember().Name
		for _, m := range w.Members() {
			meta, ok := ParseMember(m)
			if !ok || m.Status != lan.StatusAlive {
				continue
			}
			var c *lan.Coordinate
			if m.Name == self {
				c, _ = w.Coordinate()
			} else {
				c, _ = w.MemberCoordinate(m.Name)
			}
			byDC[meta.Datacenter] = append(byDC[meta.Datacenter], catalog.CoordinateEntry{Node: m.Name, Coord: coordOf(c)})
		}
	}
	out := make([]catalog.DatacenterCoordinates, 0, len(byDC))
	for _, dc := range s.Datacenters() {
		cs := byDC[dc]
		slices.SortFunc(cs, func(a, b catalog.CoordinateEntry) int { return strings.Compare(a.Node, b.Node) })
		out = append(out, catalog.DatacenterCoordinates{Datacenter: dc, AreaID: "wan", Coordinates: cs})
	}
	*reply = out
	return nil
}

// coordinateNodes lists the LAN coordinates of this datacenter's nodes, as
// the agents sent them and the catalog stores them (?dc= reads another
// datacenter's). It reads like the catalog's endpoints: from the leader
// unless stale, and blocking on the coordinates' index.
func (s *Server) coordinateNodes(ctx context.Context, args *rpc.Query[struct{}], reply *rpc.Answer[[]catalog.CoordinateEntry]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodCoordinateLAN, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, cs, err := catalog.Coordinates(tx, ws)
		reply.Value = cs
		return idx, err
	})
}

func coordOf(c *lan.Coordinate) *catalog.Coord {
	if c == nil {
		return nil
	}
	return &catalog.Coord{Vec: slices.Clone(c.Vec), Error: c.Error, Adjustment: c.Adjustment, Height: c.Height}
}
