//go:build containers

package containers

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// retryEvery is the pause between two attempts of a wait: the agents run at
// production timings, so polling faster only adds load.
const retryEvery = 250 * time.Millisecond

// permanentError is an error no retry can cure (an agent's process exited):
// a wait fails at once on it.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// permanent marks err as one no retry can cure.
func permanent(err error) error { return permanentError{err} }

// eventually calls fn until it returns nil and returns how long that took;
// once timeout has passed, or at once when fn's error is permanent, it fails
// t with what was awaited and fn's last error. fn must bound its own calls
// (every client here has a timeout), so the wait overruns timeout by at most
// one attempt.
func eventually(t testing.TB, timeout time.Duration, what string, fn func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := fn()
		if err == nil {
			return time.Since(start)
		}
		if _, ok := errors.AsType[permanentError](err); ok {
			t.Fatalf("%s: %v", what, err)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(retryEvery) // a retry interval, not synchronisation: fn decides
	}
}

// stable waits until fn succeeds n times in a row, a failure starting the
// count again, and returns how long that took. Once timeout has passed it
// fails t with fn's last error and the longest run of successes.
func stable(t testing.TB, timeout time.Duration, n int, what string, fn func() error) time.Duration {
	t.Helper()
	start := time.Now()
	row, best, failures := 0, 0, 0
	var lastErr error
	for row < n {
		if err := fn(); err != nil {
			if _, ok := errors.AsType[permanentError](err); ok {
				t.Fatalf("%s: %v", what, err)
			}
			row, lastErr = 0, err
			failures++
		} else {
			row++
			best = max(best, row)
		}
		if row < n && time.Since(start) > timeout {
			t.Fatalf("%s: no %d successes in a row within %v (best %d, %d failures); last error: %v", what, n, timeout, best, failures, lastErr)
		}
		if row < n {
			time.Sleep(retryEvery)
		}
	}
	if failures > 0 {
		t.Logf("%s: %d in a row after %v and %d failed attempts (last: %v)", what, n, time.Since(start).Round(time.Millisecond), failures, lastErr)
	}
	return time.Since(start)
}

// step is one stage of a scenario whose stages build on each other.
type step struct {
	name string
	fn   func(t *testing.T)
}

// steps runs each step as a subtest, in order, and stops at the first that
// fails: the later ones would only fail for the same reason, each after its
// full timeout.
func steps(t *testing.T, all ...step) {
	t.Helper()
	for i, s := range all {
		if !t.Run(s.name, s.fn) {
			var rest []string
			for _, r := range all[i+1:] {
				rest = append(rest, r.name)
			}
			if len(rest) > 0 {
				t.Errorf("not run, as %q failed: %q", s.name, rest)
			}
			return
		}
	}
}

// lookup is one DNS answer as a test sees it.
type lookup struct {
	rcode int
	ips   []string // the A records' addresses, sorted
	txt   []string // the strings of the additional section's TXT records
	took  time.Duration
}

func (l lookup) String() string {
	s := fmt.Sprintf("%s %v", dns.RcodeToString[l.rcode], l.ips)
	if len(l.txt) > 0 {
		s += fmt.Sprintf(" TXT %q", l.txt)
	}
	return s + fmt.Sprintf(" in %v", l.took.Round(time.Millisecond))
}

// lookupA asks server (host:port) for the A records of name over UDP. The
// error is set only when no answer came within timeout.
func lookupA(server, name string, timeout time.Duration) (lookup, error) {
	c := &dns.Client{Net: "udp", Timeout: timeout}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	start := time.Now()
	r, _, err := c.Exchange(m, server)
	l := lookup{took: time.Since(start)}
	if err != nil {
		return l, fmt.Errorf("dns %s A @%s: %w (after %v)", name, server, err, l.took.Round(time.Millisecond))
	}
	l.rcode = r.Rcode
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			l.ips = append(l.ips, a.A.String())
		}
	}
	slices.Sort(l.ips)
	for _, rr := range r.Extra {
		if txt, ok := rr.(*dns.TXT); ok {
			l.txt = append(l.txt, txt.Txt...)
		}
	}
	return l, nil
}

// resolves checks that name resolves at server to exactly ips.
func resolves(server, name string, ips ...string) error {
	l, err := lookupA(server, name, requestTimeout)
	if err != nil {
		return err
	}
	want := slices.Sorted(slices.Values(ips))
	if l.rcode != dns.RcodeSuccess || !slices.Equal(l.ips, want) {
		return fmt.Errorf("dns %s A @%s = %v, want NOERROR %v", name, server, l, want)
	}
	return nil
}
