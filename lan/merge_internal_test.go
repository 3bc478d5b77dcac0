package lan

import (
	"fmt"
	"testing"

	"github.com/hashicorp/serf/serf"
)

// TestRefusalInFindsTheJoinsOwn checks that a join's refusal is found
// after gossip brought other refusals in the meantime (CI saw a learned
// WAN join fail with memberlist's text because an alive message refused
// while the join was being refused had replaced the one remembered), and
// that refusals made before the join or beyond the remembered window are
// not.
func TestRefusalInFindsTheJoinsOwn(t *testing.T) {
	g := &mergeGuard{merge: func(ms []Member) error {
		return fmt.Errorf("member %q refused", ms[0].Name)
	}}
	refuse := func(name string) { g.NotifyMerge([]*serf.Member{{Name: name}}) }
	refuse("old")
	since := g.seq.Load()
	refuse("join")
	refuse("gossip1")
	refuse("gossip2")
	text := `Failed to join 127.0.0.1:1: member "join" refused`
	if r := g.refusalIn(text, since); r == nil || r.Error() != `member "join" refused` {
		t.Errorf("refusalIn(the join's text) = %v, want the join's refusal", r)
	}
	if r := g.refusalIn(`Failed to join 127.0.0.1:1: member "old" refused`, since); r != nil {
		t.Errorf("refusalIn(a refusal made before since) = %v, want nil", r)
	}
	if r := g.refusalIn("Failed to join 127.0.0.1:1: i/o timeout", since); r != nil {
		t.Errorf("refusalIn(an unrelated error) = %v, want nil", r)
	}
	for i := range recentRefusals {
		refuse(fmt.Sprint("more", i))
	}
	if r := g.refusalIn(text, since); r != nil {
		t.Errorf("refusalIn(a refusal %d refusals ago) = %v, want nil", recentRefusals+3, r)
	}
}
