// Package checks runs an agent's local health checks.
//
// Where it sits (DESIGN.md): under package agent, which owns one Runner per
// registered check. A Runner finds the check's status and hands every result
// to a Notify callback; the agent records it in its local state and the
// anti-entropy sync writes changes to the catalog. This package knows
// nothing of the catalog, of services or of the HTTP API.
//
// The kinds, with Consul's semantics (see Spec):
//
//	http    an HTTP request every Interval: 2xx passing, 429 warning, else critical
//	tcp     a TCP connect every Interval: passing if it opens within Timeout
//	script  Args run without a shell every Interval: exit 0 passing, 1 warning,
//	        else critical; the process group is killed on timeout
//	ttl     no probe: the status comes from SetTTL, and turns critical when
//	        the TTL lapses without one
//
// The simplest use:
//
//	r, err := checks.Start(checks.Spec{
//		CheckID:  "service:web",
//		HTTP:     "http://127.0.0.1:8080/health",
//		Interval: 10 * time.Second,
//	}, func(id, status, output string) { /* record */ }, logger)
//	...
//	r.Stop()
//
// SuccessBeforePassing, FailuresBeforeWarning and FailuresBeforeCritical
// are applied to probe results before Notify sees them, as Consul applies
// them (the first result is always reported; see Spec). They do not apply
// to ttl checks, whose status is set by the client, also as in Consul.
// Unlike Consul, a script timeout counts as an ordinary critical result for
// the thresholds rather than bypassing them.
//
// A Runner's methods are safe for concurrent use. Each Runner has one
// goroutine, which ends when Stop returns.
package checks
