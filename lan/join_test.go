package lan_test

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/gossiptest"
	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/lan"
)

// TestJoinLabelMismatch pins what memberlist does on a label mismatch (the
// remote drops the stream, the joiner reads EOF) and checks that Join turns
// it into a *LabelMismatchError, whichever side has which label.
func TestJoinLabelMismatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		joiner, other string
		wantErr       string
	}{
		{"two labels", "meridian-wan", lan.Label, `gossip port of another kind: it refused label "meridian-wan"`},
		{"reverse", lan.Label, "meridian-wan", `gossip port of another kind: it refused label "meridian-lan"`},
		{"joiner unlabelled", "", lan.Label, "gossip port of another kind: it refused unlabelled gossip"},
		{"remote unlabelled", lan.Label, "", `gossip port of another kind: it refused label "meridian-lan"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca, cb := fastConfig("a"), fastConfig("b")
			ca.Label, cb.Label = tc.joiner, tc.other
			a, b := startPool(t, ca), startPool(t, cb)
			n, err := a.Join(t.Context(), []string{b.HostPort})
			if n != 0 || !errors.Is(err, lan.ErrLabelMismatch) {
				t.Fatalf("Join(%q) = %d, %v, want 0, ErrLabelMismatch", b.HostPort, n, err)
			}
			var le *lan.LabelMismatchError
			if !errors.As(err, &le) || le.Addr != b.HostPort || le.Label != tc.joiner {
				t.Errorf("Join(%q) error = %#v, want a *LabelMismatchError{Addr: %q, Label: %q}", b.HostPort, le, b.HostPort, tc.joiner)
			}
			want := "join " + b.HostPort + ": " + tc.wantErr
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Join(%q) = %q, want prefix %q", b.HostPort, err, want)
			}
			gossiptest.CheckOneLine(t, fmt.Sprintf("Join(%q)", b.HostPort), err, b.HostPort)
			for _, p := range []*testPool{a, b} {
				if got := len(p.Members()); got != 1 {
					t.Errorf("%s: len(Members()) = %d after a refused join, want 1", p.Name, got)
				}
			}
		})
	}
	t.Run("same label joins", func(t *testing.T) {
		t.Parallel()
		startCluster(t, func(c *lan.Config) { c.Label = "meridian-wan" }, "a", "b")
	})
	t.Run("default label", func(t *testing.T) {
		t.Parallel()
		if got := lan.DefaultConfig().Label; got != lan.Label {
			t.Errorf("DefaultConfig().Label = %q, want %q", got, lan.Label)
		}
	})
}

// TestJoinEncryption pins memberlist's errors for mismatched encryption and
// checks that Join wraps them in ErrEncryptionMismatch.
func TestJoinEncryption(t *testing.T) {
	t.Parallel()
	key1, key2 := make([]byte, 16), make([]byte, 16)
	key2[0] = 1
	tests := []struct {
		name          string
		joiner, other []byte
	}{
		{"different keys", key1, key2},
		{"joiner plain", nil, key2},
		{"remote plain", key1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca, cb := fastConfig("a"), fastConfig("b")
			ca.EncryptKey, cb.EncryptKey = tc.joiner, tc.other
			a, b := startPool(t, ca), startPool(t, cb)
			n, err := a.Join(t.Context(), []string{b.HostPort})
			if n != 0 || !errors.Is(err, lan.ErrEncryptionMismatch) {
				t.Fatalf("Join(%q) = %d, %v, want 0, ErrEncryptionMismatch", b.HostPort, n, err)
			}
			gossiptest.CheckOneLine(t, fmt.Sprintf("Join(%q)", b.HostPort), err, b.HostPort)
			if !strings.Contains(err.Error(), "same encryption key") {
				t.Errorf("Join(%q) = %q, want it to say the keys must match", b.HostPort, err)
			}
		})
	}
	t.Run("same key joins", func(t *testing.T) {
		t.Parallel()
		startCluster(t, func(c *lan.Config) { c.EncryptKey = key2 }, "a", "b")
	})
}

func TestJoinPort(t *testing.T) {
	t.Parallel()
	b := startPool(t, fastConfig("b"))
	_, port := b.Addr()
	cfg := fastConfig("a")
	cfg.JoinPort = port
	a := startPool(t, cfg)
	if n, err := a.Join(t.Context(), []string{"127.0.0.1"}); n != 1 || err != nil {
		t.Fatalf("Join(%q) with JoinPort %d = %d, %v, want 1, nil", "127.0.0.1", port, n, err)
	}
	a.WaitStatus(t, "b", lan.StatusAlive, 5*time.Second)
	// Without JoinPort, 8301 is added: the error names it.
	if !portFree(lan.DefaultPort) {
		t.Skipf("127.0.0.1:%d is in use on this machine", lan.DefaultPort)
	}
	c := startPool(t, fastConfig("c"))
	_, err := c.Join(t.Context(), []string{"127.0.0.1"})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(lan.DefaultPort)) {
		t.Errorf("Join(%q) without JoinPort = %v, want an error naming port %d", "127.0.0.1", err, lan.DefaultPort)
	}
}

// portFree reports whether nothing listens on 127.0.0.1:port (TCP).
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// errNoBlue is what the test's Merge refuses with.
var errNoBlue = errors.New("not blue")

// blueOnly is a Merge that refuses members without tag color=blue and
// counts refusals per member name.
type blueOnly struct {
	mu      sync.Mutex
	refused map[string]int
}

func (b *blueOnly) merge(ms []lan.Member) error {
	for _, m := range ms {
		if m.Tags["color"] != "blue" {
			b.mu.Lock()
			b.refused[m.Name]++
			b.mu.Unlock()
			return fmt.Errorf("member %q is %q: %w", m.Name, m.Tags["color"], errNoBlue)
		}
	}
	return nil
}

func (b *blueOnly) count(name string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refused[name]
}

func TestMerge(t *testing.T) {
	t.Parallel()
	guard := &blueOnly{refused: make(map[string]int)}
	colored := func(color string) func(*lan.Config) {
		return func(c *lan.Config) {
			c.Tags = map[string]string{"color": color}
			c.Merge = guard.merge
		}
	}
	pools := startCluster(t, colored("blue"), "a", "b")

	t.Run("refused by the joiner", func(t *testing.T) {
		// red accepts anyone; a and b refuse red. a joining red fails.
		red := startPool(t, fastConfig("red"))
		n, err := pools[0].Join(t.Context(), []string{red.HostPort})
		if n != 0 || !errors.Is(err, errNoBlue) {
			t.Fatalf("Join(red) = %d, %v, want 0 and the Merge error", n, err)
		}
		want := "join " + red.HostPort + `: members refused: member "red" is "": not blue`
		if err.Error() != want {
			t.Errorf("Join(red) = %q, want %q", err, want)
		}
		if _, ok := pools[0].Member("red"); ok {
			t.Errorf("a: Members() has red after refusing it")
		}
	})
	t.Run("refused by the joined", func(t *testing.T) {
		// green accepts anyone and joins b: its Join succeeds (b answers
		// before it merges), but a and b never list green, even after
		// green's gossip and push/pulls (the Alive hook) reached them.
		green := startPool(t, fastConfig("green"))
		if n, err := green.Join(t.Context(), []string{pools[1].HostPort}); n != 1 || err != nil {
			t.Fatalf("green: Join(b) = %d, %v, want 1, nil", n, err)
		}
		green.WaitStatus(t, "a", lan.StatusAlive, 5*time.Second)
		wait.Eventually(t, 10*time.Second, func() error {
			if n := guard.count("green"); n < 5 {
				return fmt.Errorf("Merge refused green %d times, want >= 5", n)
			}
			return nil
		})
		for _, p := range pools {
			if _, ok := p.Member("green"); ok {
				t.Errorf("%s: Members() has green, which Merge refuses", p.Name)
			}
		}
	})
	t.Run("refuses itself", func(t *testing.T) {
		cfg := fastConfig("red")
		colored("red")(&cfg)
		p, err := lan.New(cfg)
		if err == nil {
			p.Shutdown()
			t.Fatalf("New() with a Merge refusing the member itself = nil error")
		}
		want := `lan config: merge refuses this member "red": member "red" is "red": not blue`
		if err.Error() != want || !errors.Is(err, errNoBlue) {
			t.Errorf("New() = %q, want %q wrapping the Merge error", err, want)
		}
	})
}
