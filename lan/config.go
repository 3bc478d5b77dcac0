package lan

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultPort is the LAN gossip port (TCP and UDP), used when BindPort is
// left at its default and when a Join address has no port.
const DefaultPort = 8301

// Label is the gossip label DefaultConfig gives a LAN pool. Every packet and
// stream of the pool carries it, and members drop whatever carries another
// label (or none), so a LAN pool and a WAN pool ("meridian-wan") never merge
// even when one is given the other's address.
const Label = "meridian-lan"

// maxNodeNameLen is serf's limit on node names, in bytes.
const maxNodeNameLen = 128

// maxLabelLen is memberlist's limit on labels, in bytes.
const maxLabelLen = 255

// Config configures a Pool. Build one with DefaultConfig and change what you
// need; New copies it, so the caller may reuse or change it afterwards.
type Config struct {
	// NodeName is this member's name, unique in the datacenter. Default: the
	// host name.
	NodeName string

	// BindAddr is the IP address to listen on for gossip (TCP and UDP), e.g.
	// "127.0.0.1" or "0.0.0.0". Default "0.0.0.0".
	BindAddr string

	// BindPort is the port to listen on. 0 picks a free port (read it back
	// with Pool.Addr). Default 8301.
	BindPort int

	// AdvertiseAddr is the IP address other members use to reach this one.
	// "" means BindAddr, or a private address of this host when BindAddr is
	// 0.0.0.0.
	AdvertiseAddr string

	// AdvertisePort is the port other members use to reach this one. 0 means
	// the bound port.
	AdvertisePort int

	// JoinPort is the port Join adds to addresses given without one. 0 means
	// DefaultPort (8301); the WAN pool uses 8302.
	JoinPort int

	// Label is the gossip label (memberlist's Label), at most 255 bytes.
	// Every packet and stream this member sends carries it, and packets and
	// streams with another label, or none, are dropped, so that pools of
	// different kinds never merge: a Join aimed at a pool with another label
	// fails with ErrLabelMismatch. With encryption, the label is also
	// authenticated. All members of a pool need the same label. Default
	// (DefaultConfig) Label, "meridian-lan"; "" sends no label and accepts
	// only unlabelled gossip, as pools did before labels existed.
	Label string

	// Merge, if not nil, vets members before they join this pool's member
	// list: the members of a pool met on Join (on either side of it) and each
	// member announced by gossip later (serf's MergeDelegate, on memberlist's
	// Merge and Alive hooks). A non-nil error refuses them: the Join fails
	// with that error, and gossip about a refused member is ignored. The
	// members passed have Status StatusNone (or StatusLeft) and are the
	// caller's to keep. Merge also sees this member itself: New first offers
	// it this member's name and tags and fails if Merge refuses them. Merge
	// is called with memberlist's locks held, so it must be quick and must
	// not call the Pool, and it may be called from several goroutines at
	// once.
	Merge func(members []Member) error

	// Tags are this member's key/value metadata, gossiped to every member.
	// Copied by New. Encoded, they must fit in 512 bytes.
	Tags map[string]string

	// EncryptKey is the gossip encryption key (AES-GCM): 16, 24 or 32 bytes.
	// nil disables encryption. All members of a pool need the same key.
	EncryptKey []byte

	// KeyringFile, with EncryptKey, is the file serf keeps the keyring in
	// (a JSON list of base64 keys, the primary first), rewritten on every
	// InstallKey, UseKey and RemoveKey. When it exists at New, its keys are
	// used and EncryptKey is not (it holds the rotations made since);
	// when not, it is created with EncryptKey. "" keeps the keyring in
	// memory only.
	KeyringFile string

	// EncryptAcceptPlain accepts unencrypted gossip as well as encrypted
	// (Consul's encrypt_verify_incoming = false) and EncryptSendPlain
	// sends in the clear (encrypt_verify_outgoing = false): the two steps
	// of turning encryption on in a running pool without a partition.
	EncryptAcceptPlain, EncryptSendPlain bool

	// ReconnectTimeout is how long a failed member is kept (and retried)
	// before it is reaped from the member list. Default 72h.
	ReconnectTimeout time.Duration

	// TombstoneTimeout is how long a member that left is kept before it is
	// reaped. Default 24h.
	TombstoneTimeout time.Duration

	// SnapshotPath is the file where serf records known members and its
	// clocks. "" disables it. With a snapshot, a restarted pool rejoins the
	// members it knew without an explicit Join. Its directory must exist.
	SnapshotPath string

	// RejoinAfterLeave makes a restarted pool rejoin from the snapshot even
	// if it left gracefully before. When false, a Leave clears the snapshot
	// and the pool waits for an explicit Join.
	RejoinAfterLeave bool

	// EventCh receives membership events, in order. nil means no events.
	// The pool buffers up to 8192 events for a slow reader; beyond that,
	// gossip processing stalls (or, with a snapshot, serf drops events), so
	// the reader must keep draining the channel until Shutdown returns.
	EventCh chan<- Event

	// Logger receives serf's and memberlist's log lines: DEBUG and INFO at
	// debug level, WARN at warn, ERR at error. nil discards them.
	Logger *slog.Logger

	// Timings are the failure detector and gossip timings. Default
	// DefaultTimings (LAN); tests use FastTimings.
	Timings Timings

	// WrapTransport, when set, wraps memberlist's network transport (UDP
	// and TCP on BindAddr:BindPort) before the pool uses it. A test seam:
	// internal/testcluster drops, delays and cuts gossip per pair of
	// agents with it. Nil leaves memberlist its own transport.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// Timings are the knobs of the failure detector, gossip and the background
// tasks of serf. They are what differs between a LAN pool, a WAN pool and a
// test pool.
//
// A killed member is declared failed by the member that probed it after
// about ProbeInterval (waiting for its turn to be probed, which grows with
// the pool size) + ProbeInterval (probe and indirect probes) +
// SuspicionMult * max(1, log10(members)) * ProbeInterval (suspicion, to let
// it refute); the news then spreads within a few GossipIntervals.
type Timings struct {
	// ProbeInterval is the time between failure-detector probes sent by each
	// member, to one other member each time.
	ProbeInterval time.Duration

	// ProbeTimeout is how long to wait for the ack of a direct probe before
	// asking other members to probe indirectly. It should exceed the 99th
	// percentile round-trip time and be below ProbeInterval.
	ProbeTimeout time.Duration

	// SuspicionMult multiplies ProbeInterval (and log10 of the pool size)
	// to give the minimum time a suspected member has to refute before it
	// is declared failed. At least 1.
	SuspicionMult int

	// SuspicionMaxTimeoutMult multiplies the minimum suspicion time to give
	// the time allowed when no other member confirms the suspicion. At
	// least 1.
	SuspicionMaxTimeoutMult int

	// GossipInterval is the time between gossip rounds; each round sends
	// queued broadcasts to GossipNodes random members over UDP.
	GossipInterval time.Duration

	// GossipNodes is how many members each gossip round goes to.
	GossipNodes int

	// GossipToTheDeadTime is how long a failed member keeps receiving gossip,
	// so that it can refute its death.
	GossipToTheDeadTime time.Duration

	// PushPullInterval is the time between full state syncs (TCP) with a
	// random member. It repairs whatever gossip missed.
	PushPullInterval time.Duration

	// TCPTimeout bounds one TCP exchange: a join attempt to one address, a
	// push/pull sync, a TCP fallback probe.
	TCPTimeout time.Duration

	// RetransmitMult: each broadcast is retransmitted
	// RetransmitMult * log(N+1) times.
	RetransmitMult int

	// ReapInterval is the time between reaper runs, which drop failed and
	// left members past ReconnectTimeout and TombstoneTimeout.
	ReapInterval time.Duration

	// ReconnectInterval is the time between attempts to reconnect to a
	// failed member.
	ReconnectInterval time.Duration

	// BroadcastTimeout bounds the wait for a leave, force-leave or tag
	// update message to be sent out.
	BroadcastTimeout time.Duration

	// LeavePropagateDelay is how long Leave stays up after its leave message
	// went out, answering probes while the news spreads.
	LeavePropagateDelay time.Duration

	// DeadNodeReclaimTime is how long a failed member's name stays bound to
	// its address; after that, a member with the same name at another
	// address (a restart with a new IP) takes it over. 0 never allows it.
	DeadNodeReclaimTime time.Duration
}

// DefaultTimings returns the LAN timings. A member killed without leaving is
// declared failed in about 3s in a pool of 3 to 10 members (Consul's default
// takes about 6.4s): probes every 500ms with a 250ms ack timeout, and 2s of
// suspicion. Probing costs one small UDP packet per member every 500ms.
func DefaultTimings() Timings {
	return Timings{
		ProbeInterval:           500 * time.Millisecond,
		ProbeTimeout:            250 * time.Millisecond,
		SuspicionMult:           4,
		SuspicionMaxTimeoutMult: 6,
		GossipInterval:          200 * time.Millisecond,
		GossipNodes:             3,
		GossipToTheDeadTime:     30 * time.Second,
		PushPullInterval:        30 * time.Second,
		TCPTimeout:              10 * time.Second,
		RetransmitMult:          4,
		ReapInterval:            15 * time.Second,
		ReconnectInterval:       30 * time.Second,
		BroadcastTimeout:        5 * time.Second,
		LeavePropagateDelay:     1 * time.Second,
		DeadNodeReclaimTime:     30 * time.Second,
	}
}

// FastTimings returns DefaultTimings sped up for tests on loopback: a killed
// member is declared failed in about one second, reaping and reconnecting run
// every few hundred milliseconds. Not for real networks: a member stalled for
// half a second (GC, a busy CI machine) may be declared failed, then refute.
func FastTimings() Timings {
	t := DefaultTimings()
	t.ProbeInterval = 200 * time.Millisecond // 5 probes a second
	t.ProbeTimeout = 100 * time.Millisecond  // loopback round trips are microseconds
	t.SuspicionMult = 2                      // 400ms of suspicion for up to 10 members
	t.GossipInterval = 50 * time.Millisecond
	t.GossipToTheDeadTime = 2 * time.Second
	t.PushPullInterval = 1 * time.Second
	t.TCPTimeout = 2 * time.Second
	t.ReapInterval = 100 * time.Millisecond
	t.ReconnectInterval = 500 * time.Millisecond
	t.BroadcastTimeout = 2 * time.Second
	t.LeavePropagateDelay = 100 * time.Millisecond
	t.DeadNodeReclaimTime = 500 * time.Millisecond
	return t
}

// DefaultConfig returns a Config for a LAN pool member named after the host,
// bound to 0.0.0.0:8301, labelled Label ("meridian-lan"), with Consul's
// reconnect (72h) and tombstone (24h) timeouts and DefaultTimings.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName:         host,
		BindAddr:         "0.0.0.0",
		BindPort:         DefaultPort,
		Label:            Label,
		ReconnectTimeout: 72 * time.Hour,
		TombstoneTimeout: 24 * time.Hour,
		Timings:          DefaultTimings(),
	}
}

// Validate reports the first problem with c, naming the field.
func (c Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("node name is empty")
	case len(c.NodeName) > maxNodeNameLen:
		return fmt.Errorf("node name %q is %d bytes, longer than %d", c.NodeName, len(c.NodeName), maxNodeNameLen)
	case net.ParseIP(c.BindAddr) == nil:
		return fmt.Errorf("bind address %q is not an IP address", c.BindAddr)
	case c.BindPort < 0 || c.BindPort > 65535:
		return fmt.Errorf("bind port %d is out of range 0-65535", c.BindPort)
	case c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil:
		return fmt.Errorf("advertise address %q is not an IP address", c.AdvertiseAddr)
	case c.AdvertisePort < 0 || c.AdvertisePort > 65535:
		return fmt.Errorf("advertise port %d is out of range 0-65535", c.AdvertisePort)
	case c.JoinPort < 0 || c.JoinPort > 65535:
		return fmt.Errorf("join port %d is out of range 0-65535", c.JoinPort)
	case len(c.Label) > maxLabelLen:
		return fmt.Errorf("label is %d bytes, longer than %d", len(c.Label), maxLabelLen)
	case c.EncryptKey != nil && len(c.EncryptKey) != 16 && len(c.EncryptKey) != 24 && len(c.EncryptKey) != 32:
		return fmt.Errorf("encrypt key is %d bytes, want 16, 24 or 32", len(c.EncryptKey))
	case c.ReconnectTimeout <= 0:
		return fmt.Errorf("reconnect timeout %v is not positive", c.ReconnectTimeout)
	case c.TombstoneTimeout <= 0:
		return fmt.Errorf("tombstone timeout %v is not positive", c.TombstoneTimeout)
	}
	if err := c.Timings.Validate(); err != nil {
		return fmt.Errorf("timings: %w", err)
	}
	return nil
}

// Validate reports the first timing that is out of range.
func (t Timings) Validate() error {
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"probe interval", t.ProbeInterval},
		{"probe timeout", t.ProbeTimeout},
		{"gossip interval", t.GossipInterval},
		{"gossip to the dead time", t.GossipToTheDeadTime},
		{"push/pull interval", t.PushPullInterval},
		{"tcp timeout", t.TCPTimeout},
		{"reap interval", t.ReapInterval},
		{"reconnect interval", t.ReconnectInterval},
		{"broadcast timeout", t.BroadcastTimeout},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return fmt.Errorf("%s %v is not positive", d.name, d.d)
		}
	}
	switch {
	case t.ProbeTimeout >= t.ProbeInterval:
		return fmt.Errorf("probe timeout %v is not below probe interval %v", t.ProbeTimeout, t.ProbeInterval)
	case t.SuspicionMult < 1:
		return fmt.Errorf("suspicion multiplier %d is below 1", t.SuspicionMult)
	case t.SuspicionMaxTimeoutMult < 1:
		return fmt.Errorf("suspicion max timeout multiplier %d is below 1", t.SuspicionMaxTimeoutMult)
	case t.GossipNodes < 1:
		return fmt.Errorf("gossip nodes %d is below 1", t.GossipNodes)
	case t.RetransmitMult < 1:
		return fmt.Errorf("retransmit multiplier %d is below 1", t.RetransmitMult)
	case t.LeavePropagateDelay < 0:
		return fmt.Errorf("leave propagate delay %v is negative", t.LeavePropagateDelay)
	case t.DeadNodeReclaimTime < 0:
		return fmt.Errorf("dead node reclaim time %v is negative", t.DeadNodeReclaimTime)
	}
	return nil
}
