package lan

import (
	"fmt"
	"maps"
	"net"
	"slices"

	"github.com/hashicorp/serf/serf"
)

// maxQueuedEvents bounds the events a Pool holds for a slow EventCh reader.
const maxQueuedEvents = 8192

// Status is a member's state as this pool sees it.
type Status string

// The member states. A member is alive, or leaving then left after a
// graceful Leave, or failed when it stopped answering probes.
const (
	StatusNone    Status = "none"
	StatusAlive   Status = "alive"
	StatusLeaving Status = "leaving"
	StatusLeft    Status = "left"
	StatusFailed  Status = "failed"
)

// Code returns the number Consul's HTTP API uses for s in
// /v1/agent/members: 0 none, 1 alive, 2 leaving, 3 left, 4 failed.
func (s Status) Code() int {
	switch s {
	case StatusAlive:
		return int(serf.StatusAlive)
	case StatusLeaving:
		return int(serf.StatusLeaving)
	case StatusLeft:
		return int(serf.StatusLeft)
	case StatusFailed:
		return int(serf.StatusFailed)
	default:
		return int(serf.StatusNone)
	}
}

func statusOf(s serf.MemberStatus) Status {
	switch s {
	case serf.StatusAlive:
		return StatusAlive
	case serf.StatusLeaving:
		return StatusLeaving
	case serf.StatusLeft:
		return StatusLeft
	case serf.StatusFailed:
		return StatusFailed
	default:
		return StatusNone
	}
}

// Member is one member of the pool. Values returned by Pool are copies the
// caller owns.
type Member struct {
	Name   string
	Addr   net.IP // advertised gossip address
	Port   uint16 // advertised gossip port
	Tags   map[string]string
	Status Status

	// The gossip (memberlist) and serf protocol versions the member
	// supports and speaks, as Consul reports them.
	ProtocolMin, ProtocolMax, ProtocolCur uint8
	DelegateMin, DelegateMax, DelegateCur uint8
}

func memberOf(m serf.Member) Member {
	return Member{
		Name:        m.Name,
		Addr:        slices.Clone(m.Addr),
		Port:        m.Port,
		Tags:        maps.Clone(m.Tags),
		Status:      statusOf(m.Status),
		ProtocolMin: m.ProtocolMin,
		ProtocolMax: m.ProtocolMax,
		ProtocolCur: m.ProtocolCur,
		DelegateMin: m.DelegateMin,
		DelegateMax: m.DelegateMax,
		DelegateCur: m.DelegateCur,
	}
}

// EventType says what an Event reports.
type EventType int

// The event types.
const (
	// MemberJoin: members became alive (joined, or came back after failing).
	MemberJoin EventType = iota + 1
	// MemberLeave: members left gracefully (or were force-left).
	MemberLeave
	// MemberFailed: members stopped answering probes.
	MemberFailed
	// MemberUpdate: members changed their tags.
	MemberUpdate
	// MemberReap: failed or left members were dropped from the member list.
	MemberReap
	// User: a user event (Pool.UserEvent); see Event.Name and Event.Payload.
	User
	// NameConflict: two members claim one name; see Event.Conflict.
	NameConflict
)

// String returns the Consul-style name of t, e.g. "member-join".
func (t EventType) String() string {
	switch t {
	case MemberJoin:
		return "member-join"
	case MemberLeave:
		return "member-leave"
	case MemberFailed:
		return "member-failed"
	case MemberUpdate:
		return "member-update"
	case MemberReap:
		return "member-reap"
	case User:
		return "user"
	case NameConflict:
		return "name-conflict"
	default:
		return fmt.Sprintf("EventType(%d)", int(t))
	}
}

// Event is one change seen by the pool.
type Event struct {
	Type EventType

	// Members are the members concerned (Member* events).
	Members []Member

	// Name, Payload, LTime and Coalesce describe a User event. LTime is the
	// event's Lamport time in the pool.
	Name     string
	Payload  []byte
	LTime    uint64
	Coalesce bool

	// Conflict describes a NameConflict event.
	Conflict *NameConflictError
}

// eventOf converts a serf event; ok is false for events the pool does not
// forward (queries).
func eventOf(e serf.Event) (ev Event, ok bool) {
	switch e := e.(type) {
	case serf.MemberEvent:
		var t EventType
		switch e.Type {
		case serf.EventMemberJoin:
			t = MemberJoin
		case serf.EventMemberLeave:
			t = MemberLeave
		case serf.EventMemberFailed:
			t = MemberFailed
		case serf.EventMemberUpdate:
			t = MemberUpdate
		case serf.EventMemberReap:
			t = MemberReap
		default:
			return Event{}, false
		}
		ms := make([]Member, len(e.Members))
		for i, m := range e.Members {
			ms[i] = memberOf(m)
		}
		return Event{Type: t, Members: ms}, true
	case serf.UserEvent:
		return Event{
			Type:     User,
			Name:     e.Name,
			Payload:  slices.Clone(e.Payload),
			LTime:    uint64(e.LTime),
			Coalesce: e.Coalesce,
		}, true
	default:
		return Event{}, false
	}
}

// forward moves events from serf (and name conflicts from the log bridge) to
// the user's channel, in order, holding up to maxQueuedEvents so that a slow
// reader does not stall gossip at once. It returns when stop is closed.
func (p *Pool) forward(in <-chan serf.Event) {
	defer p.wg.Done()
	var queue []Event
	for {
		var out chan<- Event
		var next Event
		if len(queue) > 0 {
			out, next = p.cfg.EventCh, queue[0]
		}
		recv := in
		if len(queue) >= maxQueuedEvents {
			recv = nil
		}
		select {
		case e := <-recv:
			if ev, ok := eventOf(e); ok {
				queue = append(queue, ev)
			}
		case c := <-p.conflicts.ch:
			queue = append(queue, Event{Type: NameConflict, Conflict: c})
		case out <- next:
			queue[0] = Event{}
			queue = queue[1:]
		case <-p.stop:
			// Serf has shut down; unblock any of its goroutines still
			// sending to us, then go.
			for {
				select {
				case <-in:
				default:
					return
				}
			}
		}
	}
}
