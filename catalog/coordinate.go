package catalog

import (
	"math"
	"time"
)

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
// /v1/coordinate/datacenters.
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
