package agent

import (
	"fmt"
	"testing"

	"github.com/meridian/meridian/httpapi"
)

func TestEventRingBoundedAndDeduplicated(t *testing.T) {
	r := newEventRing()
	_, next := r.list()
	for i := range eventRingSize + 44 {
		if !r.add(&httpapi.UserEvent{ID: fmt.Sprintf("id-%d", i), Name: "e"}) {
			t.Fatalf("add(id-%d) = false, want true", i)
		}
	}
	select {
	case <-next:
	default:
		t.Fatal("the channel from list() was not closed by the next add")
	}
	if r.add(&httpapi.UserEvent{ID: "id-299", Name: "e"}) {
		t.Fatal("add of an ID already held = true, want false")
	}
	evs, _ := r.list()
	if len(evs) != eventRingSize || evs[0].ID != "id-44" || evs[len(evs)-1].ID != "id-299" {
		t.Fatalf("ring holds %d events from %s to %s, want %d from id-44 to id-299", len(evs), evs[0].ID, evs[len(evs)-1].ID, eventRingSize)
	}
	// A dropped ID may come back (it is no longer held).
	if !r.add(&httpapi.UserEvent{ID: "id-0", Name: "e"}) {
		t.Fatal("add of a dropped ID = false, want true")
	}
}
