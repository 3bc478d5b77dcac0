package configs

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Validate checks every key and the rules between keys. The error joins one
// *FieldError per problem; each names the key and, for a Config made by
// Load, the file, variable or flag that set it.
func (c *Config) Validate() error {
	v := &validation{c: c}

	if c.Datacenter == "" {
		v.failf("datacenter", "required")
	} else if !isDatacenterName(c.Datacenter) {
		v.failf("datacenter", "must be lowercase letters, digits, '-' and '_', got %q", c.Datacenter)
	}
	if c.NodeName == "" {
		v.failf("node_name", "required (the hostname could not be read)")
	}
	if c.NodeID != "" && !isUUID(c.NodeID) {
		v.failf("node_id", "must be a UUID such as \"adf4238a-882b-9ddc-4a9d-5b6758e4159e\", got %q", c.NodeID)
	}
	if c.DataDir == "" && !c.Dev {
		v.failf("data_dir", "required unless dev mode")
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		v.failf("log_level", "must be trace, debug, info, warn or error, got %q", c.LogLevel)
	}

	switch {
	case c.BootstrapExpect < 0:
		v.failf("bootstrap_expect", "must not be negative, got %d", c.BootstrapExpect)
	case c.BootstrapExpect == 0 && c.origins["bootstrap_expect"] != origin{}:
		v.failf("bootstrap_expect", "must be at least 1, got 0 (leave it out for a server that joins an existing cluster)")
	case c.BootstrapExpect > 0 && !c.Server:
		v.failf("bootstrap_expect", "needs server mode (server: true or -server)")
	case c.BootstrapExpect > 0 && c.Bootstrap:
		v.failf("bootstrap_expect", "cannot be set together with bootstrap: choose one")
	}
	if c.Bootstrap && !c.Server {
		v.failf("bootstrap", "needs server mode (server: true or -server)")
	}

	v.ip("bind_addr", c.BindAddr, true)
	if c.AdvertiseAddr != "" {
		v.ip("advertise_addr", c.AdvertiseAddr, false)
	}
	v.ip("client_addr", c.ClientAddr, true)
	v.portOrOff("ports.http", c.Ports.HTTP)
	v.portOrOff("ports.https", c.Ports.HTTPS)
	if c.Ports.HTTP == -1 && c.Ports.HTTPS == -1 {
		v.failf("ports.http", "-1 turns HTTP off, and HTTPS is off too: the agent would have no API; set ports.https")
	}
	v.port("ports.dns", c.Ports.DNS)
	v.port("ports.server", c.Ports.Server)
	v.port("ports.serf_lan", c.Ports.SerfLAN)
	v.dns()
	v.ui()
	v.port("ports.serf_wan", c.Ports.SerfWAN)
	for _, a := range []struct{ key, ip string }{{"addresses.http", c.Addresses.HTTP}, {"addresses.https", c.Addresses.HTTPS}, {"addresses.dns", c.Addresses.DNS}} {
		if a.key == "addresses.http" && strings.HasPrefix(a.ip, "unix://") {
			v.unixSocket(a.key, c.HTTPUnixSocket())
			continue
		}
		if a.ip != "" {
			v.ip(a.key, a.ip, true)
		}
	}
	if p := nodeMetaProblem(c.NodeMeta); p != "" {
		v.failf("node_meta", "%s", p)
	}
	if c.LogRotateBytes < 0 {
		v.failf("log_rotate_bytes", "must not be negative, got %d", c.LogRotateBytes)
	}
	if c.LogFile != "" {
		v.positive("log_rotate_duration", c.LogRotateDuration)
	}
	if c.LogRotateMaxFiles < -1 {
		v.failf("log_rotate_max_files", "must be -1 (keep none), 0 (keep all) or more, got %d", c.LogRotateMaxFiles)
	}

	v.addrs("start_join", c.StartJoin)
	v.addrs("retry_join", c.RetryJoin)
	v.positive("retry_interval", c.RetryInterval)
	if c.RetryMax < 0 {
		v.failf("retry_max", "must not be negative, got %d", c.RetryMax)
	}
	v.wan()
	v.tls()
	v.failover()
	v.replication()
	v.acl()
	v.limits()
	v.telemetry()
	if c.Encrypt != "" {
		// Never echo the key: it is a secret.
		key, err := base64.StdEncoding.DecodeString(c.Encrypt)
		switch {
		case err != nil:
			v.failf("encrypt", "must be base64 (as made by meridian keygen): %w", err)
		case !validKeyLen(len(key)):
			v.failf("encrypt", "must decode to 16, 24 or 32 bytes, got %d", len(key))
		}
	}
	v.positive("reconnect_timeout", c.ReconnectTimeout)
	if c.Autopilot.LastContactThreshold <= 0 {
		v.failf("autopilot.last_contact_threshold", "must be positive, got %s", c.Autopilot.LastContactThreshold)
	}
	if c.Autopilot.MaxTrailingLogs < 0 {
		v.failf("autopilot.max_trailing_logs", "must not be negative, got %d", c.Autopilot.MaxTrailingLogs)
	}
	if c.Autopilot.ServerStabilizationTime < 0 {
		v.failf("autopilot.server_stabilization_time", "must not be negative, got %s", c.Autopilot.ServerStabilizationTime)
	}
	if m := c.Performance.RaftMultiplier; m < 1 || m > 10 {
		v.failf("performance.raft_multiplier", "must be 1-10, got %d", m)
	}
	if c.RaftSnapshotThreshold < 1 {
		v.failf("raft_snapshot_threshold", "must be at least 1, got %d", c.RaftSnapshotThreshold)
	}
	if c.RaftSnapshotInterval < 5*time.Millisecond {
		v.failf("raft_snapshot_interval", "must be at least 5ms, got %v", c.RaftSnapshotInterval)
	}
	if c.RaftTrailingLogs < 0 {
		v.failf("raft_trailing_logs", "must not be negative, got %d", c.RaftTrailingLogs)
	}

	v.services()
	seenChecks := make(map[string]string)
	for i := range c.Checks {
		v.check(fmt.Sprintf("checks[%d]", i), &c.Checks[i], seenChecks)
	}
	return errors.Join(v.errs...)
}

// Warnings returns the lines the agent should log at start: settings that
// are allowed but probably not what was meant.
func (c *Config) Warnings() []string {
	w := append([]string(nil), c.notes...)
	if n := c.BootstrapExpect; c.Server && n > 1 && n%2 == 0 {
		if n == 2 {
			w = append(w, "bootstrap_expect = 2: two servers tolerate no failure (losing either stops the cluster); use 3")
		} else {
			w = append(w, fmt.Sprintf("bootstrap_expect = %d: an even number of servers tolerates no more failures than %d; use an odd number", n, n-1))
		}
	}
	if c.Server && !c.Bootstrap && c.BootstrapExpect == 0 && !c.Dev {
		w = append(w, "server with neither bootstrap nor bootstrap_expect: it elects no leader by itself and waits to be added to an existing cluster")
	}
	if c.Bootstrap && !c.Dev {
		w = append(w, "bootstrap mode: this server elects itself leader; never run more than one server of a datacenter in bootstrap mode")
	}
	if c.NodeName != "" && !isDNSLabel(c.NodeName) {
		w = append(w, fmt.Sprintf("node_name %q is not a valid DNS label: the node cannot be looked up over DNS", c.NodeName))
	}
	if !c.DisableRemoteExec {
		w = append(w, "disable_remote_exec is false: anyone who may write _rexec/ in KV and fire the _rexec event runs commands on this host (meridian exec)")
	}
	if c.EnableScriptChecks {
		w = append(w, "enable_script_checks lets anyone who can reach the HTTP API run commands on this host; prefer enable_local_script_checks")
	}
	w = append(w, c.tlsWarnings()...)
	for _, p := range []struct {
		key  string
		port *int
	}{{"ports.grpc", c.Ports.GRPC}, {"ports.grpc_tls", c.Ports.GRPCTLS}} {
		if p.port != nil && *p.port >= 0 {
			w = append(w, fmt.Sprintf("%s = %d: Meridian has no gRPC interface (Connect's xDS); the port is not opened", p.key, *p.port))
		}
	}
	if c.EnableSyslog {
		w = append(w, "enable_syslog (-syslog): Meridian does not write to syslog; logs go to stderr (and log_file if set)")
	}
	return w
}

// validation gathers the problems Validate finds.
type validation struct {
	c    *Config
	errs []error
}

// failf records a problem with key, naming where the key was set.
func (v *validation) failf(key, format string, args ...any) {
	src, spelled := v.c.locate(key)
	v.errs = append(v.errs, &FieldError{Source: src, Key: spelled, Err: fmt.Errorf(format, args...)})
}

// locate finds where key, or the nearest list element holding it, was set,
// and rewrites key as that source spells it.
func (c *Config) locate(key string) (source, spelled string) {
	for k := key; k != ""; k = parentKey(k) {
		if o, ok := c.origins[k]; ok {
			return o.source, o.key + key[len(k):]
		}
	}
	// A collected list as a whole: the source of its first element.
	if o, ok := c.origins[key+"[0]"]; ok {
		return o.source, key
	}
	return "", key
}

// parentKey strips the last ".name" or "[i]" of a key path.
func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i < 0 {
		return ""
	}
	return k[:i]
}

func (v *validation) ip(key, s string, unspecifiedOK bool) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		v.failf(key, "must be an IP address (not a hostname), got %q", s)
	case a.IsUnspecified() && !unspecifiedOK:
		v.failf(key, "must be an address others can reach, not %s", s)
	}
}

// portOrOff is port, or -1 for a listener that is off.
func (v *validation) portOrOff(key string, p int) {
	if p < -1 || p > 65535 {
		v.failf(key, "must be 0-65535 (0 picks a free port) or -1 (off), got %d", p)
	}
}

func (v *validation) port(key string, p int) {
	if p < 0 || p > 65535 {
		v.failf(key, "must be 0-65535 (0 picks a free port), got %d", p)
	}
}

func (v *validation) positive(key string, d time.Duration) {
	if d <= 0 {
		v.failf(key, "must be positive, got %s", d)
	}
}

func (v *validation) notNegative(key string, d time.Duration) {
	if d < 0 {
		v.failf(key, "must not be negative, got %s", d)
	}
}

func (v *validation) addrs(key string, list []string) {
	for i, a := range list {
		if strings.TrimSpace(a) == "" {
			v.failf(fmt.Sprintf("%s[%d]", key, i), "must not be empty")
		}
	}
}

// servicePorts checks a service's named ports as Consul does: each named
// once, with a port, and exactly one the default.
func (v *validation) servicePorts(key string, ports []ServicePort) {
	if len(ports) == 0 {
		return
	}
	seen := map[string]bool{}
	defaults := 0
	for j, p := range ports {
		pk := fmt.Sprintf("%s.ports[%d]", key, j)
		switch {
		case strings.TrimSpace(p.Name) == "":
			v.failf(pk+".name", "required")
		case seen[p.Name]:
			v.failf(pk+".name", "%q is already the name of another port", p.Name)
		}
		seen[p.Name] = true
		if p.Port <= 0 || p.Port > 65535 {
			v.failf(pk+".port", "must be 1-65535, got %d", p.Port)
		}
		if p.Default {
			defaults++
		}
	}
	if defaults != 1 {
		v.failf(key+".ports", "exactly one port must have default = true, got %d", defaults)
	}
}

// services checks the service definitions and the checks inside them.
func (v *validation) services() {
	ids := make(map[string]string)
	checkIDs := make(map[string]string)
	for i := range v.c.Services {
		s := &v.c.Services[i]
		key := fmt.Sprintf("services[%d]", i)
		if s.Name == "" {
			v.failf(key+".name", "required")
		}
		id := s.ID
		if id == "" {
			id = s.Name
		}
		if id != "" {
			if prev, dup := ids[id]; dup {
				v.failf(key+".id", "service id %q is already used by %s", id, v.where(prev))
			}
			ids[id] = key
		}
		if s.Port < 0 || s.Port > 65535 {
			v.failf(key+".port", "must be 0-65535, got %d", s.Port)
		}
		if s.Address != "" && strings.ContainsAny(s.Address, " /") {
			v.failf(key+".address", "must be an IP address or a hostname, got %q", s.Address)
		}
		for tag, a := range s.TaggedAddresses {
			if a.Port < 0 || a.Port > 65535 {
				v.failf(key+".tagged_addresses."+tag+".port", "must be 0-65535, got %d", a.Port)
			}
		}
		v.servicePorts(key, s.Ports)
		if s.Weights.Passing < 0 {
			v.failf(key+".weights.passing", "must not be negative, got %d", s.Weights.Passing)
		}
		if s.Weights.Warning < 0 {
			v.failf(key+".weights.warning", "must not be negative, got %d", s.Weights.Warning)
		}
		for j := range s.Checks {
			v.check(fmt.Sprintf("%s.checks[%d]", key, j), &s.Checks[j], checkIDs)
		}
	}
}

// check checks one check definition at key; ids tracks explicit check IDs.
func (v *validation) check(key string, ch *CheckDefinition, ids map[string]string) {
	var kinds []string
	if ch.HTTP != "" {
		kinds = append(kinds, "http")
	}
	if ch.TCP != "" {
		kinds = append(kinds, "tcp")
	}
	if ch.TTL != 0 {
		kinds = append(kinds, "ttl")
	}
	if len(ch.Args) > 0 {
		kinds = append(kinds, "args")
	}
	switch len(kinds) {
	case 0:
		v.failf(key, "needs one of http, tcp, ttl or args")
	case 1:
		if kinds[0] != "ttl" && ch.Interval == 0 {
			v.failf(key+".interval", "required for %s", checkKind(kinds[0]))
		}
	default:
		v.failf(key, "has %s: a check is exactly one of http, tcp, ttl or args", strings.Join(kinds, " and "))
	}
	if ch.HTTP != "" {
		if u, err := url.Parse(ch.HTTP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.failf(key+".http", "must be an http:// or https:// URL, got %q", ch.HTTP)
		}
	}
	if ch.TCP != "" {
		if _, _, err := net.SplitHostPort(ch.TCP); err != nil {
			v.failf(key+".tcp", "must be host:port, got %q", ch.TCP)
		}
	}
	if len(ch.Args) > 0 && !v.c.EnableScriptChecks && !v.c.EnableLocalScriptChecks {
		v.failf(key+".args", "script checks need enable_script_checks or enable_local_script_checks")
	}
	v.notNegative(key+".ttl", ch.TTL)
	v.notNegative(key+".interval", ch.Interval)
	v.notNegative(key+".timeout", ch.Timeout)
	v.notNegative(key+".deregister_critical_service_after", ch.DeregisterCriticalServiceAfter)
	if ch.SuccessBeforePassing < 0 {
		v.failf(key+".success_before_passing", "must not be negative, got %d", ch.SuccessBeforePassing)
	}
	if ch.FailuresBeforeCritical < 0 {
		v.failf(key+".failures_before_critical", "must not be negative, got %d", ch.FailuresBeforeCritical)
	}
	switch ch.Status {
	case "", "passing", "warning", "critical":
	default:
		v.failf(key+".status", "must be passing, warning or critical, got %q", ch.Status)
	}
	if ch.ID != "" {
		if prev, dup := ids[ch.ID]; dup {
			v.failf(key+".id", "check id %q is already used by %s", ch.ID, v.where(prev))
		}
		ids[ch.ID] = key
	}
}

// where renders a key with its source, for "already used by" messages.
func (v *validation) where(key string) string {
	src, spelled := v.c.locate(key)
	if src == "" {
		return spelled
	}
	return src + ": " + spelled
}

// checkKind names a kind of check for a message.
func checkKind(kind string) string {
	switch kind {
	case "http":
		return "an http check"
	case "tcp":
		return "a tcp check"
	}
	return "a script (args) check"
}

func isDatacenterName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func isDNSLabel(s string) bool {
	if len(s) > 63 || strings.HasPrefix(s, "-") || strings.HasSuffix(s, "-") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// isUUID reports whether s is a UUID in the 8-4-4-4-12 hex form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return false
			}
		}
	}
	return true
}

// unixSocket checks a unix socket path the agent will create: absolute,
// in a directory that exists, and not already there (a stale socket of a
// crashed agent must be removed by hand, as with Consul, so that two
// agents never share one).
func (v *validation) unixSocket(key, path string) {
	switch {
	case path == "" || !filepath.IsAbs(path):
		v.failf(key, "unix socket path must be absolute (unix:///run/meridian/http.sock), got %q", path)
		return
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		v.failf(key, "directory of unix socket %s does not exist: create it or choose another path", path)
		return
	}
	if _, err := os.Lstat(path); err == nil {
		v.failf(key, "unix socket %s already exists: another agent may be using it; remove it if none is", path)
	}
}
