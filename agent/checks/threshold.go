package checks

// thresholds applies SuccessBeforePassing, FailuresBeforeWarning and
// FailuresBeforeCritical to a stream of raw probe results, the way Consul's
// agent does:
//
//   - passing and warning both count as successes; critical counts as a
//     failure. Each kind of result resets the other's counter.
//   - a success is reported (with its own status, so a warning stays a
//     warning) once successes reach SuccessBeforePassing;
//   - a failure is reported as critical once failures reach
//     FailuresBeforeCritical, else as warning once they reach
//     FailuresBeforeWarning, else not at all;
//   - the counters start at their thresholds, so the very first result is
//     reported as it is: a check is not held at its initial status for
//     several intervals after registration.
//
// A result that is not reported leaves the last reported status and output
// in place. Not safe for concurrent use: the runner's goroutine owns it.
type thresholds struct {
	successBeforePassing   int
	failuresBeforeWarning  int
	failuresBeforeCritical int

	successes int
	failures  int
}

func newThresholds(s Spec) *thresholds {
	return &thresholds{
		successBeforePassing:   s.SuccessBeforePassing,
		failuresBeforeWarning:  s.FailuresBeforeWarning,
		failuresBeforeCritical: s.FailuresBeforeCritical,
		successes:              s.SuccessBeforePassing,
		failures:               s.FailuresBeforeCritical,
	}
}

// apply records one raw result and returns the status to report, and
// whether to report anything at all.
func (t *thresholds) apply(status string) (string, bool) {
	if status == StatusPassing || status == StatusWarning {
		t.failures = 0
		if t.successes < t.successBeforePassing {
			t.successes++
		}
		return status, t.successes >= t.successBeforePassing
	}
	t.successes = 0
	if t.failures < t.failuresBeforeCritical {
		t.failures++
	}
	switch {
	case t.failures >= t.failuresBeforeCritical:
		return StatusCritical, true
	case t.failures >= t.failuresBeforeWarning:
		return StatusWarning, true
	}
	return "", false
}
