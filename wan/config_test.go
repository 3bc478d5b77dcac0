package wan_test

import (
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/gossiptest"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/wan"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mod     func(*wan.Config)
		wantErr string // "" = valid
	}{
		{"default", func(c *wan.Config) {}, ""},
		{"fast", func(c *wan.Config) { c.Timings = wan.FastTimings() }, ""},
		{"server tags", func(c *wan.Config) { c.Tags = map[string]string{"role": "consul", "dc": "dc1", "port": "8300"} }, ""},
		{"no node", func(c *wan.Config) { c.Node = "" }, "node name is empty"},
		{"dotted node", func(c *wan.Config) { c.Node = "s1.example" }, ""},
		{"no dc", func(c *wan.Config) { c.Datacenter = "" }, "datacenter is empty"},
		{"dotted dc", func(c *wan.Config) { c.Datacenter = "eu.west" }, `datacenter "eu.west" may hold only letters, digits, '_' and '-'`},
		{"spaced dc", func(c *wan.Config) { c.Datacenter = "dc 1" }, `datacenter "dc 1" may hold only`},
		{"client role", func(c *wan.Config) { c.Tags = map[string]string{"role": "node"} }, `tag role="node": a WAN member's role is "consul"`},
		{"other dc tag", func(c *wan.Config) { c.Tags = map[string]string{"dc": "dc2"} }, `tag dc="dc2": a WAN member's dc is "dc1"`},
		{"links", func(c *wan.Config) { c.Links = []string{"dc2", "dc3"} }, ""},
		{"link to itself", func(c *wan.Config) { c.Links = []string{"dc2", "dc1"} }, `links: "dc1" is this server's own datacenter, which is always linked; remove it`},
		{"link twice", func(c *wan.Config) { c.Links = []string{"dc2", "dc2"} }, `links: "dc2" is named twice; name each datacenter once`},
		{"link not a name", func(c *wan.Config) { c.Links = []string{"10.0.0.1:8302"} }, `links: datacenter "10.0.0.1:8302" may hold only letters, digits, '_' and '-'`},
		{"link probe interval", func(c *wan.Config) { c.LinkProbeInterval = 0 }, "link probe interval 0s is not positive"},
		{"link warn after", func(c *wan.Config) { c.LinkWarnAfter = -time.Second }, "link warn after -1s is not positive"},
		{"long name", func(c *wan.Config) { c.Node = strings.Repeat("x", 125) }, "longer than 128"},
		{"bind", func(c *wan.Config) { c.BindAddr = "localhost" }, `bind address "localhost" is not an IP address`},
		{"key", func(c *wan.Config) { c.EncryptKey = make([]byte, 15) }, "encrypt key is 15 bytes"},
		{"reconnect", func(c *wan.Config) { c.ReconnectTimeout = 0 }, "reconnect timeout 0s is not positive"},
		{"timings", func(c *wan.Config) { c.Timings.ProbeTimeout = 2 * time.Second }, "timings: probe timeout 2s is not below probe interval 1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := wan.DefaultConfig()
			cfg.Node = "s1"
			tc.mod(&cfg)
			gossiptest.CheckValidate(t, cfg.Validate(), tc.wantErr)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	c := wan.DefaultConfig()
	if c.BindPort != 8302 || c.Datacenter != "dc1" || c.ReconnectTimeout != 72*time.Hour || c.TombstoneTimeout != 24*time.Hour {
		t.Errorf("DefaultConfig() = port %d, dc %q, reconnect %v, tombstone %v, want 8302, dc1, 72h, 24h",
			c.BindPort, c.Datacenter, c.ReconnectTimeout, c.TombstoneTimeout)
	}
	if strings.Contains(c.Node, ".") {
		t.Errorf("DefaultConfig().Node = %q, want the host name without its domain", c.Node)
	}
	if c.Links != nil || c.LinkProbeInterval != 30*time.Second || c.LinkWarnAfter != time.Minute {
		t.Errorf("DefaultConfig() = links %q, probe interval %v, warn after %v, want learned, 30s, 1m", c.Links, c.LinkProbeInterval, c.LinkWarnAfter)
	}
	if c.Timings != wan.DefaultTimings() {
		t.Errorf("DefaultConfig().Timings = %+v, want DefaultTimings()", c.Timings)
	}
	if got := (wan.Config{Node: "s1", Datacenter: "dc2"}).Name(); got != "s1.dc2" {
		t.Errorf("Config{s1, dc2}.Name() = %q, want %q", got, "s1.dc2")
	}
	if wan.Label == lan.Label {
		t.Errorf("wan.Label = lan.Label = %q, want them to differ", wan.Label)
	}
}

// TestDefaultTimings checks the WAN timings against the goals they were
// chosen for (see DefaultTimings).
func TestDefaultTimings(t *testing.T) {
	t.Parallel()
	w, l := wan.DefaultTimings(), lan.DefaultTimings()
	if err := w.Validate(); err != nil {
		t.Fatalf("DefaultTimings().Validate() = %v, want nil", err)
	}
	// Failure seen within about 6s in a pool of 10: a probe turn, a
	// probe, the suspicion.
	detect := 2*w.ProbeInterval + time.Duration(w.SuspicionMult)*w.ProbeInterval
	if detect > 8*time.Second {
		t.Errorf("failure detection estimate %v, want <= 8s", detect)
	}
	// A partition mended within 10s: the next reconnect attempt, after one
	// that may be dialling into the void.
	if mend := w.ReconnectInterval + w.TCPTimeout; mend > 10*time.Second {
		t.Errorf("reconnect after a partition up to %v (ReconnectInterval + TCPTimeout), want <= 10s", mend)
	}
	// Probes tolerant of real WAN round trips (up to ~300ms).
	if w.ProbeTimeout < 400*time.Millisecond {
		t.Errorf("ProbeTimeout = %v, want >= 400ms for WAN round trips", w.ProbeTimeout)
	}
	if w.PushPullInterval > l.PushPullInterval {
		t.Errorf("PushPullInterval = %v, want no longer than LAN's %v", w.PushPullInterval, l.PushPullInterval)
	}
	if err := wan.FastTimings().Validate(); err != nil {
		t.Errorf("FastTimings().Validate() = %v, want nil", err)
	}
}

func TestSplitName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, node, dc string
		ok             bool
	}{
		{"s1.dc1", "s1", "dc1", true},
		{"web-1.eu-west_2", "web-1", "eu-west_2", true},
		{"s1.example.com.dc1", "s1.example.com", "dc1", true},
		{"s1", "", "", false},
		{".dc1", "", "", false},
		{"s1.", "", "", false},
		{"", "", "", false},
	}
	for _, tc := range tests {
		node, dc, ok := wan.SplitName(tc.name)
		if node != tc.node || dc != tc.dc || ok != tc.ok {
			t.Errorf("SplitName(%q) = %q, %q, %v, want %q, %q, %v", tc.name, node, dc, ok, tc.node, tc.dc, tc.ok)
		}
	}
}
