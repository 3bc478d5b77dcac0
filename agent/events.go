package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/meridian/meridian/httpapi"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

// eventRingSize is how many recent user events an agent keeps (Consul's
// 256); older ones are dropped as new ones arrive.
const eventRingSize = 256

// userEventVersion is the version of the event envelope this agent sends.
const userEventVersion = 1

var _ httpapi.Events = (*Agent)(nil)

// eventRing holds the recent user events this agent recorded.
type eventRing struct {
	mu     sync.Mutex
	events []*httpapi.UserEvent // oldest first, at most eventRingSize
	seen   map[string]bool      // IDs in events
	next   chan struct{}        // closed on the next add
}

func newEventRing() *eventRing {
	return &eventRing{seen: map[string]bool{}, next: make(chan struct{})}
}

// add records ev unless an event with its ID is already held; it reports
// whether it did.
func (r *eventRing) add(ev *httpapi.UserEvent) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[ev.ID] {
		return false
	}
	if len(r.events) == eventRingSize {
		delete(r.seen, r.events[0].ID)
		r.events[0] = nil
		r.events = r.events[1:]
	}
	r.events = append(r.events, ev)
	r.seen[ev.ID] = true
	close(r.next)
	r.next = make(chan struct{})
	return true
}

func (r *eventRing) list() ([]*httpapi.UserEvent, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*httpapi.UserEvent, len(r.events))
	for i, e := range r.events {
		c := *e
		out[i] = &c
	}
	return out, r.next
}

// UserEvents returns the recent events this agent recorded, oldest first,
// and a channel closed when it records the next one.
func (a *Agent) UserEvents() ([]*httpapi.UserEvent, <-chan struct{}) { return a.events.list() }

// eventHeader is what an event carries besides its payload: the gossiped
// message is this header as JSON, a newline, then the payload as it is
// (base64 in JSON would cost a third of the packet).
type eventHeader struct {
	ID            string
	NodeFilter    string `json:",omitempty"`
	ServiceFilter string `json:",omitempty"`
	TagFilter     string `json:",omitempty"`
	Version       int
}

// FireEvent gives ev an ID and sends it, through a server of this
// datacenter (which checks token), to every agent of datacenter dc.
func (a *Agent) FireEvent(ctx context.Context, token, dc string, ev *httpapi.UserEvent) error {
	if err := httpapi.ValidateEvent(ev); err != nil {
		return err
	}
	if n := len(ev.Name) + len(ev.Payload); n > httpapi.MaxEventSize {
		return fmt.Errorf("%w: event name and payload are %d bytes, the limit is %d", rpc.ErrBadRequest, n, httpapi.MaxEventSize)
	}
	id, err := newUUID()
	if err != nil {
		return err
	}
	ev.ID, ev.Version = id, userEventVersion
	hdr, err := json.Marshal(eventHeader{ID: ev.ID, NodeFilter: ev.NodeFilter, ServiceFilter: ev.ServiceFilter, TagFilter: ev.TagFilter, Version: ev.Version})
	if err != nil {
		return err
	}
	msg := append(append(hdr, '\n'), ev.Payload...)
	if n := len(rpc.UserEventPrefix) + len(ev.Name) + len(msg); n > lan.UserEventSizeLimit {
		return fmt.Errorf("%w: event with its filters is %d bytes, the limit is %d: shorten the filters or the payload", rpc.ErrBadRequest, n, lan.UserEventSizeLimit)
	}
	args := rpc.Write[rpc.EventFireRequest]{
		WriteOptions: rpc.WriteOptions{Datacenter: dc, Token: token},
		Args:         rpc.EventFireRequest{Name: ev.Name, Payload: msg},
	}
	var reply rpc.WriteResult
	return a.RPC(ctx, rpc.MethodEventFire, &args, &reply)
}

// decodeEvent reads a gossiped user event; ok is false for a user event
// that is not one of ours or cannot be read.
func decodeEvent(e lan.Event) (*httpapi.UserEvent, bool) {
	name, ok := strings.CutPrefix(e.Name, rpc.UserEventPrefix)
	if !ok || name == "" {
		return nil, false
	}
	hdr, payload, ok := bytes.Cut(e.Payload, []byte{'\n'})
	if !ok {
		return nil, false
	}
	var h eventHeader
	if err := json.Unmarshal(hdr, &h); err != nil || h.ID == "" {
		return nil, false
	}
	ev := &httpapi.UserEvent{
		ID: h.ID, Name: name, NodeFilter: h.NodeFilter, ServiceFilter: h.ServiceFilter, TagFilter: h.TagFilter,
		Version: h.Version, LTime: e.LTime,
	}
	if len(payload) > 0 {
		ev.Payload = bytes.Clone(payload)
	}
	return ev, true
}

// handleUserEvent records a gossiped user event that this agent's filters
// let through, and starts a remote exec job it announces.
func (a *Agent) handleUserEvent(e lan.Event) {
	ev, ok := decodeEvent(e)
	if !ok {
		a.logger.Debug("dropping unreadable user event", "name", e.Name)
		return
	}
	match, err := a.eventMatches(ev)
	if err != nil {
		a.logger.Warn("dropping user event with a bad filter", "event", ev.Name, "id", ev.ID, "error", err)
		return
	}
	if !match || !a.events.add(ev) {
		return
	}
	a.logger.Debug("user event", "event", ev.Name, "id", ev.ID)
	if ev.Name == remoteExecEvent {
		a.goFunc(func() { a.handleRemoteExec(ev) })
	}
}

// eventMatches applies an event's filters to this agent: its node name,
// then its local services (by name or ID) and their tags.
func (a *Agent) eventMatches(ev *httpapi.UserEvent) (bool, error) {
	if ev.NodeFilter != "" {
		re, err := regexp.Compile(ev.NodeFilter)
		if err != nil {
			return false, err
		}
		if !re.MatchString(a.cfg.NodeName) {
			return false, nil
		}
	}
	if ev.ServiceFilter == "" {
		return true, nil
	}
	svcRe, err := regexp.Compile(ev.ServiceFilter)
	if err != nil {
		return false, err
	}
	var tagRe *regexp.Regexp
	if ev.TagFilter != "" {
		if tagRe, err = regexp.Compile(ev.TagFilter); err != nil {
			return false, err
		}
	}
	for id, svc := range a.LocalServices() {
		if !svcRe.MatchString(svc.Service) && !svcRe.MatchString(id) {
			continue
		}
		if tagRe == nil {
			return true, nil
		}
		for _, tag := range svc.Tags {
			if tagRe.MatchString(tag) {
				return true, nil
			}
		}
	}
	return false, nil
}
