package checks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// Errors returned by Start and SetTTL.
var (
	// ErrNotTTL is returned by SetTTL on a runner whose check is not a ttl
	// check.
	ErrNotTTL = errors.New("not a ttl check")
	// ErrStopped is returned by SetTTL once Stop has been called.
	ErrStopped = errors.New("check runner stopped")
	// ErrInvalidStatus is returned by SetTTL for a status other than
	// passing, warning and critical.
	ErrInvalidStatus = errors.New("invalid check status")
	// ErrNilNotify is returned by Start when notify is nil.
	ErrNilNotify = errors.New("nil notify func")
)

// Notify receives a check's result after the thresholds are applied. It is
// called from the runner's goroutine, one call at a time per runner, often
// with an unchanged status (the agent dedups). A result held back by a
// threshold is not delivered at all. Notify must not call Stop on its own
// runner, and must not wait on a lock held by a caller of that runner's
// Stop or SetTTL: both wait for the runner's goroutine.
type Notify func(checkID, status, output string)

// Runner runs one check until Stopped: it probes an http, tcp or script
// check every Interval, or for a ttl check waits for SetTTL and turns the
// check critical when the TTL lapses. Its methods are safe for concurrent
// use.
type Runner struct {
	spec   Spec
	kind   Kind
	notify Notify
	log    *slog.Logger

	client *http.Client       // http checks only
	ttlCh  chan ttlUpdate     // ttl checks only
	ctx    context.Context    // cancelled by Stop; parent of every probe
	cancel context.CancelFunc // stops the goroutine
	done   chan struct{}      // closed when the goroutine has returned
}

type ttlUpdate struct {
	status, output string
	applied        chan struct{}
}

// Start validates spec and starts its runner. For an http, tcp or script
// check the first probe runs at once. The second starts a random 3/4 to 1
// Interval after the first ended, so that checks registered together (at
// agent start) drift apart; each later one a full Interval after the
// previous one ended. A ttl check reports nothing until SetTTL is called or the TTL
// lapses; until then its status is whatever the agent registered (Consul's
// default is critical). A nil logger discards logs.
func Start(spec Spec, notify Notify, logger *slog.Logger) (*Runner, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if notify == nil {
		return nil, fmt.Errorf("start check %q: %w", spec.CheckID, ErrNilNotify)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	spec = spec.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{
		spec:   spec,
		kind:   spec.Kind(),
		notify: notify,
		log:    logger.With("check", spec.CheckID, "kind", string(spec.Kind())),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	switch r.kind {
	case KindTTL:
		r.ttlCh = make(chan ttlUpdate)
		go r.runTTL()
	case KindHTTP:
		r.client = newHTTPClient(spec)
		go r.runProbes(r.probeHTTP)
	case KindTCP:
		go r.runProbes(r.probeTCP)
	case KindScript:
		go r.runProbes(r.probeScript)
	}
	return r, nil
}

// Kind reports the kind of check the runner runs.
func (r *Runner) Kind() Kind { return r.kind }

// Stop cancels a probe in flight (killing a script's process group), waits
// for the runner's goroutine to return and releases its connections. No
// Notify call starts after Stop returns. Safe to call more than once.
func (r *Runner) Stop() {
	r.cancel()
	<-r.done
	if r.client != nil {
		r.client.CloseIdleConnections()
	}
}

// SetTTL records status and output for a ttl check now and re-arms its TTL
// timer: Notify is called with them (output truncated to OutputMaxSize)
// before SetTTL returns. It fails with ErrNotTTL on other kinds, with
// ErrInvalidStatus for an unknown status and with ErrStopped after Stop.
func (r *Runner) SetTTL(status, output string) error {
	if r.kind != KindTTL {
		return fmt.Errorf("set ttl of check %q (kind %s): %w", r.spec.CheckID, r.kind, ErrNotTTL)
	}
	switch status {
	case StatusPassing, StatusWarning, StatusCritical:
	default:
		return fmt.Errorf("set ttl of check %q to %q: %w", r.spec.CheckID, status, ErrInvalidStatus)
	}
	if r.ctx.Err() != nil {
		return fmt.Errorf("set ttl of check %q: %w", r.spec.CheckID, ErrStopped)
	}
	u := ttlUpdate{status: status, output: output, applied: make(chan struct{})}
	select {
	case r.ttlCh <- u:
	case <-r.ctx.Done():
		return fmt.Errorf("set ttl of check %q: %w", r.spec.CheckID, ErrStopped)
	}
	// Once received, the update is applied before the goroutine looks at
	// anything else, Stop included.
	<-u.applied
	return nil
}

// runTTL owns a ttl check's timer and last output.
func (r *Runner) runTTL() {
	defer close(r.done)
	timer := time.NewTimer(r.spec.TTL)
	defer timer.Stop()
	var lastOutput string
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-timer.C:
			r.log.Warn("check missed its ttl, now critical", "ttl", r.spec.TTL)
			out := "TTL expired"
			if lastOutput != "" {
				out += " (last output before timeout follows): " + lastOutput
			}
			r.notify(r.spec.CheckID, StatusCritical, out)
		case u := <-r.ttlCh:
			lastOutput = truncateString(u.output, r.spec.OutputMaxSize)
			r.log.Debug("check status set", "status", u.status)
			r.notify(r.spec.CheckID, u.status, lastOutput)
			// Since Go 1.23 Reset also drops an expiry not yet received.
			timer.Reset(r.spec.TTL)
			close(u.applied)
		}
	}
}

// probeFunc runs one probe bounded by ctx and returns its raw status and
// output.
type probeFunc func(ctx context.Context) (status, output string)

// runProbes runs probe now and then after each pause (see Start), until
// Stop.
func (r *Runner) runProbes(probe probeFunc) {
	defer close(r.done)
	th := newThresholds(r.spec)
	// Consul staggers the first probe by up to an Interval; the agent wants
	// the first result at once, so the stagger moves to the second pause.
	pause := r.spec.Interval
	if stagger := pause / 4; stagger > 0 {
		pause -= rand.N(stagger)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(r.ctx, r.spec.Timeout)
		status, output := probe(ctx)
		cancel()
		if r.ctx.Err() != nil {
			return // stopped mid-probe: the result says nothing about the target
		}
		if report, ok := th.apply(status); ok {
			r.notify(r.spec.CheckID, report, output)
		} else {
			r.log.Debug("check result held back by threshold", "status", status)
		}
		timer.Reset(pause)
		pause = r.spec.Interval
	}
}
