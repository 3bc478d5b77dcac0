package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/federation"
	"github.com/meridian/meridian/rpc"
)

// localHandler calls an endpoint in-process, with no encoding: the agent of
// a server answers its own HTTP API this way.
type localHandler func(ctx context.Context, args, reply any) error

// register exposes an endpoint over RPC and in-process.
func register[A, R any](s *Server, method string, fn func(ctx context.Context, args *A, reply *R) error) {
	observe := s.metrics.rpcObserver(method)
	inner := fn
	fn = func(ctx context.Context, args *A, reply *R) error {
		start := time.Now()
		err := s.authorizeWrite(args)
		if err == nil {
			err = inner(ctx, args, reply)
		}
		observe(start, err)
		return err
	}
	if _, ok := callGuards[method]; !ok {
		panic("server: endpoint " + method + " has no entry in callGuards (acl_calls.go)")
	}
	rpc.Register(s.rpcServer, method, func(ctx context.Context, args *A, reply *R) error {
		// From the network: the caller's checks are not ours to trust.
		if err := s.checkACLPrimary(args); err != nil {
			observe(time.Now(), err)
			return err
		}
		auth, err := s.authorizeCall(method, args)
		if err != nil {
			observe(time.Now(), err)
			return err
		}
		if err := fn(ctx, args, reply); err != nil {
			return err
		}
		if b, ok := any(args).(interface{ Blocking() (time.Duration, bool) }); ok {
			if _, blocking := b.Blocking(); blocking {
				// The wait may have been long: the token may have lost
				// its rights, or its life, meanwhile.
				if auth, err = s.authorizeCall(method, args); err != nil {
					return err
				}
			}
		}
		if auth == nil {
			return nil
		}
		return filterReply(auth, reply)
	})
	s.local[method] = func(ctx context.Context, args, reply any) error {
		a, ok := args.(*A)
		if !ok {
			return fmt.Errorf("%s: args are %T, want %T", method, args, a)
		}
		r, ok := reply.(*R)
		if !ok {
			return fmt.Errorf("%s: reply is %T, want %T", method, reply, r)
		}
		return fn(ctx, a, r)
	}
}

// Call runs an endpoint of this server in-process, exactly as an RPC from
// another agent would.
func (s *Server) Call(ctx context.Context, method string, args, reply any) error {
	h, ok := s.local[method]
	if !ok {
		return &rpc.Error{Code: "unknown_method", Message: "unknown method " + method}
	}
	return h(ctx, args, reply)
}

// Query and answer types of the endpoints, named for what they carry.
type (
	nodesQuery      = rpc.Query[catalog.NodesRequest]
	nodeQuery       = rpc.Query[catalog.NodeRequest]
	servicesQuery   = rpc.Query[catalog.NodesRequest]
	serviceQuery    = rpc.Query[catalog.ServiceRequest]
	checksQuery     = rpc.Query[catalog.ChecksRequest]
	registerWrite   = rpc.Write[catalog.RegisterRequest]
	deregisterWrite = rpc.Write[catalog.DeregisterRequest]
)

func (s *Server) registerEndpoints() {
	register(s, rpc.MethodStatusLeader, s.statusLeader)
	register(s, rpc.MethodKeyringOperation, s.keyringOperation)
	register(s, rpc.MethodEventFire, s.eventFire)
	register(s, rpc.MethodStatusPeers, s.statusPeers)
	register(s, rpc.MethodRaftConfig, s.raftConfiguration)
	register(s, rpc.MethodCatalogReg, s.catalogRegister)
	register(s, rpc.MethodCatalogDereg, s.catalogDeregister)
	register(s, rpc.MethodCatalogNodes, s.catalogNodes)
	register(s, rpc.MethodCatalogNode, s.catalogNodeServices)
	register(s, rpc.MethodCatalogSvcs, s.catalogServices)
	register(s, rpc.MethodCatalogSvc, s.catalogServiceNodes)
	register(s, rpc.MethodHealthService, s.healthServiceNodes)
	register(s, rpc.MethodHealthNode, s.healthNodeChecks)
	register(s, rpc.MethodHealthChecks, s.healthServiceChecks)
	register(s, rpc.MethodHealthState, s.healthChecksInState)
	register(s, rpc.MethodUIServices, s.serviceSummaries)
	register(s, rpc.MethodCatalogDCs, s.catalogDatacenters)
	register(s, rpc.MethodCoordinateDCs, s.coordinateDatacenters)
	register(s, rpc.MethodCoordinateLAN, s.coordinateNodes)
	s.registerKVEndpoints()
	s.registerKVReplicationEndpoints()
	s.registerCoordinateEndpoints()
	s.registerQueryEndpoints()
	s.registerACLEndpoints()
	s.registerOperatorEndpoints()
	s.registerAutopilotEndpoints()
	s.registerFederationEndpoints()
	s.registerStreamEndpoints()
}

// forwardWrite sends a write to another datacenter when it names one, or to
// the leader when this server is not it. It reports whether it handled the
// request.
func forwardWrite[A any](s *Server, ctx context.Context, method string, args *rpc.Write[A], reply *rpc.WriteResult) (bool, error) {
	if s.remote(args.Datacenter) {
		return true, s.forwardDC(ctx, args.Datacenter, method, args, reply)
	}
	if s.IsLeader() {
		// A new leader checks writes against its state only once it
		// holds everything committed before it.
		err := s.waitReady(ctx)
		return err != nil, err
	}
	return true, s.forwardToLeader(ctx, method, args, reply)
}

// forwardRead sends a read to another datacenter when it names one, or to
// the leader unless this server may answer it: stale reads are answered
// anywhere; default and consistent reads by the leader once it has applied
// everything committed before it led (waitReady), and for consistent ones
// once it has confirmed its leadership with a quorum.
func forwardRead[A, V any](s *Server, ctx context.Context, method string, args *rpc.Query[A], reply *rpc.Answer[V]) (bool, error) {
	if s.remote(args.Datacenter) {
		return true, s.forwardDC(ctx, args.Datacenter, method, args, reply)
	}
	if args.AllowStale {
		return false, nil
	}
	if !s.IsLeader() {
		return true, s.forwardToLeader(ctx, method, args, reply)
	}
	if err := s.waitReady(ctx); err != nil {
		return true, err
	}
	if args.RequireConsistent {
		if err := s.await(ctx, s.raft.VerifyLeader()); err != nil {
			return true, fmt.Errorf("consistent read: %w", err)
		}
	}
	return false, nil
}

// maxLeaderHold bounds how long a server without a leader holds a request
// for an election to end: a server on the minority side of a partition
// cannot tell its case from a failover in progress, and must answer within
// 1s (the partition figure). Consul holds up to 7s (rpc_hold_timeout); a
// write that arrives early in a failover fails with "No cluster leader"
// instead, and its client retries.
const maxLeaderHold = 750 * time.Millisecond

// forwardToLeader relays a request to the leader, waiting a little for an
// election when there is no leader right now: the ElectionTimeout, at most
// maxLeaderHold. A majority elects a leader within two HeartbeatTimeouts
// and two ElectionTimeouts (both randomised up to twice their value) of
// losing the last one, so a server that has heard from no leader for
// longer is cut off from the majority and says so at once.
func (s *Server) forwardToLeader(ctx context.Context, method string, args, reply any) error {
	deadline := time.Now().Add(min(s.cfg.ElectionTimeout, maxLeaderHold))
	if last := s.raft.LastContact(); !last.IsZero() {
		if cutOff := last.Add(2*s.cfg.HeartbeatTimeout + 2*s.cfg.ElectionTimeout); cutOff.Before(deadline) {
			deadline = cutOff
		}
	}
	for {
		leader := s.Leader()
		if leader != "" && leader != s.cfg.Advertise {
			err := s.callLeader(ctx, leader, method, args, reply)
			if errors.Is(err, rpc.ErrTransport) {
				// Coded, so that it stays a 503 when it travels on
				// to a client or another datacenter.
				return fmt.Errorf("%w: leader %s unreachable: %w", rpc.ErrNoLeader, leader, err)
			}
			return err
		}
		if leader == s.cfg.Advertise {
			// We just became leader: answer ourselves.
			return s.Call(ctx, method, args, reply)
		}
		if time.Now().After(deadline) {
			return rpc.ErrNoLeader
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// blockingQuery runs fn once, or, for a blocking query, until its index
// moves past opts.MinIndex or the wait (plus up to wait/16 of jitter, so
// that many watchers do not return at once) passes. fn adds what its answer
// depends on to ws, which is nil for a query that does not block.
func (s *Server) blockingQuery(ctx context.Context, opts *rpc.QueryOptions, meta *rpc.QueryMeta, fn func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error)) error {
	return s.watchedQuery(ctx, opts, meta, opts.MinIndex > 0, fn)
}

// watchedQuery is blockingQuery, with a watch set for fn even for a query
// that does not block when watch is set: the set of the last read, with
// the channel that closes when the state is replaced, tells a cached
// answer when it is stale.
func (s *Server) watchedQuery(ctx context.Context, opts *rpc.QueryOptions, meta *rpc.QueryMeta, watch bool, fn func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error)) error {
	ctx, cancel := s.blockingContext(ctx, opts)
	defer cancel()
	for {
		tx, abandon := s.readTxn()
		var ws memdb.WatchSet
		if watch || opts.MinIndex > 0 {
			ws = memdb.NewWatchSet()
			ws.Add(abandon)
		}
		idx, err := fn(ws, tx)
		tx.Abort()
		if err != nil {
			return err
		}
		meta.Index = max(idx, 1)
		if opts.MinIndex == 0 || meta.Index > opts.MinIndex {
			break
		}
		if ws.WatchCtx(ctx) != nil {
			break // the wait is over: an unchanged answer is normal
		}
	}
	s.setQueryMeta(meta)
	return nil
}

// blockingContext bounds a blocking query (MinIndex > 0) by its wait:
// DefaultQueryWait when it asks for none, at most MaxQueryWait, plus up to
// wait/16 of jitter so that many watchers do not return at once. A query
// that does not block gets ctx as it is.
func (s *Server) blockingContext(ctx context.Context, opts *rpc.QueryOptions) (context.Context, context.CancelFunc) {
	if opts.MinIndex == 0 {
		return ctx, func() {}
	}
	wait := opts.MaxWait
	if wait <= 0 {
		wait = s.cfg.DefaultQueryWait
	}
	wait = min(wait, s.cfg.MaxQueryWait)
	wait += rand.N(wait/16 + 1)
	return context.WithTimeout(ctx, wait)
}

// setQueryMeta says where an answer came from: from a leader holding
// everything committed (LastContact 0), or from a server whose state is as
// old as its last contact with a leader, or, before any, as its start (a
// restarted server answers from its snapshot until a leader tells it what
// was committed since).
func (s *Server) setQueryMeta(meta *rpc.QueryMeta) {
	if s.isReady() {
		meta.KnownLeader = true
		meta.LastContact = 0
		return
	}
	meta.KnownLeader = s.Leader() != ""
	last := s.raft.LastContact()
	if last.IsZero() {
		last = s.started
	}
	meta.LastContact = time.Since(last)
}

// statusLeader answers the leader's address, of another datacenter with
// ?dc= (an unknown one is an error, as Consul's). statusPeers answers the
// voters likewise.
func (s *Server) statusLeader(ctx context.Context, args *rpc.Query[struct{}], reply *string) error {
	if s.remote(args.Datacenter) {
		return s.forwardDC(ctx, args.Datacenter, rpc.MethodStatusLeader, args, reply)
	}
	*reply = s.Leader()
	return nil
}

func (s *Server) statusPeers(ctx context.Context, args *rpc.Query[struct{}], reply *[]string) error {
	if s.remote(args.Datacenter) {
		return s.forwardDC(ctx, args.Datacenter, rpc.MethodStatusPeers, args, reply)
	}
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return err
	}
	peers := []string{}
	for _, srv := range future.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			peers = append(peers, string(srv.Address))
		}
	}
	*reply = peers
	return nil
}

func (s *Server) raftConfiguration(ctx context.Context, args *rpc.Query[struct{}], reply *rpc.Answer[rpc.RaftConfiguration]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodRaftConfig, args, reply); done {
		return err
	}
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return err
	}
	leader := s.Leader()
	names := map[string]string{}
	for _, m := range s.lan.Members() {
		if meta, ok := ParseMember(m); ok {
			names[meta.ID] = meta.Name
		}
	}
	out := rpc.RaftConfiguration{Index: future.Index(), Servers: []rpc.RaftServer{}}
	for _, srv := range future.Configuration().Servers {
		out.Servers = append(out.Servers, rpc.RaftServer{
			ID:              string(srv.ID),
			Node:            names[string(srv.ID)],
			Address:         string(srv.Address),
			Leader:          string(srv.Address) == leader,
			Voter:           srv.Suffrage == raft.Voter,
			ProtocolVersion: "3",
		})
	}
	reply.Value = out
	reply.Index = max(future.Index(), 1)
	s.setQueryMeta(&reply.QueryMeta)
	return nil
}

func (s *Server) catalogRegister(ctx context.Context, args *registerWrite, reply *rpc.WriteResult) error {
	if done, err := forwardWrite(s, ctx, rpc.MethodCatalogReg, args, reply); done {
		return err
	}
	if args.Args.Datacenter == "" {
		args.Args.Datacenter = s.cfg.Datacenter
	}
	if idx, ok, err := s.registerUnchanged(ctx, &args.Args); err != nil || ok {
		reply.Index, reply.OK = idx, err == nil
		return err
	}
	idx, _, err := s.apply(ctx, msgRegister, &args.Args)
	reply.Index, reply.OK = idx, err == nil
	return badRequestIf(err)
}

// registerUnchanged reports whether req would change nothing in the
// leader's state (the same node, service and checks as registered now: an
// agent's periodic full sync, a tool that registers again and again), and
// then the index the state stands at, so that the write costs no Raft
// entry and no fsync. It runs the FSM's own register in a write transaction
// that it throws away, and counts on catalog.Register moving nothing that
// is unchanged. The leader answers so only once a quorum confirms it still
// leads: every write acknowledged before is then in its state, and a
// deposed leader cannot acknowledge a write it no longer sees.
func (s *Server) registerUnchanged(ctx context.Context, req *catalog.RegisterRequest) (uint64, bool, error) {
	sdb := s.state.cur.Load()
	tx := sdb.db.Txn(true)
	tx.TrackChanges()
	idx := s.raft.AppliedIndex()
	err := catalog.Register(tx, idx+1, req)
	if err == nil {
		err = invalidateForRegister(tx, idx+1, time.Now(), req)
	}
	unchanged := err == nil && len(tx.Changes()) == 0
	tx.Abort()
	if !unchanged {
		return 0, false, nil // a change, or a refusal the FSM will give
	}
	if err := s.await(ctx, s.raft.VerifyLeader()); err != nil {
		return 0, false, nil // let the write path say what is wrong
	}
	return idx, true, nil
}

func (s *Server) catalogDeregister(ctx context.Context, args *deregisterWrite, reply *rpc.WriteResult) error {
	if done, err := forwardWrite(s, ctx, rpc.MethodCatalogDereg, args, reply); done {
		return err
	}
	if args.Args.Node == "" {
		return fmt.Errorf("%w: missing node name", rpc.ErrBadRequest)
	}
	idx, _, err := s.apply(ctx, msgDeregister, &args.Args)
	reply.Index, reply.OK = idx, err == nil
	return badRequestIf(err)
}

func (s *Server) catalogNodes(ctx context.Context, args *nodesQuery, reply *rpc.Answer[[]*catalog.Node]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodCatalogNodes, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, nodes, err := catalog.Nodes(tx, ws, args.Args.NodeMeta)
		if err == nil {
			err = catalog.SortByDistance(tx, args.Near, nodes, nodeName)
		}
		reply.Value = nodes
		return idx, err
	})
}

func (s *Server) catalogNodeServices(ctx context.Context, args *nodeQuery, reply *rpc.Answer[*catalog.NodeServices]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodCatalogNode, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, ns, err := catalog.GetNodeServices(tx, ws, args.Args.Node)
		reply.Value = ns
		return idx, err
	})
}

func (s *Server) catalogServices(ctx context.Context, args *servicesQuery, reply *rpc.Answer[map[string][]string]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodCatalogSvcs, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, svcs, err := catalog.Services(tx, ws, args.Args.NodeMeta)
		reply.Value = svcs
		return idx, err
	})
}

// serviceSummaries answers the web UI's services list: every service with
// its instance and check counts, read in one transaction.
func (s *Server) serviceSummaries(ctx context.Context, args *rpc.Query[struct{}], reply *rpc.Answer[[]*catalog.ServiceSummary]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodUIServices, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, sums, err := catalog.ServiceSummaries(tx, ws)
		reply.Value = sums
		return idx, err
	})
}

func (s *Server) catalogServiceNodes(ctx context.Context, args *serviceQuery, reply *rpc.Answer[[]*catalog.ServiceNode]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodCatalogSvc, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, nodes, err := catalog.ServiceNodes(tx, ws, args.Args.Service, args.Args.ServiceQuery)
		if err == nil {
			err = catalog.SortByDistance(tx, args.Near, nodes, serviceNodeName)
		}
		reply.Value = nodes
		return idx, err
	})
}

func (s *Server) healthServiceNodes(ctx context.Context, args *serviceQuery, reply *rpc.Answer[[]*catalog.CheckServiceNode]) error {
	if s.views != nil && args.AllowStale && s.remote(args.Datacenter) {
		return federation.Read(ctx, s.views, args.Datacenter, rpc.MethodHealthService, args, reply)
	}
	if args.MinIndex > 0 && !args.AllowStale && !s.remote(args.Datacenter) && !s.IsLeader() {
		// A follower's watchers of one read share one blocking call to
		// the leader, and its answer.
		k := *args
		k.MinIndex, k.MaxWait = 0, 0
		if key, err := json.Marshal(&k); err == nil {
			meta, nodes, err := s.leaderHealth.Do(ctx, string(key), args.QueryOptions, func(ctx context.Context, opts rpc.QueryOptions) (rpc.QueryMeta, []*catalog.CheckServiceNode, error) {
				up := serviceQuery{QueryOptions: opts, Args: args.Args}
				var r rpc.Answer[[]*catalog.CheckServiceNode]
				err := s.forwardToLeader(ctx, rpc.MethodHealthService, &up, &r)
				return r.QueryMeta, r.Value, err
			})
			reply.QueryMeta, reply.Value = meta, nodes
			return err
		}
	}
	if done, err := forwardRead(s, ctx, rpc.MethodHealthService, args, reply); done {
		return err
	}
	// Every caller of one query shares one read of it per index (see
	// answerCache): a blocking caller parks on the channels of the
	// current answer, and the wake that follows a change reads the state
	// once for all of them. The cached answer is shared: ?near sorts a
	// copy.
	key := serviceKey(&args.Args)
	read := s.healthRead(&args.Args)
	ctx, cancel := s.blockingContext(ctx, &args.QueryOptions)
	defer cancel()
	for {
		e, err := s.answers.load(key, read)
		if err != nil {
			return err
		}
		if args.MinIndex == 0 || e.index > args.MinIndex || e.ws.WatchCtx(ctx) != nil {
			// Changed, not a blocking query, or the wait is over (an
			// unchanged answer is normal then).
			nodes, err := nearCopy(s, args.Near, e.value.([]*catalog.CheckServiceNode), checkServiceNodeName)
			reply.Value = nodes
			reply.Index = e.index
			s.setQueryMeta(&reply.QueryMeta)
			return err
		}
	}
}

func (s *Server) healthNodeChecks(ctx context.Context, args *nodeQuery, reply *rpc.Answer[[]*catalog.HealthCheck]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodHealthNode, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, checks, err := catalog.NodeChecks(tx, ws, args.Args.Node)
		reply.Value = checks
		return idx, err
	})
}

func (s *Server) healthServiceChecks(ctx context.Context, args *checksQuery, reply *rpc.Answer[[]*catalog.HealthCheck]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodHealthChecks, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, checks, err := catalog.ServiceChecks(tx, ws, args.Args.Name, args.Args.NodeMeta)
		if err == nil {
			err = catalog.SortByDistance(tx, args.Near, checks, checkNodeName)
		}
		reply.Value = checks
		return idx, err
	})
}

func (s *Server) healthChecksInState(ctx context.Context, args *checksQuery, reply *rpc.Answer[[]*catalog.HealthCheck]) error {
	if done, err := forwardRead(s, ctx, rpc.MethodHealthState, args, reply); done {
		return err
	}
	return s.blockingQuery(ctx, &args.QueryOptions, &reply.QueryMeta, func(ws memdb.WatchSet, tx *memdb.Txn) (uint64, error) {
		idx, checks, err := catalog.ChecksInState(tx, ws, args.Args.Name, args.Args.NodeMeta)
		reply.Value = checks
		return idx, err
	})
}

// badRequestIf marks the catalog's refusals of a request as the caller's
// fault, so the HTTP API answers 400 with the reason.
func badRequestIf(err error) error {
	for _, target := range []error{catalog.ErrInvalidRequest, catalog.ErrMissingNode, catalog.ErrMissingService, catalog.ErrNodeIDConflict} {
		if errors.Is(err, target) {
			return fmt.Errorf("%w: %w", rpc.ErrBadRequest, err)
		}
	}
	return err
}
