package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLeaderContact checks the follower's record of its leader: a probe
// answer or a wake-up after a stall counts as contact as Raft's does, one
// probe at a time, and going silent cancels the requests watching, once.
func TestLeaderContact(t *testing.T) {
	c := newLeaderContact()
	base := time.Now()
	raft := base.Add(-time.Second)

	if got := c.since(raft); !got.Equal(raft) {
		t.Errorf("since(raft) with no probe = %v, want raft's %v", got, raft)
	}
	if !c.startProbe() {
		t.Fatal("startProbe = false with none in flight")
	}
	if c.startProbe() {
		t.Error("startProbe = true with one in flight")
	}
	c.probed(false, base)
	if got := c.since(raft); !got.Equal(raft) {
		t.Errorf("since after an unanswered probe = %v, want raft's %v", got, raft)
	}
	if !c.startProbe() {
		t.Fatal("startProbe = false after the last one ended")
	}
	c.probed(true, base)
	if got := c.since(raft); !got.Equal(base) {
		t.Errorf("since after an answered probe = %v, want the answer's %v", got, base)
	}
	woke := base.Add(time.Second)
	c.wokeAt(woke)
	if got := c.since(raft); !got.Equal(woke) {
		t.Errorf("since after a stall = %v, want the wake-up's %v", got, woke)
	}

	w := c.watch()
	if c.isSilent() {
		t.Fatal("silent before silenced")
	}
	c.silenced()
	if !c.isSilent() {
		t.Error("not silent after silenced")
	}
	select {
	case <-w.Done():
		if !errors.Is(context.Cause(w), errLeaderSilent) {
			t.Errorf("watch cancelled by %v, want errLeaderSilent", context.Cause(w))
		}
	default:
		t.Fatal("a request watching was not cancelled when the leader went silent")
	}
	next := c.watch()
	c.heard()
	if c.isSilent() {
		t.Error("silent after heard")
	}
	if next.Err() != nil {
		t.Errorf("a request that started after the silence was cancelled: %v", next.Err())
	}
}
