package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/rpc"
)

// Defaults of the coordinate batching settings in Config (Consul's
// coordinate_update_period, _batch_size and _max_batches, with a larger
// batch: one Raft entry of 1024 coordinates is about 100 KB).
const (
	DefaultCoordinateUpdatePeriod     = 5 * time.Second
	DefaultCoordinateUpdateBatchSize  = 1024
	DefaultCoordinateUpdateMaxBatches = 5
)

// coordinateWrite is the argument of Coordinate.Update.
type coordinateWrite = rpc.Write[catalog.CoordinateEntry]

// coordinateBatch holds the LAN coordinates agents sent the leader since
// its last flush, one per node: a newer update replaces an older one. It
// is bounded: updates for more nodes than it holds are dropped and counted
// until the next flush (agents send theirs again within a few intervals).
// The zero value is not usable; newCoordinateBatch makes one.
type coordinateBatch struct {
	mu      sync.Mutex
	pending map[string]catalog.CoordinateEntry // by lower-case node name
	dropped int
}

func newCoordinateBatch() *coordinateBatch {
	return &coordinateBatch{pending: map[string]catalog.CoordinateEntry{}}
}

// add queues e unless limit other nodes are already waiting.
func (b *coordinateBatch) add(e catalog.CoordinateEntry, limit int) {
	key := strings.ToLower(e.Node)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.pending[key]; !ok && len(b.pending) >= limit {
		b.dropped++
		return
	}
	b.pending[key] = e
}

// take empties the batch and returns what it held, ordered by node, and
// how many updates were dropped since the last take.
func (b *coordinateBatch) take() ([]catalog.CoordinateEntry, int) {
	b.mu.Lock()
	pending, dropped := b.pending, b.dropped
	b.pending, b.dropped = map[string]catalog.CoordinateEntry{}, 0
	b.mu.Unlock()
	out := make([]catalog.CoordinateEntry, 0, len(pending))
	for _, e := range pending {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b catalog.CoordinateEntry) int { return strings.Compare(a.Node, b.Node) })
	return out, dropped
}

// registerCoordinateEndpoints registers Coordinate.Update. (The reads,
// Coordinate.ListNodes and Coordinate.ListDatacenters, are registered with
// the catalog's.)
func (s *Server) registerCoordinateEndpoints() {
	s.coords = newCoordinateBatch()
	register(s, rpc.MethodCoordinateUpdate, s.coordinateUpdate)
}

// coordinateUpdate takes one node's LAN coordinate: any server checks it,
// the leader queues it for the next batch (Consul's Coordinate.Update). The
// reply carries no index: the write happens later, with the batch.
func (s *Server) coordinateUpdate(ctx context.Context, args *coordinateWrite, reply *rpc.WriteResult) error {
	e := &args.Args
	switch {
	case e.Node == "":
		return fmt.Errorf("%w: coordinate update: missing node name", rpc.ErrBadRequest)
	case e.Segment != "":
		return fmt.Errorf("%w: coordinate update for node %q: network segments are not supported (segment %q)", rpc.ErrBadRequest, e.Node, e.Segment)
	}
	if err := e.Coord.Validate(); err != nil {
		return fmt.Errorf("%w: coordinate update for node %q: %w", rpc.ErrBadRequest, e.Node, err)
	}
	if done, err := forwardWrite(s, ctx, rpc.MethodCoordinateUpdate, args, reply); done {
		return err
	}
	batch, batches := s.coordinateBatchLimits()
	s.coords.add(*e, batch*batches)
	reply.OK = true
	return nil
}

func (s *Server) coordinateBatchLimits() (size, count int) {
	size, count = s.cfg.CoordinateUpdateBatchSize, s.cfg.CoordinateUpdateMaxBatches
	if size <= 0 {
		size = DefaultCoordinateUpdateBatchSize
	}
	if count <= 0 {
		count = DefaultCoordinateUpdateMaxBatches
	}
	return size, count
}

// startCoordinateLeader starts the leader's coordinate flush: every
// CoordinateUpdatePeriod the queued coordinates are written, at most
// CoordinateUpdateBatchSize per Raft entry. The returned function stops it,
// waits for it, and drops what is still queued (a later leader gets the
// agents' next updates).
func (s *Server) startCoordinateLeader(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		period := s.cfg.CoordinateUpdatePeriod
		if period <= 0 {
			period = DefaultCoordinateUpdatePeriod
		}
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.flushCoordinates(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		s.coords.take()
	}
}

// flushCoordinates writes the queued coordinates through Raft.
func (s *Server) flushCoordinates(ctx context.Context) {
	entries, dropped := s.coords.take()
	if dropped > 0 {
		s.logger.Warn("discarded coordinate updates: more nodes than a period's batches hold", "discarded", dropped)
	}
	size, _ := s.coordinateBatchLimits()
	for chunk := range slices.Chunk(entries, size) {
		if _, _, err := s.apply(ctx, msgCoordinate, chunk); err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("write coordinate batch", "coordinates", len(chunk), "error", err)
			}
			return
		}
	}
}

// applyCoordinates is the FSM's side of msgCoordinate.
func (f *fsm) applyCoordinates(idx uint64, body []byte) any {
	var entries []catalog.CoordinateEntry
	if err := rpc.Unmarshal(body, &entries); err != nil {
		return fmt.Errorf("decode coordinates at index %d: %w", idx, err)
	}
	return f.state.write(func(tx *memdb.Txn) error {
		return catalog.UpdateCoordinates(tx, idx, entries)
	})
}

// Node names of the answers ?near= sorts.
func nodeName(n *catalog.Node) string                         { return n.Node }
func serviceNodeName(n *catalog.ServiceNode) string           { return n.Node }
func checkServiceNodeName(n *catalog.CheckServiceNode) string { return n.Node.Node }
func checkNodeName(c *catalog.HealthCheck) string             { return c.Node }

// nearCopy sorts a copy of items for ?near=, for answers shared with a
// cache (which must stay in the catalog's order).
func nearCopy[T any](s *Server, near string, items []T, node func(T) string) ([]T, error) {
	if near == "" || len(items) < 2 {
		return items, nil
	}
	tx, _ := s.readTxn()
	defer tx.Abort()
	return nearCopyTx(tx, near, items, node)
}

// nearCopyTx is nearCopy within the read transaction tx.
func nearCopyTx[T any](tx *memdb.Txn, near string, items []T, node func(T) string) ([]T, error) {
	if near == "" || len(items) < 2 {
		return items, nil
	}
	out := slices.Clone(items)
	return out, catalog.SortByDistance(tx, near, out, node)
}
