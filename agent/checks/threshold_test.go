package checks

import (
	"strings"
	"testing"
)

func TestThresholds(t *testing.T) {
	t.Parallel()
	const (
		p = StatusPassing
		w = StatusWarning
		c = StatusCritical
	)
	tests := []struct {
		name                    string
		success, warn, critical int
		in                      string // one letter per raw result: p, w, c
		want                    string // reported status per result: p, w, c, or - when held back
	}{
		{"no thresholds", 0, 0, 0, "pcwpc", "pcwpc"},
		{"thresholds of one", 1, 1, 1, "pcwpc", "pcwpc"},
		{"first result reported at once", 3, 3, 3, "c", "c"},
		{"first pass reported at once", 3, 3, 3, "p", "p"},
		{"success needs a run", 2, 0, 0, "cpcppp", "c-c-pp"},
		{"warning counts as success", 2, 0, 0, "cwpw", "c-pw"},
		{"failures need a run", 0, 0, 3, "pccpcccc", "p--p--cc"},
		{"both", 2, 0, 2, "pcpccpp", "p---c-p"},
		{"warning before critical", 0, 1, 3, "pccccpc", "pwwccpw"},
		{"warning threshold two", 0, 2, 3, "pcccp", "p-wcp"},
	}
	letter := map[byte]string{'p': p, 'w': w, 'c': c}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{SuccessBeforePassing: tc.success, FailuresBeforeWarning: tc.warn, FailuresBeforeCritical: tc.critical}.withDefaults()
			th := newThresholds(spec)
			var got strings.Builder
			for i := range len(tc.in) {
				status, ok := th.apply(letter[tc.in[i]])
				if !ok {
					got.WriteByte('-')
					continue
				}
				got.WriteByte(status[0])
			}
			if got.String() != tc.want {
				t.Errorf("apply(%q) with success=%d warn=%d critical=%d reported %q, want %q",
					tc.in, tc.success, tc.warn, tc.critical, got.String(), tc.want)
			}
		})
	}
}
