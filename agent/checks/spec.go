package checks

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Statuses a check reports, as Consul spells them.
const (
	StatusPassing  = "passing"
	StatusWarning  = "warning"
	StatusCritical = "critical"
)

// Defaults applied by Start to fields left zero.
const (
	// DefaultTimeout bounds one http, tcp or script probe when Spec.Timeout
	// is zero; a shorter Interval lowers it to the Interval, so that with
	// the defaults a probe ends before the next one is due.
	DefaultTimeout = 10 * time.Second

	// DefaultOutputMaxSize is the number of output bytes kept per result
	// (Consul's 4 KB); the rest is cut and a note says so.
	DefaultOutputMaxSize = 4096

	// MinInterval is the shortest Interval the agent runs a check at
	// (Consul's floor): a shorter one is raised to it with a warning, so a
	// check of 1ns cannot spin a core or hammer its target. This package
	// runs whatever Interval it is given, so that its tests run fast.
	MinInterval = time.Second

	// DefaultMethod is the HTTP method of an http check.
	DefaultMethod = http.MethodGet

	// UserAgent is sent by http checks unless Spec.Header sets one.
	UserAgent = "Meridian Health Check"
)

// ErrInvalidSpec is wrapped by every error Spec.Validate returns.
var ErrInvalidSpec = errors.New("invalid check spec")

// Kind names the way a check finds its status.
type Kind string

// The kinds of check. A Spec's kind is set by which of its fields is set.
const (
	KindHTTP   Kind = "http"   // Spec.HTTP: an HTTP request, status from the response code
	KindTCP    Kind = "tcp"    // Spec.TCP: a TCP connect
	KindTTL    Kind = "ttl"    // Spec.TTL: no probe; the status is pushed through Runner.SetTTL
	KindScript Kind = "script" // Spec.Args: a command, status from its exit code
)

// Spec describes one check. Exactly one of HTTP, TCP, TTL and Args is set;
// it decides the Kind. Start copies the Spec; the caller may reuse it.
type Spec struct {
	// CheckID names the check in every Notify call. Required.
	CheckID string

	// HTTP is the URL (http or https) an http check requests.
	HTTP string
	// Method is the request method; DefaultMethod when empty.
	Method string
	// Header is added to the request. A "Host" entry sets the request's
	// Host; "User-Agent" replaces UserAgent.
	Header map[string][]string
	// Body is sent as the request body.
	Body string
	// TLSSkipVerify accepts any certificate from an https target.
	TLSSkipVerify bool

	// TCP is the host:port a tcp check connects to.
	TCP string

	// TTL is how long a ttl check keeps the status last given to SetTTL;
	// when it lapses without a new SetTTL the check turns critical.
	TTL time.Duration

	// Args is the argv of a script check: Args[0] is looked up in PATH and
	// run without a shell.
	Args []string

	// Interval is the pause between the end of one probe and the start of
	// the next. Required for http, tcp and script checks; unused by ttl.
	// The agent raises it to MinInterval; this package does not, so tests
	// can run fast.
	Interval time.Duration
	// Timeout bounds one probe, including reading an HTTP body. Zero means
	// the smaller of DefaultTimeout and Interval. A Timeout set explicitly
	// is honoured even when longer than Interval (Consul does the same):
	// probes never overlap, the next one simply starts later.
	Timeout time.Duration

	// SuccessBeforePassing is the number of consecutive passing (or
	// warning) results needed before such a result is reported after a
	// failure. 0 or 1 report at once.
	SuccessBeforePassing int
	// FailuresBeforeWarning is the number of consecutive critical results
	// after which they are reported as warning until FailuresBeforeCritical
	// is reached. 0 means the same as FailuresBeforeCritical.
	FailuresBeforeWarning int
	// FailuresBeforeCritical is the number of consecutive critical results
	// needed before critical is reported after a success. 0 or 1 report at
	// once.
	FailuresBeforeCritical int

	// OutputMaxSize is the number of output bytes kept per result;
	// DefaultOutputMaxSize when zero.
	OutputMaxSize int
}

// Kind reports the check's kind from the first of HTTP, TCP, TTL and Args
// that is set, or "" when none is. Validate rejects a Spec with several.
func (s Spec) Kind() Kind {
	kinds := s.kinds()
	if len(kinds) == 0 {
		return ""
	}
	return kinds[0]
}

func (s Spec) kinds() []Kind {
	var k []Kind
	if s.HTTP != "" {
		k = append(k, KindHTTP)
	}
	if s.TCP != "" {
		k = append(k, KindTCP)
	}
	if s.TTL != 0 {
		k = append(k, KindTTL)
	}
	if len(s.Args) > 0 {
		k = append(k, KindScript)
	}
	return k
}

// Validate reports the first problem found in s, as a one-line error that
// names the field and wraps ErrInvalidSpec.
func (s Spec) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidSpec, field, fmt.Sprintf(format, args...))
	}
	if s.CheckID == "" {
		return bad("CheckID", "must not be empty")
	}
	kinds := s.kinds()
	switch len(kinds) {
	case 0:
		return bad("kind", "one of HTTP, TCP, TTL or Args must be set")
	case 1:
	default:
		return bad("kind", "only one of HTTP, TCP, TTL or Args may be set, got %s and %s", kinds[0], kinds[1])
	}
	switch {
	case s.Interval < 0:
		return bad("Interval", "must not be negative, got %s", s.Interval)
	case s.Timeout < 0:
		return bad("Timeout", "must not be negative, got %s", s.Timeout)
	case s.SuccessBeforePassing < 0:
		return bad("SuccessBeforePassing", "must not be negative, got %d", s.SuccessBeforePassing)
	case s.FailuresBeforeWarning < 0:
		return bad("FailuresBeforeWarning", "must not be negative, got %d", s.FailuresBeforeWarning)
	case s.FailuresBeforeCritical < 0:
		return bad("FailuresBeforeCritical", "must not be negative, got %d", s.FailuresBeforeCritical)
	case s.FailuresBeforeWarning > s.FailuresBeforeCritical:
		return bad("FailuresBeforeWarning", "must not exceed FailuresBeforeCritical (%d), got %d",
			s.FailuresBeforeCritical, s.FailuresBeforeWarning)
	case s.OutputMaxSize < 0:
		return bad("OutputMaxSize", "must not be negative, got %d", s.OutputMaxSize)
	}
	kind := kinds[0]
	if kind == KindTTL {
		if s.TTL < 0 {
			return bad("TTL", "must be positive, got %s", s.TTL)
		}
		return nil
	}
	if s.Interval == 0 {
		return bad("Interval", "required for a %s check", kind)
	}
	switch kind {
	case KindHTTP:
		return validateHTTP(s, bad)
	case KindTCP:
		host, port, err := net.SplitHostPort(s.TCP)
		if err != nil {
			return bad("TCP", "want host:port, got %q", s.TCP)
		}
		if host == "" || port == "" {
			return bad("TCP", "want host:port with both parts, got %q", s.TCP)
		}
	case KindScript:
		if s.Args[0] == "" {
			return bad("Args", "the program (Args[0]) must not be empty")
		}
	}
	return nil
}

func validateHTTP(s Spec, bad func(field, format string, args ...any) error) error {
	u, err := url.Parse(s.HTTP)
	if err != nil {
		return bad("HTTP", "malformed URL %q", s.HTTP)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("HTTP", "scheme must be http or https, got %q", s.HTTP)
	}
	if u.Host == "" {
		return bad("HTTP", "URL has no host: %q", s.HTTP)
	}
	if s.Method != "" {
		// NewRequest checks the method is a valid token.
		if _, err := http.NewRequest(s.Method, s.HTTP, nil); err != nil {
			return bad("Method", "invalid method %q", s.Method)
		}
	}
	for name := range s.Header {
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			return bad("Header", "invalid header name %q", name)
		}
	}
	return nil
}

// withDefaults returns a copy of s, owning its maps and slices, with zero
// fields set to their defaults.
func (s Spec) withDefaults() Spec {
	s.Args = append([]string(nil), s.Args...)
	if s.Header != nil {
		s.Header = http.Header(s.Header).Clone()
	}
	if s.Method == "" {
		s.Method = DefaultMethod
	}
	if s.OutputMaxSize == 0 {
		s.OutputMaxSize = DefaultOutputMaxSize
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
		if s.Interval > 0 && s.Interval < s.Timeout {
			s.Timeout = s.Interval
		}
	}
	if s.FailuresBeforeWarning == 0 {
		s.FailuresBeforeWarning = s.FailuresBeforeCritical
	}
	return s
}
