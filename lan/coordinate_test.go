package lan_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/lan"
)

func TestCoordinates(t *testing.T) {
	t.Parallel()
	pools := startCluster(t, nil, "a", "b")
	a, b := pools[0], pools[1]
	// Each ack to a probe carries the prober's view of the other's
	// coordinate; a few probe rounds (200ms each) give both.
	wait.Eventually(t, 10*time.Second, func() error {
		for _, pair := range [][2]*testPool{{a, b}, {b, a}} {
			p, q := pair[0], pair[1]
			c, ok := p.MemberCoordinate(q.Name)
			if !ok {
				return fmt.Errorf("%s: MemberCoordinate(%q) = false, want a coordinate", p.Name, q.Name)
			}
			if !c.IsValid() {
				return fmt.Errorf("%s: MemberCoordinate(%q) = %+v, not valid", p.Name, q.Name, c)
			}
			rtt, ok := p.RTT(q.Name)
			if !ok || rtt <= 0 {
				return fmt.Errorf("%s: RTT(%q) = %v, %v, want a positive duration", p.Name, q.Name, rtt, ok)
			}
			// Loopback round trips are microseconds; Vivaldi starts
			// far off and converges, so allow a wide margin.
			if rtt > 50*time.Millisecond {
				return fmt.Errorf("%s: RTT(%q) = %v, want below 50ms on loopback", p.Name, q.Name, rtt)
			}
		}
		return nil
	})
	mine, err := a.Coordinate()
	if err != nil || !mine.IsValid() {
		t.Fatalf("Coordinate() = %+v, %v, want a valid coordinate", mine, err)
	}
	// Returned coordinates are copies.
	mine.Vec[0] = 1e6
	if again, _ := a.Coordinate(); again.Vec[0] == 1e6 {
		t.Errorf("Coordinate() returned serf's own coordinate, not a copy")
	}
	c, _ := a.MemberCoordinate("b")
	c.Vec[0] = 1e6
	if again, _ := a.MemberCoordinate("b"); again.Vec[0] == 1e6 {
		t.Errorf("MemberCoordinate(b) returned serf's cached coordinate, not a copy")
	}
	if rtt, ok := a.RTT("a"); !ok || rtt != 0 {
		t.Errorf("RTT(self) = %v, %v, want 0, true", rtt, ok)
	}
	if _, ok := a.RTT("nobody"); ok {
		t.Errorf("RTT(%q) = _, true, want false", "nobody")
	}
	if _, ok := a.MemberCoordinate("nobody"); ok {
		t.Errorf("MemberCoordinate(%q) = _, true, want false", "nobody")
	}
	var _ *lan.Coordinate = c // the alias spares callers serf's import
}
