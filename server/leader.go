package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

// The check every node gets from the leader's reconciliation of LAN
// membership, named as Consul names it.
const (
	SerfCheckName     = "Serf Health Status"
	serfCheckAlive    = "Agent alive and reachable"
	serfCheckCritical = "Agent not live or unreachable"
)

// maybeBootstrap bootstraps the Raft cluster when this server is told to and
// no Raft state exists yet.
func (s *Server) maybeBootstrap() error {
	if !s.cfg.Bootstrap && s.cfg.BootstrapExpect == 0 {
		return nil
	}
	has, err := s.hasExistingState()
	if err != nil {
		return err
	}
	if has {
		return nil
	}
	if s.cfg.Bootstrap || s.cfg.BootstrapExpect == 1 {
		return s.bootstrap([]raft.Server{{ID: raft.ServerID(s.cfg.NodeID), Address: raft.ServerAddress(s.cfg.Advertise)}})
	}
	s.goFunc(s.bootstrapExpectLoop)
	return nil
}

func (s *Server) hasExistingState() (bool, error) {
	if s.cfg.DataDir == "" {
		return false, nil
	}
	cfg := s.raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		return false, fmt.Errorf("server: read raft configuration: %w", err)
	}
	return len(cfg.Configuration().Servers) > 0, nil
}

func (s *Server) bootstrap(servers []raft.Server) error {
	err := s.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("server: bootstrap raft: %w", err)
	}
	s.logger.Info("bootstrapped raft cluster", "servers", len(servers))
	return nil
}

// bootstrapExpectLoop waits until BootstrapExpect servers of this
// datacenter are alive in the LAN pool, checks that none of them is already
// part of a cluster, and bootstraps them all with one identical
// configuration (each server does the same; raft accepts identical
// bootstraps).
func (s *Server) bootstrapExpectLoop() {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		case <-s.reconcileCh:
		}
		if s.raft.Leader() != "" {
			return // someone already leads a cluster we are in
		}
		var servers []raft.Server
		var addrs []string
		for _, m := range s.lan.Members() {
			meta, ok := ParseMember(m)
			if !ok || meta.Datacenter != s.cfg.Datacenter || m.Status != lan.StatusAlive {
				continue
			}
			if meta.Expect != 0 && meta.Expect != s.cfg.BootstrapExpect {
				s.logger.Error("servers disagree on bootstrap_expect; not bootstrapping",
					"server", meta.Name, "theirs", meta.Expect, "ours", s.cfg.BootstrapExpect)
				continue
			}
			servers = append(servers, raft.Server{ID: raft.ServerID(meta.ID), Address: raft.ServerAddress(meta.Addr)})
			addrs = append(addrs, meta.Addr)
		}
		if len(servers) < s.cfg.BootstrapExpect {
			continue
		}
		if s.peersAlreadyClustered(addrs) {
			s.logger.Info("existing raft peers found; waiting to be added instead of bootstrapping")
			return
		}
		if err := s.bootstrap(servers); err != nil {
			s.logger.Error("bootstrap failed", "error", err)
		}
		return
	}
}

// peersAlreadyClustered asks each other server whether it already has Raft
// peers, so a server whose data dir was wiped does not bootstrap a second
// cluster beside the running one.
func (s *Server) peersAlreadyClustered(addrs []string) bool {
	for _, addr := range addrs {
		if addr == s.cfg.Advertise {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		var peers []string
		err := s.pool.Call(ctx, addr, rpc.MethodStatusPeers, &rpc.Query[struct{}]{}, &peers)
		cancel()
		if err == nil && len(peers) > 0 {
			return true
		}
	}
	return false
}

// monitorLeadership runs the leader loop while this server leads.
func (s *Server) monitorLeadership() {
	var stop context.CancelFunc
	done := make(chan struct{})
	for {
		select {
		case <-s.ctx.Done():
			if stop != nil {
				stop()
				<-done
			}
			return
		case isLeader := <-s.leaderCh:
			if isLeader && stop == nil {
				var ctx context.Context
				ctx, stop = context.WithCancel(s.ctx)
				done = make(chan struct{})
				go func() {
					defer close(done)
					s.leaderLoop(ctx)
				}()
				s.logger.Info("cluster leadership acquired")
			} else if !isLeader && stop != nil {
				stop()
				<-done
				stop = nil
				s.logger.Info("cluster leadership lost")
			}
		}
	}
}

// leaderLoop does the leader's duties: after a barrier (so the FSM has
// applied everything committed before) it answers reads, and it reconciles
// membership now, on every LAN event, and every ReconcileInterval.
func (s *Server) leaderLoop(ctx context.Context) {
	term := s.raft.CurrentTerm()
	if err := s.await(ctx, s.raft.Barrier(s.cfg.ApplyTimeout)); err != nil {
		s.logger.Error("leader barrier failed", "error", err)
	} else if s.raft.CurrentTerm() == term {
		s.setReady(term)
	}
	s.absentSince = map[raft.ServerID]time.Time{}
	defer s.setReady(0)
	defer s.startKVLeader(ctx)()
	defer s.startCoordinateLeader(ctx)()
	s.establishACL(ctx)
	defer s.startACLReplication(ctx)()
	defer s.startKVReplication(ctx)()
	autopilotDone := make(chan struct{})
	go func() {
		defer close(autopilotDone)
		s.autopilotLoop(ctx)
	}()
	defer func() { <-autopilotDone }()
	interval := time.NewTicker(s.cfg.ReconcileInterval)
	defer interval.Stop()
	for {
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("reconcile membership", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-interval.C:
		case <-s.reconcileCh:
		}
	}
}

// reconcile brings the catalog and the Raft configuration in line with LAN
// membership.
func (s *Server) reconcile(ctx context.Context) error {
	members := s.lan.Members()
	known := make(map[string]bool, len(members))
	var errs []error
	for _, m := range members {
		if m.Tags[TagDatacenter] != s.cfg.Datacenter {
			continue
		}
		known[m.Name] = true
		if err := s.reconcileMember(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	s.reconcileRaft(members)
	// Nodes whose member was reaped are no longer in the pool at all.
	tx, _ := s.state.read()
	_, checks, err := catalog.ChecksInState(tx, nil, "any", nil)
	tx.Abort()
	if err != nil {
		return err
	}
	for _, c := range checks {
		if c.CheckID == catalog.SerfCheckID && !known[c.Node] {
			if err := s.deregisterNode(ctx, c.Node); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Server) reconcileMember(ctx context.Context, m lan.Member) error {
	switch m.Status {
	case lan.StatusAlive:
		return s.ensureNode(ctx, m, catalog.HealthPassing, serfCheckAlive)
	case lan.StatusFailed:
		return s.ensureNode(ctx, m, catalog.HealthCritical, serfCheckCritical)
	case lan.StatusLeft:
		return s.deregisterNode(ctx, m.Name)
	}
	return nil
}

// ensureNode registers the member's node and serfHealth check, and a
// server's consul service, unless the catalog already says exactly that.
func (s *Server) ensureNode(ctx context.Context, m lan.Member, status, output string) error {
	addr := m.Addr.String()
	consulSvc := consulService(m)
	tx, _ := s.state.read()
	_, node, err := catalog.GetNode(tx, nil, m.Name)
	var (
		current *catalog.HealthCheck
		svc     *catalog.Service
	)
	if err == nil && node != nil {
		var checks []*catalog.HealthCheck
		_, checks, err = catalog.NodeChecks(tx, nil, m.Name)
		for _, c := range checks {
			if c.CheckID == catalog.SerfCheckID {
				current = c
			}
		}
		var ns *catalog.NodeServices
		if _, ns, err = catalog.GetNodeServices(tx, nil, m.Name); err == nil && ns != nil {
			svc = ns.Services[catalog.ConsulServiceID]
		}
	}
	tx.Abort()
	if err != nil {
		return err
	}
	svcSame := consulSvc == nil || (svc != nil && svc.Service == consulSvc.Service && svc.Port == consulSvc.Port)
	if node != nil && node.Address == addr && node.ID == m.Tags[TagID] && current != nil && current.Status == status && svcSame {
		return nil
	}
	req := &catalog.RegisterRequest{
		ID:         m.Tags[TagID],
		Node:       m.Name,
		Address:    addr,
		Datacenter: s.cfg.Datacenter,
		Check: &catalog.HealthCheck{
			Node:    m.Name,
			CheckID: catalog.SerfCheckID,
			Name:    SerfCheckName,
			Status:  status,
			Output:  output,
			Type:    "serf",
		},
	}
	if node != nil {
		// Keep what agents registered about themselves (meta, tagged
		// addresses); only correct what gossip is the truth for.
		req.NodeMeta = node.Meta
		req.TaggedAddresses = node.TaggedAddresses
	}
	if !svcSame {
		req.Service = consulSvc
	}
	_, _, err = s.apply(ctx, msgRegister, req)
	return err
}

// consulService is the consul service of a server member (nil for a
// client): on the server port, with no tags, its health the node's
// serfHealth, as Consul registers it.
func consulService(m lan.Member) *catalog.Service {
	if m.Tags[TagRole] != "consul" {
		return nil
	}
	port, _ := strconv.Atoi(m.Tags[TagPort])
	return &catalog.Service{ID: catalog.ConsulServiceID, Service: "consul", Port: port, Tags: []string{}, Meta: map[string]string{}, Weights: catalog.Weights{Passing: 1, Warning: 1}}
}

func (s *Server) deregisterNode(ctx context.Context, name string) error {
	tx, _ := s.state.read()
	_, node, err := catalog.GetNode(tx, nil, name)
	tx.Abort()
	if err != nil || node == nil {
		return err
	}
	_, _, err = s.apply(ctx, msgDeregister, &catalog.DeregisterRequest{Node: name})
	return err
}

// readTxn is a shortcut for the state store's read transaction.
func (s *Server) readTxn() (*memdb.Txn, <-chan struct{}) { return s.state.read() }
