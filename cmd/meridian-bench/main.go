// Command meridian-bench is Meridian's own load tool. It drives any
// Consul-compatible HTTP address, Meridian or a real Consul agent, so one run
// can measure both side by side with the same client and the same clock.
//
// Each mode runs a bounded loop (by -duration and, where it applies, -n),
// prints one human-readable line, then a final machine-readable line:
//
//	RESULT mode=get rps=41234.5 p50_ms=1.402 p90_ms=2.310 p99_ms=4.877 errors=0 n=412345
//
// Latencies are those of successful requests; n counts every completed
// request, successful or not; rps is n divided by the wall time of the run.
// The exit status is 0 when errors=0, 1 when the run had errors or could not
// be set up, and 2 for a bad command line.
//
// Examples, simplest first:
//
//	meridian-bench register -addr 127.0.0.1:8500 -service web -instances 20
//	meridian-bench get -addr 127.0.0.1:8500 -path '/v1/health/service/web?passing' -c 64 -duration 10s
//	meridian-bench kv-put -addr 127.0.0.1:8500 -c 32 -duration 10s -size 100 -prefix bench/
//	meridian-bench kv-get -addr 127.0.0.1:8500 -c 16 -key bench/k -stale
//	meridian-bench blocking -write-addr 127.0.0.81:8500 -watch-addr 127.0.0.82:8500 -n 200
//	meridian-bench blocking -kind catalog -addr 127.0.0.1:8500 -n 100
//	meridian-bench register -addr 127.0.0.1:8500 -service web -instances 20 -deregister
//	meridian-bench slowloris -addr 127.0.0.1:8500 -slow 1000 -sources 5 -c 4 -duration 30s
//
// The tool is meant for loopback targets; it warns, but goes ahead, when an
// address is not a loopback one. It imports only the standard library, so it
// never depends on the code it measures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"
)

// Exit statuses of the command.
const (
	exitOK    = 0 // the run finished with errors=0
	exitFail  = 1 // the run had errors, or could not be set up
	exitUsage = 2 // the command line was wrong
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// mode is one subcommand: its name, a one-line summary, usage examples, the
// flags it adds to the common ones, and what it runs.
type mode struct {
	name     string
	summary  string
	examples []string
	// setup registers the mode's own flags and returns the function that
	// validates them and runs the mode once flags are parsed.
	setup func(fs *flag.FlagSet, c *common) func(ctx context.Context, out *output) error
}

// modes lists the subcommands in the order usage shows them.
func modes() []mode {
	return []mode{getMode(), kvPutMode(), kvGetMode(), blockingMode(), herdMode(), floorServerMode(), registerMode(), fillMode(), syncMode(), slowlorisMode()}
}

// run parses args (without the program name), runs the chosen mode and
// returns the exit status. Results go to stdout; warnings and errors to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "meridian-bench: missing mode; see meridian-bench -h")
		return exitUsage
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" || name == "help" {
		topUsage(stdout)
		return exitOK
	}
	var m *mode
	for _, cand := range modes() {
		if cand.name == name {
			m = &cand
			break
		}
	}
	if m == nil {
		fmt.Fprintf(stderr, "meridian-bench: unknown mode %q; see meridian-bench -h\n", name)
		return exitUsage
	}

	fs := flag.NewFlagSet("meridian-bench "+m.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported on one line below
	// Defaults for modes that do not register every common flag.
	c := &common{addr: "127.0.0.1:8500", conns: 1, duration: time.Minute, timeout: 10 * time.Second}
	start := m.setup(fs, c)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			modeUsage(stdout, m, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "meridian-bench %s: %v (see meridian-bench %s -h)\n", m.name, err, m.name)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "meridian-bench %s: unexpected argument %q (see meridian-bench %s -h)\n", m.name, fs.Arg(0), m.name)
		return exitUsage
	}
	if err := c.validate(); err != nil {
		fmt.Fprintf(stderr, "meridian-bench %s: %v\n", m.name, err)
		return exitUsage
	}
	out := &output{mode: m.name, stdout: stdout, stderr: stderr}
	err := start(ctx, out)
	var uerr usageError
	switch {
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "meridian-bench %s: %v\n", m.name, err)
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "meridian-bench %s: %v\n", m.name, err)
		return exitFail
	case out.errors > 0:
		return exitFail
	}
	return exitOK
}

// usageError is a flag value that parsed but makes no sense; it exits with
// exitUsage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// badFlag returns a usageError naming the flag.
func badFlag(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

// common holds the flags every mode has. Which of them a mode registers is up
// to the mode (blocking has two addresses, register has no -duration default
// worth changing), but validation is shared.
type common struct {
	addr     string        // host:port or http://host:port of the agent
	conns    int           // -c: concurrent workers, each with its own keep-alive connection
	duration time.Duration // -duration: how long the loop runs at most
	n        int64         // -n: how many requests (or samples) at most; 0 means no count limit
	timeout  time.Duration // -timeout: per request
	token    string        // -token: sent as X-Consul-Token when set
}

// addCommon registers the common flags with the given defaults.
func addCommon(fs *flag.FlagSet, c *common, conns int, duration time.Duration, n int64) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8500", "`address` of the agent's HTTP API (host:port or http://host:port)")
	fs.IntVar(&c.conns, "c", conns, "concurrent workers, one keep-alive connection each")
	fs.DurationVar(&c.duration, "duration", duration, "stop issuing requests after this long")
	fs.Int64Var(&c.n, "n", n, "stop after this many requests (0: only -duration bounds the run)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of each request")
	fs.StringVar(&c.token, "token", "", "ACL token sent as X-Consul-Token")
}

// validate checks the common flags, naming the flag in each error.
func (c *common) validate() error {
	switch {
	case c.conns < 1:
		return fmt.Errorf("-c must be at least 1, got %d", c.conns)
	case c.conns > 10000:
		return fmt.Errorf("-c must be at most 10000, got %d", c.conns)
	case c.duration <= 0:
		return fmt.Errorf("-duration must be positive, got %v", c.duration)
	case c.n < 0:
		return fmt.Errorf("-n must not be negative, got %d", c.n)
	case c.timeout <= 0:
		return fmt.Errorf("-timeout must be positive, got %v", c.timeout)
	}
	return nil
}

// baseURL turns the value of an address flag into "http://host:port" with no
// trailing slash, warning on stderr when the host is not a loopback address.
func baseURL(flagName, addr string, warn io.Writer) (string, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", badFlag("-%s %q is not host:port or http://host:port", flagName, addr)
	}
	if u.Path != "" && u.Path != "/" {
		return "", badFlag("-%s %q must not have a path", flagName, addr)
	}
	if !isLoopback(u.Hostname()) {
		fmt.Fprintf(warn, "meridian-bench: warning: -%s %s is not a loopback address; this tool is meant for local targets\n", flagName, u.Host)
	}
	return u.Scheme + "://" + u.Host, nil
}

// isLoopback reports whether host names the loopback interface. Names other
// than "localhost" are not resolved, so they count as not loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// topUsage prints the overall usage with an example per mode.
func topUsage(w io.Writer) {
	fmt.Fprint(w, `meridian-bench drives a Consul-compatible HTTP API (Meridian or Consul) and
reports throughput and latency percentiles.

usage: meridian-bench <mode> [flags]
       meridian-bench <mode> -h     flags of one mode

modes:
`)
	for _, m := range modes() {
		fmt.Fprintf(w, "  %-9s %s\n", m.name, m.summary)
	}
	fmt.Fprintln(w, "\nexamples:")
	for _, m := range modes() {
		for _, ex := range m.examples {
			fmt.Fprintf(w, "  meridian-bench %s %s\n", m.name, ex)
		}
	}
	fmt.Fprint(w, `
Every run prints one human line, then:
  RESULT mode=<mode> rps=<n/s> p50_ms=<ms> p90_ms=<ms> p99_ms=<ms> errors=<count> n=<count>
The exit status is 0 when errors=0, 1 otherwise, 2 for a bad command line.
`)
}

// modeUsage prints the usage of one mode: summary, examples and flags.
func modeUsage(w io.Writer, m *mode, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: meridian-bench %s [flags]\n\n%s\n\nexamples:\n", m.name, m.summary)
	for _, ex := range m.examples {
		fmt.Fprintf(w, "  meridian-bench %s %s\n", m.name, ex)
	}
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
