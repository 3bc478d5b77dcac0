package lan

import (
	"fmt"
	"time"

	"github.com/hashicorp/serf/coordinate"
)

// Coordinate is a Vivaldi network coordinate (serf's): a point in a
// simulated space whose distance to another member's estimates the round
// trip time between them. Every pool maintains one for itself from the round
// trip times of its probes and caches the coordinates others send back in
// their acks. The alias spares callers an import of serf; what Pool returns
// is a copy the caller owns.
type Coordinate = coordinate.Coordinate

// Coordinate returns this member's network coordinate. It moves with every
// probe; a new pool starts at the origin with a large error.
func (p *Pool) Coordinate() (*Coordinate, error) {
	c, err := p.serf.GetCoordinate()
	if err != nil {
		return nil, fmt.Errorf("coordinate: %w", err)
	}
	return c, nil // serf returns a copy
}

// MemberCoordinate returns the latest coordinate of the member name seen by
// this pool (carried by its acks to this pool's probes, so it is known once
// this pool has probed name at least once), or false if none is known.
func (p *Pool) MemberCoordinate(name string) (*Coordinate, bool) {
	c, ok := p.serf.GetCachedCoordinate(name)
	if !ok || c == nil {
		return nil, false
	}
	return c.Clone(), true
}

// RTT returns the round trip time from this member to the member name
// estimated from their coordinates, or false if name's coordinate is not
// known (see MemberCoordinate). It is 0 for this member itself.
func (p *Pool) RTT(name string) (time.Duration, bool) {
	if name == p.cfg.NodeName {
		return 0, true
	}
	other, ok := p.MemberCoordinate(name)
	if !ok {
		return 0, false
	}
	mine, err := p.Coordinate()
	if err != nil || !mine.IsCompatibleWith(other) {
		return 0, false
	}
	return mine.DistanceTo(other), true
}
