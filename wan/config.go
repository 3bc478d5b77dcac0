package wan

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meridian/meridian/lan"
)

// DefaultPort is the WAN gossip port (TCP and UDP), used when BindPort is
// left at its default and when a Join address has no port.
const DefaultPort = 8302

// Label is the gossip label of the WAN pool. Every packet and stream carries
// it and members drop gossip with another label, so a WAN Join aimed at a
// LAN gossip port (labelled lan.Label) fails with lan.ErrLabelMismatch
// instead of merging the two pools.
const Label = "meridian-wan"

// The tags that make a member a server of a datacenter. They are copies of
// server.TagRole, server.RoleServer and server.TagDatacenter
// (server/tags.go): server imports wan, so wan cannot import server. Consul
// gives its WAN members the same tags. A change to one side must be made to
// the other.
const (
	tagRole       = "role"
	roleServer    = "consul"
	tagDatacenter = "dc"
)

// validDatacenter is what a datacenter name may hold: Consul's rule.
var validDatacenter = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Config configures a Pool. Build one with DefaultConfig and change what you
// need; New copies it, so the caller may reuse or change it afterwards.
type Config struct {
	// Node is this server's node name, the one it has in its datacenter's
	// LAN pool. It may contain '.' (a host's FQDN): SplitName splits a WAN
	// name at its last dot, and datacenter names hold none. Default: the
	// host name up to its first dot.
	Node string

	// Datacenter is this server's datacenter, e.g. "dc1": letters, digits,
	// '_' and '-'. The member's name in the WAN pool is Node + "." +
	// Datacenter, and its tags say role "consul" and dc Datacenter. Default
	// "dc1".
	Datacenter string

	// BindAddr is the IP address to listen on for WAN gossip (TCP and UDP).
	// Default "0.0.0.0".
	BindAddr string

	// BindPort is the port to listen on. 0 picks a free port (read it back
	// with Pool.Addr). Default 8302.
	BindPort int

	// AdvertiseAddr is the IP address servers of other datacenters use to
	// reach this one. "" means BindAddr, or a private address of this host
	// when BindAddr is 0.0.0.0.
	AdvertiseAddr string

	// AdvertisePort is the port servers of other datacenters use to reach
	// this one. 0 means the bound port.
	AdvertisePort int

	// Tags are more key/value metadata gossiped with this member, e.g. the
	// server's RPC port. New adds role "consul" and dc Datacenter; Tags may
	// hold them only with those values. Copied by New. Encoded, all tags
	// must fit in 512 bytes.
	Tags map[string]string

	// EncryptKey is the gossip encryption key (AES-GCM): 16, 24 or 32 bytes.
	// nil disables encryption. Every server of every datacenter needs the
	// same key.
	EncryptKey []byte

	// KeyringFile, EncryptAcceptPlain and EncryptSendPlain: as in
	// lan.Config.
	KeyringFile                          string
	EncryptAcceptPlain, EncryptSendPlain bool

	// ReconnectTimeout is how long a failed server is kept (and retried)
	// before it is reaped from the member list. Default 72h (Consul's
	// reconnect_timeout_wan): a datacenter cut off for a weekend comes back
	// by itself.
	ReconnectTimeout time.Duration

	// TombstoneTimeout is how long a server that left is kept before it is
	// reaped. Default 24h.
	TombstoneTimeout time.Duration

	// SnapshotPath is the file where serf records the known servers and its
	// clocks ("" disables it; its directory must exist). With it, a
	// restarted server rejoins the WAN pool without an explicit Join.
	SnapshotPath string

	// RejoinAfterLeave makes a restarted server rejoin from the snapshot
	// even if it left gracefully before.
	RejoinAfterLeave bool

	// EventCh receives membership events, in order; nil means no events.
	// The reader must keep draining it until Shutdown returns (see
	// lan.Config.EventCh).
	EventCh chan<- Event

	// Logger receives the pool's log lines, serf's and memberlist's
	// included. nil discards them.
	Logger *slog.Logger

	// Timings are the failure detector and gossip timings. Default
	// DefaultTimings; tests use FastTimings.
	Timings Timings

	// Links are the other datacenters this one gossips with directly
	// (federation.links): only servers of these datacenters, and of this
	// one, are admitted to the pool, so a datacenter that is not linked is
	// never probed by this server and never marked failed by it; requests
	// for it go through a linked datacenter. Empty learns the links: a
	// server of a datacenter not linked yet is admitted once it answers a
	// direct probe (a gossip ping to its advertised WAN address), so where
	// every datacenter reaches every other the pool is the full mesh it
	// always was. This server's own datacenter is always linked and may
	// not be named. Copied by New.
	Links []string

	// LinkProbeInterval is how long, with learned links, the servers of an
	// unlinked datacenter wait at most to be probed again after they did
	// not answer (when gossip still mentions them): 1s after the first
	// unanswered probe, doubling up to this. Default 30s.
	LinkProbeInterval time.Duration

	// LinkWarnAfter is how long a datacenter named in Links may have no
	// server in the pool before a warning names it (in the log and in
	// Stats' links_missing). Default 1m.
	LinkWarnAfter time.Duration

	// WrapTransport is lan.Config.WrapTransport: a test seam, nil unless
	// a test routes WAN gossip through internal/testcluster's bridge.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// DefaultTimings returns the WAN timings: lan.DefaultTimings with what a
// pool spanning datacenters needs changed, as memberlist's DefaultWANConfig
// starts from its DefaultLANConfig. What they give:
//
//   - A server killed without leaving is declared failed in about 6s in a
//     pool of up to 10 servers (probe turn ~1s, probe 1s, 4s of suspicion),
//     7s with 30 servers, and every server knows within another second.
//     Consul's WAN defaults take 30s and more.
//   - After a partition heals, each side reconnects to the other within
//     ReconnectInterval (3s), plus up to TCPTimeout (5s) when the attempt in
//     flight as it healed was dialling into the void: under 10s.
//
// Their cost: each server sends one probe a second and one gossip packet to
// 4 servers every 500ms, syncs the whole member list (a few KB) with one
// server every 15s and, while servers are failed, tries one of them every
// 3s.
func DefaultTimings() Timings {
	t := lan.DefaultTimings()
	// Real WAN round trips reach 150-300ms between continents. 500ms
	// clears that with room for jitter, and Lifeguard stretches it on a
	// server that is itself slow; memberlist's 3s (and 5s interval) is why
	// Consul is slow to see a dead server.
	t.ProbeTimeout = 500 * time.Millisecond
	// The rest of the interval is for indirect probes through two WAN
	// hops and the TCP fallback. SuspicionMult stays 4: 4s (not 2s) for
	// a suspected server to hear of it across the WAN and refute.
	t.ProbeInterval = 1 * time.Second
	// Fewer, fuller gossip packets across datacenters, to one more server
	// each: news still reaches 30 servers within about three rounds (memberlist's
	// WAN values).
	t.GossipInterval = 500 * time.Millisecond
	t.GossipNodes = 4
	// A server cut off by a partition keeps hearing of its "death" for a
	// minute, so that a short partition heals by refutation alone.
	t.GossipToTheDeadTime = 60 * time.Second
	// The member list is a few servers per datacenter: a full sync every
	// 15s is cheap and repairs missed gossip sooner than LAN's 30s.
	t.PushPullInterval = 15 * time.Second
	// A join or sync over the WAN takes a few round trips. 5s is ample,
	// and it bounds how long a reconnect attempt dialling a partitioned
	// server blocks the next one.
	t.TCPTimeout = 5 * time.Second
	// Retry a failed server every 3s (LAN: 30s): a healed partition is
	// mended within seconds, not half a minute.
	t.ReconnectInterval = 3 * time.Second
	// A leave has to cross the WAN: stay up for about four gossip rounds
	// so that others record "left", not "failed".
	t.LeavePropagateDelay = 2 * time.Second
	return t
}

// FastTimings returns timings for tests of WAN pools on loopback, where a WAN
// pool is a LAN pool: lan.FastTimings. A killed server is declared failed in
// about a second and failed servers are retried every 500ms. Not for real
// networks.
func FastTimings() Timings {
	return lan.FastTimings()
}

// DefaultConfig returns a Config for a server of datacenter "dc1" named
// after the host (up to its first dot), bound to 0.0.0.0:8302, with
// Consul's WAN reconnect (72h) and tombstone (24h) timeouts and
// DefaultTimings.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	return Config{
		Node:              host,
		Datacenter:        "dc1",
		BindAddr:          "0.0.0.0",
		BindPort:          DefaultPort,
		ReconnectTimeout:  72 * time.Hour,
		TombstoneTimeout:  24 * time.Hour,
		Timings:           DefaultTimings(),
		LinkProbeInterval: 30 * time.Second,
		LinkWarnAfter:     time.Minute,
	}
}

// Validate reports the first problem with c, naming the field.
func (c Config) Validate() error {
	switch {
	case c.Node == "":
		return errors.New("node name is empty")
	case c.Datacenter == "":
		return errors.New("datacenter is empty")
	case !validDatacenter.MatchString(c.Datacenter):
		return fmt.Errorf("datacenter %q may hold only letters, digits, '_' and '-'", c.Datacenter)
	}
	if err := c.validateLinks(); err != nil {
		return err
	}
	for _, t := range []struct{ key, want string }{{tagRole, roleServer}, {tagDatacenter, c.Datacenter}} {
		if v, ok := c.Tags[t.key]; ok && v != t.want {
			return fmt.Errorf("tag %s=%q: a WAN member's %s is %q", t.key, v, t.key, t.want)
		}
	}
	return c.lanConfig().Validate()
}

// validateLinks checks Links and the durations that go with them.
func (c Config) validateLinks() error {
	seen := make(map[string]bool, len(c.Links))
	for _, dc := range c.Links {
		switch {
		case !validDatacenter.MatchString(dc):
			return fmt.Errorf("links: datacenter %q may hold only letters, digits, '_' and '-'", dc)
		case dc == c.Datacenter:
			return fmt.Errorf("links: %q is this server's own datacenter, which is always linked; remove it", dc)
		case seen[dc]:
			return fmt.Errorf("links: %q is named twice; name each datacenter once", dc)
		}
		seen[dc] = true
	}
	if c.LinkProbeInterval <= 0 {
		return fmt.Errorf("link probe interval %v is not positive", c.LinkProbeInterval)
	}
	if c.LinkWarnAfter <= 0 {
		return fmt.Errorf("link warn after %v is not positive", c.LinkWarnAfter)
	}
	return nil
}

// Name returns the member name c gives: Node + "." + Datacenter.
func (c Config) Name() string {
	return c.Node + "." + c.Datacenter
}

// lanConfig is the lan.Config of the pool c describes.
func (c Config) lanConfig() lan.Config {
	tags := make(map[string]string, len(c.Tags)+2)
	for k, v := range c.Tags {
		tags[k] = v
	}
	tags[tagRole] = roleServer
	tags[tagDatacenter] = c.Datacenter
	return lan.Config{
		NodeName:           c.Name(),
		BindAddr:           c.BindAddr,
		BindPort:           c.BindPort,
		AdvertiseAddr:      c.AdvertiseAddr,
		AdvertisePort:      c.AdvertisePort,
		JoinPort:           DefaultPort,
		Label:              Label,
		Tags:               tags,
		EncryptKey:         c.EncryptKey,
		KeyringFile:        c.KeyringFile,
		EncryptAcceptPlain: c.EncryptAcceptPlain,
		EncryptSendPlain:   c.EncryptSendPlain,
		ReconnectTimeout:   c.ReconnectTimeout,
		TombstoneTimeout:   c.TombstoneTimeout,
		SnapshotPath:       c.SnapshotPath,
		RejoinAfterLeave:   c.RejoinAfterLeave,
		EventCh:            c.EventCh,
		Logger:             c.Logger,
		Timings:            c.Timings,
		WrapTransport:      c.WrapTransport,
	}
}
