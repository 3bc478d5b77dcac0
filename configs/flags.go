package configs

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// flagSpec is one flag of `meridian agent`, with Consul's name.
type flagSpec struct {
	name  string
	key   string // the config key it sets; "" for -config-file and -config-dir
	arg   string // what the value is, for usage ("" for a bool)
	group string
	usage string
	def   string // default for usage; "" means read it from Default()
}

// flagSpecs lists the agent's flags in usage order. A new flag is one line
// here; its type comes from the Config field its key names.
func flagSpecs() []flagSpec {
	const (
		mode    = "Mode"
		ident   = "Identity and storage"
		files   = "Configuration files"
		network = "Addresses and ports (a port of 0 picks a free one)"
		join    = "Joining the cluster"
		wan     = "WAN federation (servers only)"
		secure  = "Security and checks"
		logging = "Logging"
	)
	return []flagSpec{
		{name: "server", key: "server", group: mode, usage: "run as a server rather than a client"},
		{name: "bootstrap-expect", key: "bootstrap_expect", arg: "n", group: mode, usage: "servers to wait for before the first election; 0 is off"},
		{name: "bootstrap", key: "bootstrap", group: mode, usage: "let this one server elect itself leader"},
		{name: "dev", key: "dev", group: mode, usage: "throw-away server in memory on 127.0.0.1, UI on"},
		{name: "ui", key: "ui", group: mode, usage: "serve the web UI at /ui"},

		{name: "datacenter", key: "datacenter", arg: "name", group: ident, usage: "datacenter of this agent"},
		{name: "node", key: "node_name", arg: "name", group: ident, usage: "node name, unique in the datacenter", def: "hostname"},
		{name: "node-id", key: "node_id", arg: "uuid", group: ident, usage: "node ID (default: made once, kept in data-dir)", def: "-"},
		{name: "data-dir", key: "data_dir", arg: "path", group: ident, usage: "directory for state; required unless -dev"},
		{name: "node-meta", key: "node_meta", arg: "key:value", group: ident, usage: "node meta pair; repeatable"},
		{name: "pid-file", key: "pid_file", arg: "path", group: ident, usage: "file to write the agent's process ID to"},

		{name: "config-file", arg: "path", group: files, usage: "HCL, JSON or YAML file to load; repeatable"},
		{name: "config-dir", arg: "path", group: files, usage: "load every *.hcl, *.json, *.yaml, *.yml in it, in lexical order; repeatable"},
		{name: "config-format", arg: "hcl|json|yaml", group: files, usage: "read every config file in this format, whatever its name"},
		{name: "hcl", arg: "text", group: files, usage: "HCL configuration fragment, over the files and environment; repeatable"},

		{name: "bind", key: "bind_addr", arg: "ip", group: network, usage: "IP for server RPC and gossip", def: "0.0.0.0, or 127.0.0.1 with -dev"},
		{name: "advertise", key: "advertise_addr", arg: "ip", group: network, usage: "IP other agents reach this one at", def: "bind IP, or a private IP"},
		{name: "client", key: "client_addr", arg: "ip", group: network, usage: "IP for the HTTP API and DNS"},
		{name: "http-port", key: "ports.http", arg: "port", group: network, usage: "HTTP API port"},
		{name: "https-port", key: "ports.https", arg: "port", group: network, usage: "HTTPS API port; -1 is off"},
		{name: "grpc-port", key: "ports.grpc", arg: "port", group: network, usage: "Consul's gRPC port: accepted, unused (Meridian has no gRPC interface)"},
		{name: "dns-port", key: "ports.dns", arg: "port", group: network, usage: "DNS port"},
		{name: "server-port", key: "ports.server", arg: "port", group: network, usage: "server RPC and Raft port"},
		{name: "serf-lan-port", key: "ports.serf_lan", arg: "port", group: network, usage: "LAN gossip port"},
		{name: "serf-wan-port", key: "ports.serf_wan", arg: "port", group: network, usage: "WAN gossip port"},
		{name: "domain", key: "domain", arg: "domain", group: network, usage: "DNS domain answered for"},
		{name: "alt-domain", key: "alt_domain", arg: "domain", group: network, usage: "second DNS domain answered the same way"},
		{name: "recursor", key: "recursors", arg: "addr", group: network, usage: "DNS server for names outside the domain; repeatable"},
		{name: "default-query-time", key: "default_query_time", arg: "duration", group: network, usage: "wait of a blocking query that gives none"},
		{name: "max-query-time", key: "max_query_time", arg: "duration", group: network, usage: "longest wait of a blocking query"},

		{name: "join", key: "start_join", arg: "addr", group: join, usage: "agent to join at start; repeatable"},
		{name: "retry-join", key: "retry_join", arg: "addr", group: join, usage: "agent to join, retried until it answers; repeatable"},
		{name: "retry-interval", key: "retry_interval", arg: "duration", group: join, usage: "wait between join attempts"},
		{name: "retry-max", key: "retry_max", arg: "n", group: join, usage: "join attempts before giving up; 0 is forever"},
		{name: "rejoin", key: "rejoin_after_leave", group: join, usage: "rejoin even after a graceful leave"},

		{name: "join-wan", key: "start_join_wan", arg: "addr", group: wan, usage: "server of another datacenter to join over WAN gossip at start; repeatable"},
		{name: "retry-join-wan", key: "retry_join_wan", arg: "addr", group: wan, usage: "server of another datacenter to join, retried until it answers; repeatable"},
		{name: "retry-interval-wan", key: "retry_interval_wan", arg: "duration", group: wan, usage: "wait between WAN join attempts"},
		{name: "retry-max-wan", key: "retry_max_wan", arg: "n", group: wan, usage: "WAN join attempts before giving up; 0 is forever"},
		{name: "advertise-wan", key: "advertise_addr_wan", arg: "ip", group: wan, usage: "IP servers of other datacenters reach this one at", def: "advertise IP"},
		{name: "wan-transport", key: "wan_transport", arg: "quic|tcp", group: wan, usage: "how to dial WAN links: quic, or tcp where UDP is blocked"},

		{name: "encrypt", key: "encrypt", arg: "key", group: secure, usage: "gossip key: base64 of 16, 24 or 32 bytes (meridian keygen)"},
		{name: "enable-script-checks", key: "enable_script_checks", group: secure, usage: "allow checks that run commands"},
		{name: "enable-local-script-checks", key: "enable_local_script_checks", group: secure, usage: "allow script checks from files only"},
		{name: "enable-debug", key: "enable_debug", group: secure, usage: "serve Go's profiler at /debug/pprof/ on the HTTP API"},

		{name: "log-level", key: "log_level", arg: "level", group: logging, usage: "trace, debug, info, warn or error"},
		{name: "log-json", key: "log_json", group: logging, usage: "log JSON lines"},
		{name: "log-file", key: "log_file", arg: "path", group: logging, usage: "also write logs to this file (or directory)"},
		{name: "log-rotate-bytes", key: "log_rotate_bytes", arg: "n", group: logging, usage: "rotate the log file at this size; 0 is no limit"},
		{name: "log-rotate-duration", key: "log_rotate_duration", arg: "duration", group: logging, usage: "rotate the log file this often"},
		{name: "log-rotate-max-files", key: "log_rotate_max_files", arg: "n", group: logging, usage: "old log files to keep; 0 keeps all, -1 none"},
		{name: "syslog", key: "enable_syslog", group: logging, usage: "Consul's syslog output: accepted, not supported (logs go to stderr)"},
	}
}

// keyFlag is a flag that sets one config key; list keys append per use.
type keyFlag struct {
	typ reflect.Type
	val any
}

func (f *keyFlag) String() string {
	if f == nil || f.val == nil {
		return ""
	}
	return fmt.Sprint(f.val)
}

func (f *keyFlag) Set(s string) error {
	if f.typ.Kind() == reflect.Map {
		k, v, _ := strings.Cut(s, ":")
		if k == "" {
			return fmt.Errorf("want key:value, got %q", s)
		}
		prev, _ := f.val.(map[string]string)
		if prev == nil {
			prev = make(map[string]string)
		}
		prev[k] = v
		f.val = prev
		return nil
	}
	if f.typ.Kind() == reflect.Slice {
		prev, _ := f.val.([]string)
		f.val = append(prev, s)
		return nil
	}
	v, err := parseText(f.typ, s)
	if err != nil {
		return err
	}
	f.val = v
	return nil
}

func (f *keyFlag) IsBoolFlag() bool { return f.typ != nil && f.typ.Kind() == reflect.Bool }

// source is one -config-file or -config-dir, in command-line order.
type source struct {
	path string
	dir  bool
}

type sourceFlag struct {
	dir  bool
	list *[]source
}

func (f *sourceFlag) String() string { return "" }

func (f *sourceFlag) Set(s string) error {
	*f.list = append(*f.list, source{path: s, dir: f.dir})
	return nil
}

// agentFlags is the parsed command line.
type agentFlags struct {
	fs      *flag.FlagSet
	specs   []flagSpec
	keys    map[string]*keyFlag // by flag name
	sources []source
	format  string   // -config-format
	hcl     []string // -hcl fragments, in order
}

type formatFlag struct{ format *string }

func (f *formatFlag) String() string { return "" }

func (f *formatFlag) Set(s string) error {
	switch s = strings.ToLower(s); s {
	case "hcl", "json", "yaml":
		*f.format = s
		return nil
	}
	return fmt.Errorf("must be hcl, json or yaml, got %q", s)
}

type hclFlag struct{ list *[]string }

func (f *hclFlag) String() string { return "" }

func (f *hclFlag) Set(s string) error {
	*f.list = append(*f.list, s)
	return nil
}

// newAgentFlags builds the flag set. It never prints: Load writes usage for
// -h itself and turns parse errors into one line.
func newAgentFlags() (*agentFlags, error) {
	a := &agentFlags{
		fs:    flag.NewFlagSet("meridian agent", flag.ContinueOnError),
		specs: flagSpecs(),
		keys:  make(map[string]*keyFlag),
	}
	a.fs.SetOutput(io.Discard)
	a.fs.Usage = func() {}
	root := reflect.TypeFor[Config]()
	for _, s := range a.specs {
		switch s.name {
		case "config-format":
			a.fs.Var(&formatFlag{format: &a.format}, s.name, s.usage)
			continue
		case "hcl":
			a.fs.Var(&hclFlag{list: &a.hcl}, s.name, s.usage)
			continue
		}
		if s.key == "" {
			a.fs.Var(&sourceFlag{dir: s.name == "config-dir", list: &a.sources}, s.name, s.usage)
			continue
		}
		f, ok := lookupField(root, s.key)
		if !ok {
			return nil, fmt.Errorf("flag -%s: no config key %q", s.name, s.key)
		}
		kf := &keyFlag{typ: f.typ}
		a.keys[s.name] = kf
		a.fs.Var(kf, s.name, s.usage)
	}
	return a, nil
}

// parse parses args; a stray argument is an error, as is any flag error.
func (a *agentFlags) parse(args []string) error {
	if err := a.fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w (see meridian agent -h)", err)
	}
	if a.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see meridian agent -h)", a.fs.Arg(0))
	}
	return nil
}

// set calls fn for every key flag the user gave, in lexical flag order.
func (a *agentFlags) set(fn func(name, key string, val any)) {
	byName := make(map[string]flagSpec, len(a.specs))
	for _, s := range a.specs {
		byName[s.name] = s
	}
	a.fs.Visit(func(f *flag.Flag) {
		kf, ok := a.keys[f.Name]
		if !ok {
			return
		}
		fn(f.Name, byName[f.Name].key, kf.val)
	})
}

// writeUsage writes `meridian agent -h`: one line per flag, grouped, with
// defaults.
func (a *agentFlags) writeUsage(w io.Writer) {
	def := Default()
	cols := make([]string, len(a.specs))
	width := 0
	for i, s := range a.specs {
		cols[i] = "-" + s.name
		if s.arg != "" {
			cols[i] += " " + s.arg
		}
		width = max(width, len(cols[i]))
	}
	var b strings.Builder
	b.WriteString("Usage: meridian agent [flags]\n\n")
	b.WriteString("Runs a Meridian agent. Flags override -hcl fragments, which override MERIDIAN_*\n")
	b.WriteString("environment variables, which override -config-file and -config-dir files,\nwhich override defaults.\n")
	group := ""
	for i, s := range a.specs {
		if s.group != group {
			group = s.group
			fmt.Fprintf(&b, "\n%s:\n", group)
		}
		line := fmt.Sprintf("  %-*s  %s", width, cols[i], s.usage)
		if d := flagDefault(def, s); d != "" {
			line += " (default " + d + ")"
		}
		b.WriteString(line + "\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// flagDefault is the default shown for a flag: its spec's, or the non-zero
// value Default() has for its key.
func flagDefault(def *Config, s flagSpec) string {
	if s.def == "-" {
		return ""
	}
	if s.def != "" || s.key == "" {
		return s.def
	}
	v := reflect.ValueOf(def).Elem()
	for part := range strings.SplitSeq(s.key, ".") {
		f, _ := lookupField(v.Type(), part)
		v = v.Field(f.index)
	}
	if v.IsZero() {
		return ""
	}
	return fmt.Sprint(v.Interface())
}
