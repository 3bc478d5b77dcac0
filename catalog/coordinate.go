package catalog

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// CoordDimension is the length of a LAN coordinate's Vec: serf's default
// dimensionality, which every agent's gossip pool uses.
const CoordDimension = 8

// Coord is a network coordinate (serf's Vivaldi) as Consul's API writes it:
// the estimated round-trip time between two nodes is the Euclidean distance
// of their Vec plus both Heights, adjusted by both Adjustments, in seconds.
type Coord struct {
	Vec        []float64
	Error      float64
	Adjustment float64
	Height     float64
}

// CoordinateEntry is one node's coordinate: a LAN node in
// /v1/coordinate/nodes, a WAN server ("node.dc") in
// /v1/coordinate/datacenters. It is also the body of PUT
// /v1/coordinate/update and the argument of the Coordinate.Update endpoint.
type CoordinateEntry struct {
	Node    string
	Segment string
	Coord   *Coord
}

// DatacenterCoordinates are the WAN coordinates of one datacenter's servers,
// as /v1/coordinate/datacenters lists them.
type DatacenterCoordinates struct {
	Datacenter  string
	AreaID      string
	Coordinates []CoordinateEntry
}

// DistanceTo estimates the round-trip time between c and o, as serf's
// Vivaldi does: the Euclidean distance of the vectors plus both heights,
// corrected by both adjustments unless that would make it negative. Vectors
// of different dimensions are not comparable: it answers 0 and false.
func (c *Coord) DistanceTo(o *Coord) (time.Duration, bool) {
	if c == nil || o == nil || len(c.Vec) != len(o.Vec) {
		return 0, false
	}
	var sum float64
	for i := range c.Vec {
		d := c.Vec[i] - o.Vec[i]
		sum += d * d
	}
	dist := math.Sqrt(sum) + c.Height + o.Height
	if adjusted := dist + c.Adjustment + o.Adjustment; adjusted > 0 {
		dist = adjusted
	}
	return time.Duration(dist * float64(time.Second)), true
}

// Validate reports why c cannot be stored as a LAN coordinate, wrapping
// ErrInvalidRequest: it is missing, its Vec does not have CoordDimension
// components, or a number in it is NaN or infinite (serf's IsValid).
func (c *Coord) Validate() error {
	if c == nil {
		return fmt.Errorf("coordinate missing: %w", ErrInvalidRequest)
	}
	if len(c.Vec) != CoordDimension {
		return fmt.Errorf("coordinate has %d dimensions, want %d: %w", len(c.Vec), CoordDimension, ErrInvalidRequest)
	}
	for i, v := range c.Vec {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("coordinate component Vec[%d] is %v, want a finite number: %w", i, v, ErrInvalidRequest)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"Error", c.Error}, {"Adjustment", c.Adjustment}, {"Height", c.Height}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("coordinate %s is %v, want a finite number: %w", f.name, f.v, ErrInvalidRequest)
		}
	}
	return nil
}

// NearIP prefixes an IP address in SortByDistance's from.
const NearIP = "_ip:"

// nodeAtAddress names the node registered with address ip, "" for none.
func nodeAtAddress(tx *memdb.Txn, ip string) (string, error) {
	it, err := tx.Get(tableNodes, "id")
	if err != nil {
		return "", err
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if n := obj.(*nodeRow).node; n.Address == ip {
			return n.Node, nil
		}
	}
	return "", nil
}

func cloneCoord(c *Coord) *Coord {
	cc := *c
	cc.Vec = slices.Clone(c.Vec)
	return &cc
}

// SortByDistance orders items, each on the node that node names, by the
// estimated round-trip time from the node named from, nearest first, with
// the coordinates stored in tx (Consul's ?near). Items on nodes without a
// usable coordinate go last; equal distances keep their order. When from
// has no coordinate the order is left as it is, as Consul does.
//
// from may also be NearIP followed by an IP address: the node registered
// with that address (Consul's ?near=_ip, the requester's own node).
func SortByDistance[T any](tx *memdb.Txn, from string, items []T, node func(T) string) error {
	if from == "" || len(items) < 2 {
		return nil
	}
	if ip, ok := strings.CutPrefix(from, NearIP); ok {
		var err error
		if from, err = nodeAtAddress(tx, ip); err != nil || from == "" {
			return err
		}
	}
	origin, err := NodeCoordinate(tx, from)
	if err != nil || origin == nil {
		return err
	}
	type keyed struct {
		dist float64
		item T
	}
	dists := map[string]float64{}
	keyedItems := make([]keyed, len(items))
	for i, it := range items {
		name := strings.ToLower(node(it))
		d, ok := dists[name]
		if !ok {
			d = math.Inf(1)
			c, err := NodeCoordinate(tx, name)
			if err != nil {
				return err
			}
			if rtt, ok := origin.DistanceTo(c); ok {
				d = rtt.Seconds()
			}
			dists[name] = d
		}
		keyedItems[i] = keyed{d, it}
	}
	slices.SortStableFunc(keyedItems, func(a, b keyed) int { return cmp.Compare(a.dist, b.dist) })
	for i := range keyedItems {
		items[i] = keyedItems[i].item
	}
	return nil
}
