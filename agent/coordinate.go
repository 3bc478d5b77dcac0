package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"time"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/rpc"
)

// Coordinate sending timings.
const (
	// DefaultCoordinateInterval is how often an agent sends its LAN
	// coordinate to the servers while the datacenter has fewer than
	// DefaultCoordinateInterval x coordinateRateTarget nodes (640).
	DefaultCoordinateInterval = 10 * time.Second
	// coordinateRateTarget is the rate of updates per second the servers
	// should get from the whole datacenter (Consul's
	// sync_coordinate_rate_target): in a larger datacenter each agent's
	// interval grows to nodes / rate seconds.
	coordinateRateTarget = 64
	// coordinateResendEvery re-sends an unchanged coordinate every this
	// many intervals, so the catalog recovers an update the leader dropped
	// (a leadership change, a full batch) or skipped (the node was not
	// registered yet).
	coordinateResendEvery = 6
)

// coordinateLoop sends the agent's LAN coordinate to the servers every
// coordinateInterval, skipping sends of an unchanged coordinate, until the
// agent stops. The leader writes what agents send in batches.
func (a *Agent) coordinateLoop() {
	timer := time.NewTimer(a.coordinateInterval())
	defer timer.Stop()
	var last *catalog.Coord
	unchanged := 0
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(a.coordinateInterval())
		c, err := a.lan.Coordinate()
		if err != nil {
			if a.ctx.Err() != nil {
				return
			}
			a.logger.Warn("read lan coordinate", "error", err)
			continue
		}
		coord := &catalog.Coord{Vec: slices.Clone(c.Vec), Error: c.Error, Adjustment: c.Adjustment, Height: c.Height}
		if last != nil && reflect.DeepEqual(last, coord) && unchanged < coordinateResendEvery-1 {
			unchanged++
			continue
		}
		if err := a.sendCoordinate(coord); err != nil {
			if a.ctx.Err() != nil {
				return
			}
			level := a.logger.Warn
			if errors.Is(err, rpc.ErrNoLeader) {
				level = a.logger.Debug // starting up, or an election
			}
			level("send lan coordinate", "error", err)
			continue
		}
		last, unchanged = coord, 0
	}
}

// sendCoordinate sends one Coordinate.Update for this node.
func (a *Agent) sendCoordinate(c *catalog.Coord) error {
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	req := rpc.Write[catalog.CoordinateEntry]{WriteOptions: rpc.WriteOptions{Token: a.agentToken()}, Args: catalog.CoordinateEntry{Node: a.cfg.NodeName, Coord: c}}
	var reply rpc.WriteResult
	return a.RPC(ctx, rpc.MethodCoordinateUpdate, &req, &reply)
}

// coordinateInterval is the send interval for the datacenter's size, plus
// a random stagger of up to a quarter so that agents do not send together.
func (a *Agent) coordinateInterval() time.Duration {
	base := a.opts.CoordinateInterval
	if base <= 0 {
		base = DefaultCoordinateInterval
	}
	if scaled := time.Duration(a.aliveMembers()) * time.Second / coordinateRateTarget; scaled > base {
		base = scaled
	}
	return base + rand.N(base/4+1)
}
