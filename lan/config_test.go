package lan_test

import (
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/gossiptest"
	"github.com/meridian/meridian/lan"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mod     func(*lan.Config)
		wantErr string // "" = valid
	}{
		{"default", func(c *lan.Config) {}, ""},
		{"fast", func(c *lan.Config) { c.Timings = lan.FastTimings() }, ""},
		{"24-byte key", func(c *lan.Config) { c.EncryptKey = make([]byte, 24) }, ""},
		{"no name", func(c *lan.Config) { c.NodeName = "" }, "node name is empty"},
		{"long name", func(c *lan.Config) { c.NodeName = strings.Repeat("x", 129) }, "longer than 128"},
		{"bind host name", func(c *lan.Config) { c.BindAddr = "localhost" }, `bind address "localhost" is not an IP address`},
		{"bind port", func(c *lan.Config) { c.BindPort = 70000 }, "bind port 70000 is out of range"},
		{"advertise", func(c *lan.Config) { c.AdvertiseAddr = "10.0.0" }, `advertise address "10.0.0" is not an IP address`},
		{"advertise port", func(c *lan.Config) { c.AdvertisePort = -1 }, "advertise port -1 is out of range"},
		{"join port", func(c *lan.Config) { c.JoinPort = 65536 }, "join port 65536 is out of range"},
		{"no label", func(c *lan.Config) { c.Label = "" }, ""},
		{"long label", func(c *lan.Config) { c.Label = strings.Repeat("l", 256) }, "label is 256 bytes, longer than 255"},
		{"key 15", func(c *lan.Config) { c.EncryptKey = make([]byte, 15) }, "encrypt key is 15 bytes, want 16, 24 or 32"},
		{"empty key", func(c *lan.Config) { c.EncryptKey = []byte{} }, "encrypt key is 0 bytes"},
		{"reconnect", func(c *lan.Config) { c.ReconnectTimeout = 0 }, "reconnect timeout 0s is not positive"},
		{"tombstone", func(c *lan.Config) { c.TombstoneTimeout = -time.Second }, "tombstone timeout -1s is not positive"},
		{"probe timeout", func(c *lan.Config) { c.Timings.ProbeTimeout = c.Timings.ProbeInterval }, "timings: probe timeout 500ms is not below probe interval 500ms"},
		{"probe interval", func(c *lan.Config) { c.Timings.ProbeInterval = 0 }, "timings: probe interval 0s is not positive"},
		{"suspicion", func(c *lan.Config) { c.Timings.SuspicionMult = 0 }, "timings: suspicion multiplier 0 is below 1"},
		{"reclaim", func(c *lan.Config) { c.Timings.DeadNodeReclaimTime = -1 }, "timings: dead node reclaim time -1ns is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := lan.DefaultConfig()
			cfg.NodeName = "node"
			tc.mod(&cfg)
			gossiptest.CheckValidate(t, cfg.Validate(), tc.wantErr)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	c := lan.DefaultConfig()
	if c.BindPort != 8301 || c.ReconnectTimeout != 72*time.Hour || c.TombstoneTimeout != 24*time.Hour {
		t.Errorf("DefaultConfig() = port %d, reconnect %v, tombstone %v, want 8301, 72h, 24h",
			c.BindPort, c.ReconnectTimeout, c.TombstoneTimeout)
	}
	if c.Label != "meridian-lan" || c.JoinPort != 0 || c.Merge != nil {
		t.Errorf("DefaultConfig() = label %q, join port %d, merge set %v, want %q, 0, false",
			c.Label, c.JoinPort, c.Merge != nil, "meridian-lan")
	}
}

func TestEventTypeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ  lan.EventType
		want string
	}{
		{lan.MemberJoin, "member-join"},
		{lan.MemberLeave, "member-leave"},
		{lan.MemberFailed, "member-failed"},
		{lan.MemberUpdate, "member-update"},
		{lan.MemberReap, "member-reap"},
		{lan.User, "user"},
		{lan.NameConflict, "name-conflict"},
		{lan.EventType(99), "EventType(99)"},
	}
	for _, tc := range tests {
		if got := tc.typ.String(); got != tc.want {
			t.Errorf("EventType(%d).String() = %q, want %q", int(tc.typ), got, tc.want)
		}
	}
}
