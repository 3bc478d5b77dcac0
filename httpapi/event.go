package httpapi

import (
	"context"
	"errors"
	"hash/fnv"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/meridian/meridian/rpc"
)

// MaxEventSize bounds a user event's name and payload together, in bytes:
// Consul's limit, which keeps an event inside one gossip packet.
const MaxEventSize = 512

// defaultBlockingWait is how long a blocking read of the agent's own state
// (/v1/event/list, /v1/agent/service/:id with ?hash) waits without
// ?wait (Consul's default wait), before MaxQueryTime caps it.
const defaultBlockingWait = 5 * time.Minute

// UserEvent is one user event, as /v1/event/fire and /v1/event/list answer
// it (Consul's shape). NodeFilter, ServiceFilter and TagFilter are regular
// expressions: an agent records the event only when its node name matches
// NodeFilter and, with ServiceFilter, one of its local services (name or
// ID) matches it and, with TagFilter, one tag of that service matches.
type UserEvent struct {
	ID            string
	Name          string
	Payload       []byte
	NodeFilter    string
	ServiceFilter string
	TagFilter     string
	Version       int
	LTime         uint64
}

// Events is the user event system an agent offers; an agent without it
// answers /v1/event/... with 501.
type Events interface {
	// FireEvent sends ev (Name, Payload and the filters set; FireEvent
	// sets ID and Version) to every agent of datacenter dc ("" means the
	// agent's own) through a server, which checks token.
	FireEvent(ctx context.Context, token, dc string, ev *UserEvent) error
	// UserEvents returns the events this agent recorded, oldest first
	// (the most recent 256), and a channel closed when it records the
	// next one.
	UserEvents() ([]*UserEvent, <-chan struct{})
}

// errNoEvents answers 501.
var errNoEvents = errors.New("this agent has no user events")

func (s *Server) eventRoutes() {
	s.handle("PUT /v1/event/fire/{name}", s.eventFire)
	s.handle("GET /v1/event/list", s.eventList)
}

func (s *Server) events(w http.ResponseWriter) (Events, bool) {
	ev, ok := s.agent.(Events)
	if !ok {
		http.Error(w, errNoEvents.Error(), http.StatusNotImplemented)
	}
	return ev, ok
}

func (s *Server) eventFire(w http.ResponseWriter, r *http.Request) (any, error) {
	events, ok := s.events(w)
	if !ok {
		return nil, errAnswered
	}
	q := r.URL.Query()
	dc, err := parseDC(q)
	if err != nil {
		return nil, err
	}
	ev := &UserEvent{
		Name:          r.PathValue("name"),
		NodeFilter:    q.Get("node"),
		ServiceFilter: q.Get("service"),
		TagFilter:     q.Get("tag"),
	}
	if err := ValidateEvent(ev); err != nil {
		return nil, err
	}
	body, err := readBody(r, maxBodyBytes)
	if err != nil {
		return nil, err
	}
	if n := len(ev.Name) + len(body); n > MaxEventSize {
		return nil, &tooLarge{msg: "event too large: name and payload are " + strconv.Itoa(n) + " bytes, the limit is " + strconv.Itoa(MaxEventSize) + " bytes; put large data in KV and send its key"}
	}
	if len(body) > 0 {
		ev.Payload = body
	}
	if err := events.FireEvent(r.Context(), requestToken(r), dc, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// ValidateEvent checks the name and filters of an event to fire: a name,
// filters that compile, and a tag filter only with a service filter.
func ValidateEvent(ev *UserEvent) error {
	if ev.Name == "" {
		return badf("event: a name is required (PUT /v1/event/fire/NAME)")
	}
	for _, f := range []struct{ param, re string }{{"node", ev.NodeFilter}, {"service", ev.ServiceFilter}, {"tag", ev.TagFilter}} {
		if f.re == "" {
			continue
		}
		if _, err := regexp.Compile(f.re); err != nil {
			return badf("event: %s filter %q is not a regular expression: %v", f.param, f.re, err)
		}
	}
	if ev.TagFilter != "" && ev.ServiceFilter == "" {
		return badf("event: a tag filter needs a service filter too")
	}
	return nil
}

// eventList answers the agent's recent events, ?name= only those of that
// name. Its index is derived from the ID of the last event (Consul's
// scheme, which api.Event().IDToIndex mirrors), so it is not monotonic: a
// blocking read waits while the index equals ?index.
func (s *Server) eventList(w http.ResponseWriter, r *http.Request) (any, error) {
	events, ok := s.events(w)
	if !ok {
		return nil, errAnswered
	}
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	name := r.URL.Query().Get("name")
	wait := opts.MaxWait
	if wait <= 0 {
		wait = min(defaultBlockingWait, s.cfg.MaxQueryTime)
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		all, next := events.UserEvents()
		out := make([]*UserEvent, 0, len(all))
		for _, e := range all {
			if name == "" || e.Name == name {
				out = append(out, e)
			}
		}
		index := uint64(1)
		if len(out) > 0 {
			index = EventIndex(out[len(out)-1].ID)
		}
		if opts.MinIndex == 0 || index != opts.MinIndex {
			setMeta(w, &rpc.QueryMeta{Index: index, KnownLeader: true})
			return uncached{out}, nil
		}
		select {
		case <-next:
		case <-timeout.C:
			setMeta(w, &rpc.QueryMeta{Index: index, KnownLeader: true})
			return uncached{out}, nil
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
}

// EventIndex turns an event ID (a UUID) into the index /v1/event/list
// answers, as Consul does (api.Event().IDToIndex): the XOR of the UUID's
// two 64-bit halves. An ID that is not a UUID is hashed instead.
func EventIndex(id string) uint64 {
	if len(id) == 36 {
		lo, err1 := strconv.ParseUint(id[0:8]+id[9:13]+id[14:18], 16, 64)
		hi, err2 := strconv.ParseUint(id[19:23]+id[24:36], 16, 64)
		if err1 == nil && err2 == nil {
			return max(lo^hi, 1)
		}
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return max(h.Sum64(), 1)
}
