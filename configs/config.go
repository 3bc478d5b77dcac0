package configs

import (
	"encoding/base64"
	"os"
	"strings"
	"time"
)

// Config is the whole configuration of one agent. The `config` tag of each
// field is its key in files (and, upper-cased with MERIDIAN_, in the
// environment).
type Config struct {
	// Datacenter is the datacenter this agent belongs to: lowercase letters,
	// digits, '-' and '_'. Default "dc1".
	Datacenter string `config:"datacenter"`
	// NodeName is this node's name in the catalog and in gossip, unique in the
	// datacenter. Default: the hostname (in dev mode too).
	NodeName string `config:"node_name"`
	// NodeID is a UUID naming this node across renames. Empty: the agent makes
	// one and keeps it in DataDir.
	NodeID string `config:"node_id"`
	// DataDir holds Raft logs and snapshots, the node ID and local state.
	// Required unless Dev; in dev mode state is kept in memory.
	DataDir string `config:"data_dir"`
	// LogLevel is one of trace, debug, info, warn, error (lower case after
	// Load). Default "info".
	LogLevel string `config:"log_level"`
	// LogJSON writes logs as JSON lines instead of text.
	LogJSON bool `config:"log_json"`
	// LogFile also writes the logs to this file (a directory: a file named
	// meridian-<timestamp>.log in it). It is rotated when it reaches
	// LogRotateBytes (0: no size limit) or is LogRotateDuration old
	// (default 24h); LogRotateMaxFiles old files are kept (0: all, -1: none).
	LogFile           string        `config:"log_file"`
	LogRotateBytes    int           `config:"log_rotate_bytes"`
	LogRotateDuration time.Duration `config:"log_rotate_duration"`
	LogRotateMaxFiles int           `config:"log_rotate_max_files"`
	// EnableSyslog is Consul's syslog output; Meridian does not write to
	// syslog, and says so at start.
	EnableSyslog bool `config:"enable_syslog"`
	// PidFile is a file the agent writes its process ID to at start and
	// removes at exit.
	PidFile string `config:"pid_file"`

	// Server runs this agent as a Raft server rather than a client.
	Server bool `config:"server"`
	// Bootstrap lets this server elect itself leader alone. Only one server of
	// a datacenter may have it, and never together with BootstrapExpect.
	Bootstrap bool `config:"bootstrap"`
	// BootstrapExpect is how many servers to wait for before the first
	// election; 0 is unset. Needs Server. Load turns 1 into Bootstrap.
	BootstrapExpect int `config:"bootstrap_expect"`
	// Dev runs a throw-away single-server agent: Server, Bootstrap and UI on,
	// bound to 127.0.0.1 unless bind_addr or client_addr are set, state in
	// memory.
	Dev bool `config:"dev"`

	// BindAddr is the IP the server RPC and gossip ports bind to. Default
	// "0.0.0.0"; a single IP, not a hostname.
	BindAddr string `config:"bind_addr"`
	// AdvertiseAddr is the IP other agents reach this one at. Empty: the
	// agent picks BindAddr, or a private IP of the host when BindAddr is
	// 0.0.0.0.
	AdvertiseAddr string `config:"advertise_addr"`
	// ClientAddr is the IP the HTTP API and DNS bind to. Default "127.0.0.1".
	ClientAddr string `config:"client_addr"`
	// UI is Consul's older spelling of UIConfig.Enabled (`ui`, `-ui`); Load
	// folds the two into one, and either one set true serves the UI.
	UI bool `config:"ui"`
	// UIConfig is the web UI: whether it is served, and where.
	UIConfig UIConfig `config:"ui_config"`
	// Ports are the ports this agent listens on.
	Ports Ports `config:"ports"`
	// Addresses override ClientAddr for one interface, as Consul's
	// addresses block.
	Addresses Addresses `config:"addresses"`
	// NodeMeta is free-form key/value metadata of this node in the catalog
	// (keys keep their case): at most 64 pairs, keys of letters, digits, '-'
	// and '_' up to 128 characters not starting "consul-", values up to 512.
	// Maps from several files merge; -node-meta key:value adds pairs.
	NodeMeta map[string]string `config:"node_meta,collect"`

	// StartJoin are agents (host or host:port, serf LAN port by default) to
	// join at start; failing to join any of them fails the start.
	StartJoin []string `config:"start_join,collect"`
	// RetryJoin are agents to join at start, retried every RetryInterval until
	// one answers or RetryMax attempts have failed.
	RetryJoin []string `config:"retry_join,collect"`
	// RetryInterval is the wait between attempts to join RetryJoin. Default 30s.
	RetryInterval time.Duration `config:"retry_interval"`
	// RetryMax is how many attempts to join RetryJoin are made; 0 is forever.
	RetryMax int `config:"retry_max"`
	// RejoinAfterLeave rejoins the cluster from the gossip snapshot even
	// after a graceful leave.
	RejoinAfterLeave bool `config:"rejoin_after_leave"`
	// LeaveOnTerminate leaves the cluster gracefully on SIGTERM. Default true
	// for clients, false for servers (as Consul).
	LeaveOnTerminate bool `config:"leave_on_terminate"`
	// SkipLeaveOnInterrupt does not leave the cluster on SIGINT. Default true
	// for servers, false for clients (as Consul).
	SkipLeaveOnInterrupt bool `config:"skip_leave_on_interrupt"`

	// StartJoinWAN are servers of other datacenters (host or host:port, serf
	// WAN port 8302 by default) whose WAN gossip pool this server joins at
	// start; failing to join any of them fails the start. Servers only.
	StartJoinWAN []string `config:"start_join_wan,collect"`
	// RetryJoinWAN are servers of other datacenters to join over WAN gossip
	// at start, retried every RetryIntervalWAN until one answers or
	// RetryMaxWAN attempts have failed. Servers only.
	RetryJoinWAN []string `config:"retry_join_wan,collect"`
	// RetryIntervalWAN is the wait between attempts to join RetryJoinWAN.
	// Default 30s.
	RetryIntervalWAN time.Duration `config:"retry_interval_wan"`
	// RetryMaxWAN is how many attempts to join RetryJoinWAN are made; 0 is
	// forever.
	RetryMaxWAN int `config:"retry_max_wan"`
	// AdvertiseAddrWAN is the IP servers of other datacenters reach this
	// server at, for WAN gossip and WAN links. Empty: AdvertiseAddr (see
	// AdvertiseWAN).
	AdvertiseAddrWAN string `config:"advertise_addr_wan"`
	// WANTransport is how this server dials WAN links to servers of other
	// datacenters: WANTransportQUIC (default; QUIC over UDP on the server
	// port) or WANTransportTCP (yamux over TCP on the server port, for sites
	// between which UDP is blocked). Every server accepts both. Lower case
	// after Load.
	WANTransport string `config:"wan_transport"`
	// TLS is Consul's tls stanza: the certificates of the server port
	// (RPC, Raft, WAN links) and of HTTPS.
	TLS TLS `config:"tls"`
	// CAFile, CAPath, CertFile, KeyFile, VerifyIncoming, VerifyOutgoing,
	// VerifyServerHostname, TLSMinVersion and TLSCipherSuites are the
	// top-level TLS keys of older Consul configs: the fallback of every
	// block of TLS.
	CAFile               string `config:"ca_file"`
	CAPath               string `config:"ca_path"`
	CertFile             string `config:"cert_file"`
	KeyFile              string `config:"key_file"`
	VerifyIncoming       bool   `config:"verify_incoming"`
	VerifyOutgoing       bool   `config:"verify_outgoing"`
	VerifyServerHostname bool   `config:"verify_server_hostname"`
	TLSMinVersion        string `config:"tls_min_version"`
	TLSCipherSuites      string `config:"tls_cipher_suites"`
	// Federation tunes requests to other datacenters.
	Federation Federation `config:"federation"`
	// Replication is what this datacenter copies from others
	// (replication.go).
	Replication Replication `config:"replication"`
	// Failover maps service names, or "*" for every service, to where their
	// DNS answers (NAME.service.consul) and ?passing health reads look when
	// this datacenter has no healthy instance.
	Failover map[string]FailoverPolicy `config:"failover"`

	// ACL is access control (acl.go). PrimaryDatacenter is the datacenter
	// whose servers are the authority for ACLs; empty: this one.
	ACL               ACL    `config:"acl"`
	PrimaryDatacenter string `config:"primary_datacenter"`

	// Encrypt is the gossip encryption key: base64 of 16, 24 or 32 bytes.
	// EncryptKey returns it decoded.
	Encrypt string `config:"encrypt"`
	// EncryptVerifyIncoming refuses gossip that is not encrypted, and
	// EncryptVerifyOutgoing encrypts what this agent sends; both default
	// true. Turning encryption on in a running cluster takes a rolling
	// restart with both false, then one with outgoing true, then both.
	EncryptVerifyIncoming bool `config:"encrypt_verify_incoming"`
	EncryptVerifyOutgoing bool `config:"encrypt_verify_outgoing"`
	// ReconnectTimeout is how long a failed node stays in the member list
	// before it is reaped. Default 72h; must be positive.
	ReconnectTimeout time.Duration `config:"reconnect_timeout"`
	// Performance tunes timings.
	Performance Performance `config:"performance"`
	// Autopilot is the servers' autopilot configuration until an
	// operator stores one (operator autopilot set-config).
	Autopilot Autopilot `config:"autopilot"`
	// Limits caps what clients of the agent may hold.
	Limits Limits `config:"limits"`
	// Telemetry names the agent's metrics.
	Telemetry Telemetry `config:"telemetry"`
	// MaxQueryTime caps the wait of a blocking query (?wait=); a longer
	// wait is cut to it. DefaultQueryTime is the wait of a blocking query
	// that gives none. Defaults 600s and 300s, as Consul; each waits up to
	// 1/16 longer, so that many watchers do not return at once.
	MaxQueryTime     time.Duration `config:"max_query_time"`
	DefaultQueryTime time.Duration `config:"default_query_time"`
	// UseStreamingBackend makes a client agent answer blocking queries of
	// a service's health (/v1/health/service/:name?index=) from a local
	// view kept current by one subscription to a server per watched
	// query, instead of one blocking call per change: however many watch
	// a service on the agent, the servers serve it one subscription.
	// Default true, as in Consul 1.10 and later; servers ignore it.
	UseStreamingBackend bool `config:"use_streaming_backend"`
	// RaftSnapshotThreshold is how many Raft entries since its last
	// snapshot make a server take the next one; it checks every
	// RaftSnapshotInterval (randomised up to twice that). RaftTrailingLogs
	// is how many entries a snapshot leaves in the log, so that a follower
	// lagging by fewer catches up without a whole snapshot. Servers only;
	// defaults 16384, 120s and 10240.
	RaftSnapshotThreshold int           `config:"raft_snapshot_threshold"`
	RaftSnapshotInterval  time.Duration `config:"raft_snapshot_interval"`
	RaftTrailingLogs      int           `config:"raft_trailing_logs"`

	// Domain is the DNS domain the agent answers for (default "consul.");
	// AltDomain is a second one answered the same way.
	Domain    string `config:"domain"`
	AltDomain string `config:"alt_domain"`
	// Recursors are DNS servers (host or host:port) that names outside the
	// domain are forwarded to, in order; without any such names are refused.
	Recursors []string `config:"recursors"`
	// DNSConfig tunes the DNS interface.
	DNSConfig DNSConfig `config:"dns_config"`

	// EnableScriptChecks allows checks that run a command (Args), registered
	// from files or over the HTTP API.
	EnableScriptChecks bool `config:"enable_script_checks"`
	// EnableLocalScriptChecks allows script checks from files only.
	EnableLocalScriptChecks bool `config:"enable_local_script_checks"`
	// DisableRemoteExec makes the agent ignore `meridian exec` jobs
	// (default true, as Consul's): with it false, anyone who may write
	// _rexec/ in KV and fire the _rexec event runs commands on this host.
	DisableRemoteExec bool `config:"disable_remote_exec"`
	// EnableDebug serves Go's profiler at /debug/pprof/ on the HTTP API.
	EnableDebug bool `config:"enable_debug"`

	// Services are the local services, collected from every file.
	Services []ServiceDefinition `config:"services,collect,single=service"`
	// Checks are the local node or service checks, collected from every file.
	Checks []CheckDefinition `config:"checks,collect,single=check"`

	// origins maps a key ("ports.http", "services[2]") to where it was last
	// set, so that Validate can name the file. Filled by Load; read-only after.
	origins map[string]origin
	// notes are warnings found while loading (normalisations Load made).
	notes []string
}

// Ports are the ports an agent listens on. 0 means "pick a free port", which
// suits tests; the agent reports the port it got.
type Ports struct {
	// HTTP is the HTTP API and UI port (TCP) on ClientAddr. Default 8500;
	// -1 turns plain HTTP off (with HTTPS on).
	HTTP int `config:"http"`
	// HTTPS is the HTTPS API port on ClientAddr, with the certificates of
	// tls.https. Default -1: off, as in Consul (8501 is the usual port).
	HTTPS int `config:"https"`
	// DNS is the DNS port (UDP and TCP) on ClientAddr. Default 8600.
	DNS int `config:"dns"`
	// Server is the server RPC and Raft port (TCP, and UDP for QUIC WAN
	// links) on BindAddr. Default 8300.
	Server int `config:"server"`
	// SerfLAN is the LAN gossip port (TCP and UDP) on BindAddr. Default 8301.
	SerfLAN int `config:"serf_lan"`
	// SerfWAN is the WAN gossip port (TCP and UDP) on BindAddr, servers
	// only. Default 8302.
	SerfWAN int `config:"serf_wan"`
	// GRPC and GRPCTLS are Consul's gRPC ports (xDS for Connect). Meridian
	// has no gRPC interface: they are accepted, with a warning, and no port
	// is opened.
	GRPC    *int `config:"grpc"`
	GRPCTLS *int `config:"grpc_tls"`
}

// Addresses are the IPs one interface binds to instead of ClientAddr.
type Addresses struct {
	// HTTP is the IP of the HTTP API, or unix:///path for a unix socket
	// (as Consul's; ports.http then does not apply); empty: ClientAddr.
	HTTP string `config:"http"`
	// HTTPS is the IP of the HTTPS API; empty: ClientAddr.
	HTTPS string `config:"https"`
	// DNS is the IP of the DNS interface; empty: ClientAddr.
	DNS string `config:"dns"`
}

// BindHTTP, BindHTTPS and BindDNS are the IPs the HTTP API, HTTPS API and
// DNS listen on: Addresses, else ClientAddr.
func (c *Config) BindHTTP() string  { return orDefault(c.Addresses.HTTP, c.ClientAddr) }
func (c *Config) BindHTTPS() string { return orDefault(c.Addresses.HTTPS, c.ClientAddr) }
func (c *Config) BindDNS() string   { return orDefault(c.Addresses.DNS, c.ClientAddr) }

// HTTPUnixSocket is the path of the HTTP API's unix socket when
// addresses.http is unix:///path, else "".
func (c *Config) HTTPUnixSocket() string {
	path, _ := strings.CutPrefix(c.Addresses.HTTP, "unix://")
	if path == c.Addresses.HTTP {
		return ""
	}
	return path
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// Autopilot is Consul's autopilot block: dead servers are removed when
// CleanupDeadServers is set, a server is healthy when it heard from the
// leader within LastContactThreshold and trails it by at most
// MaxTrailingLogs entries, and a new server becomes a voter once healthy
// for ServerStabilizationTime.
type Autopilot struct {
	CleanupDeadServers      bool          `config:"cleanup_dead_servers"`
	LastContactThreshold    time.Duration `config:"last_contact_threshold"`
	MaxTrailingLogs         int           `config:"max_trailing_logs"`
	ServerStabilizationTime time.Duration `config:"server_stabilization_time"`
}

// Performance tunes an agent's timings.
type Performance struct {
	// RaftMultiplier scales Raft's heartbeat, election and lease timeouts
	// (1 = the fastest, Consul's production setting; up to 10 for slow
	// machines). Every Raft timeout is its base value times RaftMultiplier:
	// 1s heartbeat and election timeouts and a 500ms leader lease at 1,
	// which replace a dead leader in about 2s and keep one leader on CPUs
	// oversubscribed five times over; each step up adds about 2s to a
	// failover and rides out longer stalls (GC, a swapping or throttled
	// host). Default 1.
	RaftMultiplier int `config:"raft_multiplier"`
}

// ServiceDefinition is a local service as written in a file, in Consul's
// shape. A file may hold one `service:` or a list of `services:`.
type ServiceDefinition struct {
	// ID is unique among the agent's services; empty means Name.
	ID string `config:"id"`
	// Name is the service name, required.
	Name string `config:"name"`
	// Tags are free-form labels, usable in DNS and health queries.
	Tags []string `config:"tags"`
	// Address is the service's address; empty means the node's.
	Address string `config:"address"`
	// Port is the service's port, 0-65535.
	Port int `config:"port"`
	// Meta is free-form key/value metadata (keys keep their case).
	Meta map[string]string `config:"meta"`
	// Weights are the DNS SRV weights; zero means {Passing: 1, Warning: 1}.
	Weights Weights `config:"weights"`
	// EnableTagOverride lets the catalog's tags win over these in
	// anti-entropy.
	EnableTagOverride bool `config:"enable_tag_override"`
	// Checks are the service's checks. A single `check:` in a file is
	// appended here too, before those of `checks:`.
	Checks []CheckDefinition `config:"checks,single=check"`
	// TaggedAddresses are the service's other addresses by tag ("lan",
	// "wan", "lan_ipv4", ...), each an address and a port.
	TaggedAddresses map[string]ServiceAddress `config:"tagged_addresses"`
	// SocketPath is the unix socket the service listens on, if any.
	SocketPath string `config:"socket_path"`
	// Ports are the service's named ports when it has several; exactly one
	// is the default.
	Ports []ServicePort `config:"ports"`
	// Locality is the region and zone the service runs in.
	Locality *Locality `config:"locality"`
}

// ServiceAddress is one tagged address of a service.
type ServiceAddress struct {
	// Address is an IP address or a hostname.
	Address string `config:"address"`
	// Port is 0-65535.
	Port int `config:"port"`
}

// ServicePort is one named port of a service.
type ServicePort struct {
	// Name names the port, unique within the service.
	Name string `config:"name"`
	// Port is 1-65535.
	Port int `config:"port"`
	// Default marks the service's main port; exactly one has it.
	Default bool `config:"default"`
}

// Locality is where a service runs.
type Locality struct {
	// Region is the region, such as a cloud provider's.
	Region string `config:"region"`
	// Zone is the zone within the region.
	Zone string `config:"zone"`
}

// Weights are the SRV weights of a service by health state.
type Weights struct {
	// Passing is the weight while every check passes.
	Passing int `config:"passing"`
	// Warning is the weight while a check warns.
	Warning int `config:"warning"`
}

// CheckDefinition is a health check as written in a file, in Consul's shape.
// Exactly one of HTTP, TCP, TTL and Args says what kind it is.
type CheckDefinition struct {
	// ID is unique among the agent's checks; empty means Name (Consul's
	// "service:<id>" form for a check inside a service definition).
	ID string `config:"id"`
	// Name is the check's name; empty lets the agent name it.
	Name string `config:"name"`
	// Notes are free-form text for humans.
	Notes string `config:"notes"`
	// ServiceID ties a top-level check to a service; empty is a node check.
	ServiceID string `config:"service_id"`
	// HTTP is a URL polled every Interval: 2xx passes, 429 warns, else
	// critical.
	HTTP string `config:"http"`
	// Method is the HTTP method; empty means GET.
	Method string `config:"method"`
	// Header are extra HTTP request headers.
	Header map[string][]string `config:"header"`
	// Body is the HTTP request body.
	Body string `config:"body"`
	// TLSSkipVerify does not verify the HTTPS certificate.
	TLSSkipVerify bool `config:"tls_skip_verify"`
	// TCP is a host:port dialled every Interval: connected passes.
	TCP string `config:"tcp"`
	// TTL makes a check that the application marks passing through the API;
	// it turns critical when not updated within TTL.
	TTL time.Duration `config:"ttl"`
	// Args is a command run every Interval: exit 0 passes, 1 warns, else
	// critical. Needs enable_script_checks or enable_local_script_checks.
	Args []string `config:"args"`
	// Interval is how often HTTP, TCP and Args checks run; required for them.
	Interval time.Duration `config:"interval"`
	// Timeout bounds one run; zero means the agent's default (10s).
	Timeout time.Duration `config:"timeout"`
	// DeregisterCriticalServiceAfter deregisters the service when this check
	// has been critical that long; zero never does.
	DeregisterCriticalServiceAfter time.Duration `config:"deregister_critical_service_after"`
	// SuccessBeforePassing is how many consecutive passes turn it passing.
	SuccessBeforePassing int `config:"success_before_passing"`
	// FailuresBeforeCritical is how many consecutive failures turn it
	// critical.
	FailuresBeforeCritical int `config:"failures_before_critical"`
	// Status is the initial status: passing, warning or critical; empty means
	// critical.
	Status string `config:"status"`
}

// origin is where a key was set: a source ("a.yaml", "env MERIDIAN_X",
// "flag -x") and the key as spelled there.
type origin struct {
	source string
	key    string
}

// Default returns the configuration of a client agent before any file, flag
// or variable applies. NodeName is the hostname (empty if it cannot be read,
// which Validate refuses).
func Default() *Config {
	host, _ := os.Hostname()
	return &Config{
		Datacenter: "dc1",
		NodeName:   host,
		LogLevel:   "info",
		BindAddr:   "0.0.0.0",
		ClientAddr: "127.0.0.1",
		Ports: Ports{
			HTTP:    8500,
			HTTPS:   -1,
			DNS:     8600,
			Server:  8300,
			SerfLAN: 8301,
			SerfWAN: 8302,
		},
		RetryInterval:         30 * time.Second,
		LogRotateDuration:     24 * time.Hour,
		LeaveOnTerminate:      true, // a client leaves on SIGTERM; Load flips it for servers
		RetryIntervalWAN:      30 * time.Second,
		WANTransport:          WANTransportQUIC,
		Federation:            defaultFederation(),
		ReconnectTimeout:      72 * time.Hour,
		EncryptVerifyIncoming: true,
		EncryptVerifyOutgoing: true,
		Performance:           Performance{RaftMultiplier: 1},
		Autopilot: Autopilot{CleanupDeadServers: true, LastContactThreshold: 200 * time.Millisecond,
			MaxTrailingLogs: 250, ServerStabilizationTime: 10 * time.Second},
		Limits:                defaultLimits(),
		Telemetry:             defaultTelemetry(),
		MaxQueryTime:          DefaultMaxQueryTime,
		DefaultQueryTime:      DefaultDefaultQueryTime,
		UseStreamingBackend:   true,
		RaftSnapshotThreshold: 16384,
		RaftSnapshotInterval:  120 * time.Second,
		RaftTrailingLogs:      10240,
		Domain:                "consul.",
		DNSConfig:             defaultDNSConfig(),
		ACL:                   defaultACL(),
		UIConfig:              defaultUIConfig(),
		DisableRemoteExec:     true,
	}
}

// EncryptKey returns the decoded gossip encryption key, or nil when Encrypt
// is empty or not valid (Validate reports why).
func (c *Config) EncryptKey() []byte {
	if c.Encrypt == "" {
		return nil
	}
	key, err := base64.StdEncoding.DecodeString(c.Encrypt)
	if err != nil || !validKeyLen(len(key)) {
		return nil
	}
	return key
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// FieldError is a configuration problem tied to one key.
type FieldError struct {
	// Source is where the key was set: a file name, "env MERIDIAN_X" or
	// "flag -x"; empty for a Config built in code.
	Source string
	// Key is the key as a path: "ports.http", "services[1].checks[0].interval".
	Key string
	// Err is the reason.
	Err error
}

// Error renders "source: key: reason".
func (e *FieldError) Error() string {
	s := e.Key + ": " + e.Err.Error()
	if e.Source != "" {
		s = e.Source + ": " + s
	}
	return s
}

// Unwrap returns the reason.
func (e *FieldError) Unwrap() error { return e.Err }
