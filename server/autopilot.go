package server

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

// Autopilot, as Consul's: its configuration is replicated state (a table
// of one row, written through Raft); the leader checks every server's
// health each AutopilotInterval, promotes a non-voter that has been
// healthy for ServerStabilizationTime, and, with CleanupDeadServers,
// removes a server the LAN pool says failed once it has been unhealthy
// for LastContactThreshold + ServerStabilizationTime, never when that
// would take half of the voters or more, or go below MinQuorum.

const (
	msgAutopilot msgType = 9 // rpc.AutopilotSetRequest

	tableAutopilot = "autopilot-config"
	// autopilotSnapshotFormat names the snapshot section's header.
	autopilotSnapshotFormat = "meridian-autopilot"
)

// autopilotRow is the one row of tableAutopilot.
type autopilotRow struct {
	ID     string
	Config rpc.AutopilotConfig
}

func autopilotTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{tableAutopilot: {
		Name: tableAutopilot,
		Indexes: map[string]*memdb.IndexSchema{"id": {
			Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"},
		}},
	}}
}

// storedAutopilot is the configuration in tx, or nil.
func storedAutopilot(tx *memdb.Txn) (*rpc.AutopilotConfig, error) {
	raw, err := tx.First(tableAutopilot, "id", "config")
	if err != nil || raw == nil {
		return nil, err
	}
	c := raw.(*autopilotRow).Config
	return &c, nil
}

// applyAutopilot stores a configuration; a check-and-set that lost
// answers false.
func (f *fsm) applyAutopilot(idx uint64, body []byte) any {
	var req rpc.AutopilotSetRequest
	if err := rpc.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("decode autopilot configuration at index %d: %w", idx, err)
	}
	var ok bool
	err := f.state.write(func(tx *memdb.Txn) error {
		cur, err := storedAutopilot(tx)
		if err != nil {
			return err
		}
		var curIndex uint64
		c := req.Config
		c.CreateIndex = idx
		if cur != nil {
			curIndex = cur.ModifyIndex
			c.CreateIndex = cur.CreateIndex
		}
		if req.CAS && req.Config.ModifyIndex != curIndex {
			return nil
		}
		c.ModifyIndex = idx
		ok = true
		return tx.Insert(tableAutopilot, &autopilotRow{ID: "config", Config: c})
	})
	if err != nil {
		return err
	}
	return ok
}

type autopilotSnapshotHeader struct {
	Format  string
	Version int
	Config  int
}

func snapshotAutopilot(tx *memdb.Txn, enc catalog.Encoder) error {
	c, err := storedAutopilot(tx)
	if err != nil {
		return fmt.Errorf("snapshot autopilot: %w", err)
	}
	h := autopilotSnapshotHeader{Format: autopilotSnapshotFormat, Version: 1}
	if c != nil {
		h.Config = 1
	}
	if err := enc.Encode(&h); err != nil {
		return fmt.Errorf("snapshot autopilot header: %w", err)
	}
	if c != nil {
		return enc.Encode(c)
	}
	return nil
}

func restoreAutopilot(tx *memdb.Txn, dec catalog.Decoder) error {
	var h autopilotSnapshotHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("restore autopilot header: %w", err)
	}
	if h.Format != autopilotSnapshotFormat || h.Version != 1 || h.Config > 1 {
		return fmt.Errorf("restore autopilot: format %q version %d: %w", h.Format, h.Version, catalog.ErrBadSnapshot)
	}
	if h.Config == 0 {
		return nil
	}
	var c rpc.AutopilotConfig
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("restore autopilot configuration: %w", err)
	}
	return tx.Insert(tableAutopilot, &autopilotRow{ID: "config", Config: c})
}

// AutopilotConfig is the configuration in force: the stored one, or the
// agent's (Config.Autopilot) until one is stored.
func (s *Server) AutopilotConfig() rpc.AutopilotConfig {
	tx, _ := s.state.read()
	defer tx.Abort()
	if c, err := storedAutopilot(tx); err == nil && c != nil {
		return *c
	}
	return s.cfg.Autopilot
}

func (s *Server) registerAutopilotEndpoints() {
	register(s, rpc.MethodAutopilotGetConfig, s.autopilotGetConfig)
	register(s, rpc.MethodAutopilotSetConfig, s.autopilotSetConfig)
	register(s, rpc.MethodAutopilotHealth, s.autopilotHealthRPC)
	register(s, rpc.MethodRaftStats, s.raftStatsRPC)
}

func (s *Server) autopilotGetConfig(ctx context.Context, args *rpc.Query[struct{}], reply *rpc.Answer[rpc.AutopilotConfig]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodAutopilotGetConfig, args, reply); done {
		return err
	}
	reply.Value = s.AutopilotConfig()
	reply.Index = max(reply.Value.ModifyIndex, 1)
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}

func (s *Server) autopilotSetConfig(ctx context.Context, args *rpc.Write[rpc.AutopilotSetRequest], reply *rpc.WriteResult) error {
	if done, err := forwardWrite(s, ctx, rpc.MethodAutopilotSetConfig, args, reply); done {
		return err
	}
	c := args.Args.Config
	if c.LastContactThreshold < 0 || c.ServerStabilizationTime < 0 {
		return fmt.Errorf("%w: autopilot durations must not be negative", rpc.ErrBadRequest)
	}
	idx, resp, err := s.apply(ctx, msgAutopilot, &args.Args)
	if err != nil {
		return err
	}
	reply.Index, reply.OK = idx, resp == true
	return nil
}

// autopilotHealthRPC answers the leader's latest health check of the
// servers (made now when the leader loop has none yet).
func (s *Server) autopilotHealthRPC(ctx context.Context, args *rpc.Query[struct{}], reply *rpc.Answer[rpc.AutopilotHealth]) error {
	args.AllowStale = false // only the leader knows
	if done, err := forwardRead(s, ctx, rpc.MethodAutopilotHealth, args, reply); done {
		return err
	}
	h, ok := s.autopilot.last()
	if !ok {
		var err error
		if h, err = s.checkHealth(ctx); err != nil {
			return err
		}
	}
	reply.Value = h
	reply.Index = 1
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}

func (s *Server) raftStatsRPC(_ context.Context, _ *struct{}, reply *rpc.RaftStats) error {
	*reply = s.raftStats()
	return nil
}

// raftStats reads this server's Raft progress from raft's stats.
func (s *Server) raftStats() rpc.RaftStats {
	st := s.raft.Stats()
	out := rpc.RaftStats{}
	out.LastTerm, _ = strconv.ParseUint(st["last_log_term"], 10, 64)
	out.LastIndex, _ = strconv.ParseUint(st["last_log_index"], 10, 64)
	switch lc := st["last_contact"]; lc {
	case "0":
	case "never", "":
		out.LastContact = -1
	default:
		d, err := time.ParseDuration(lc)
		if err != nil {
			d = -1
		}
		out.LastContact = d
	}
	if s.IsLeader() {
		out.LastContact = 0
	}
	return out
}

// autopilotState is the leader's memory between health checks.
type autopilotState struct {
	mu         sync.Mutex
	health     rpc.AutopilotHealth
	have       bool
	stable     map[string]time.Time // since when each server is healthy
	unhealthy  map[string]time.Time // since when each server is not
	healthy    bool                 // for the autopilot_healthy gauge
	healthySet bool
}

func (a *autopilotState) last() (rpc.AutopilotHealth, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.health, a.have
}

// reset forgets everything, when leadership starts or ends.
func (a *autopilotState) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.health, a.have = rpc.AutopilotHealth{}, false
	a.stable, a.unhealthy = map[string]time.Time{}, map[string]time.Time{}
	a.healthySet = false
}

// checkHealth asks every server of the Raft configuration for its
// progress and judges it against the configuration.
func (s *Server) checkHealth(ctx context.Context) (rpc.AutopilotHealth, error) {
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return rpc.AutopilotHealth{}, fmt.Errorf("read raft configuration: %w", err)
	}
	cfg := s.AutopilotConfig()
	members := map[string]lan.Member{}
	for _, m := range s.lan.Members() {
		if meta, ok := ParseMember(m); ok && meta.Datacenter == s.cfg.Datacenter {
			members[meta.ID] = m
		}
	}
	self := s.raftStats()
	servers := future.Configuration().Servers
	out := rpc.AutopilotHealth{Servers: make([]rpc.ServerHealth, len(servers))}
	var wg sync.WaitGroup
	for i, srv := range servers {
		h := &out.Servers[i]
		h.ID, h.Address, h.Voter = string(srv.ID), string(srv.Address), srv.Suffrage == raft.Voter
		h.SerfStatus = string(lan.StatusNone)
		if m, ok := members[h.ID]; ok {
			h.Name, h.SerfStatus, h.Version = m.Name, string(m.Status), m.Tags[TagBuild]
		}
		if h.ID == s.cfg.NodeID {
			h.Leader = true
			h.LastTerm, h.LastIndex = self.LastTerm, self.LastIndex
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.LastContact = -1
			if h.SerfStatus != string(lan.StatusAlive) {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, max(time.Second, cfg.LastContactThreshold))
			defer cancel()
			var st rpc.RaftStats
			if err := s.pool.Call(cctx, h.Address, rpc.MethodRaftStats, &struct{}{}, &st); err != nil {
				return
			}
			h.LastContact, h.LastTerm, h.LastIndex = st.LastContact, st.LastTerm, st.LastIndex
		}()
	}
	wg.Wait()

	now := time.Now()
	s.autopilot.mu.Lock()
	defer s.autopilot.mu.Unlock()
	if s.autopilot.stable == nil {
		s.autopilot.stable, s.autopilot.unhealthy = map[string]time.Time{}, map[string]time.Time{}
	}
	voters, healthyVoters := 0, 0
	out.Healthy = true
	for i := range out.Servers {
		h := &out.Servers[i]
		h.Healthy = h.SerfStatus == string(lan.StatusAlive) &&
			(h.Leader || (h.LastContact >= 0 && h.LastContact <= cfg.LastContactThreshold &&
				h.LastTerm == self.LastTerm && h.LastIndex+cfg.MaxTrailingLogs >= self.LastIndex))
		if h.Healthy {
			delete(s.autopilot.unhealthy, h.ID)
			if _, ok := s.autopilot.stable[h.ID]; !ok {
				s.autopilot.stable[h.ID] = now
			}
			h.StableSince = s.autopilot.stable[h.ID]
		} else {
			delete(s.autopilot.stable, h.ID)
			if _, ok := s.autopilot.unhealthy[h.ID]; !ok {
				s.autopilot.unhealthy[h.ID] = now
			}
			h.StableSince = s.autopilot.unhealthy[h.ID]
			out.Healthy = false
		}
		if h.Voter {
			voters++
			if h.Healthy {
				healthyVoters++
			}
		}
	}
	out.FailureTolerance = max(0, healthyVoters-(voters/2+1))
	sort.Slice(out.Servers, func(i, j int) bool { return out.Servers[i].ID < out.Servers[j].ID })
	s.autopilot.health, s.autopilot.have = out, true
	s.autopilot.healthy, s.autopilot.healthySet = out.Healthy, true
	return out, nil
}

// autopilotLoop is the leader's autopilot: a health check, then
// promotions and dead-server cleanup, every AutopilotInterval.
func (s *Server) autopilotLoop(ctx context.Context) {
	s.autopilot.reset()
	defer s.autopilot.reset()
	tick := time.NewTicker(s.cfg.AutopilotInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h, err := s.checkHealth(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("autopilot health check", "error", err)
			}
			continue
		}
		s.autopilotActions(h)
	}
}

// autopilotActions promotes the non-voters that are stable and removes the
// dead servers it may.
func (s *Server) autopilotActions(h rpc.AutopilotHealth) {
	cfg := s.AutopilotConfig()
	now := time.Now()
	voters := 0
	var dead []rpc.ServerHealth
	for _, srv := range h.Servers {
		if srv.Voter {
			voters++
		}
		switch {
		case srv.Healthy && !srv.Voter && now.Sub(srv.StableSince) >= cfg.ServerStabilizationTime:
			if err := s.raft.AddVoter(raft.ServerID(srv.ID), raft.ServerAddress(srv.Address), 0, 0).Error(); err != nil {
				s.logger.Warn("autopilot: promote server", "server", srv.Name, "error", err)
				continue
			}
			s.logger.Info("autopilot: promoted server to voter", "server", srv.Name, "id", srv.ID)
		case !srv.Healthy && cfg.CleanupDeadServers && srv.SerfStatus == string(lan.StatusFailed) &&
			now.Sub(srv.StableSince) >= cfg.LastContactThreshold+cfg.ServerStabilizationTime:
			dead = append(dead, srv)
		}
	}
	if len(dead) == 0 {
		return
	}
	deadVoters := 0
	for _, d := range dead {
		if d.Voter {
			deadVoters++
		}
	}
	if 2*deadVoters >= voters || voters-deadVoters < int(cfg.MinQuorum) {
		s.logger.Warn("autopilot: not removing dead servers, that would leave too few voters",
			"dead", len(dead), "voters", voters, "min_quorum", cfg.MinQuorum)
		return
	}
	for _, d := range dead {
		s.removePeer(raft.Server{ID: raft.ServerID(d.ID), Address: raft.ServerAddress(d.Address)}, "autopilot: dead server")
	}
}

// autopilotHealthy is the autopilot_healthy gauge: 1 when the leader's
// last check found every server healthy, 0 when not, -1 on a server that
// does not lead (only the leader checks).
func (s *Server) autopilotHealthy() float64 {
	s.autopilot.mu.Lock()
	defer s.autopilot.mu.Unlock()
	switch {
	case !s.autopilot.healthySet:
		return -1
	case s.autopilot.healthy:
		return 1
	}
	return 0
}
