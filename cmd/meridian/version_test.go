package main

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/agent"
)

// `consul version -format=json` prints exactly these keys; tools decode
// them.
func TestVersionJSONHasConsulsShape(t *testing.T) {
	code, out, errOut := meridian("version", "-format=json")
	if code != 0 {
		t.Fatalf("meridian version -format=json exit %d, stderr %q", code, errOut)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("meridian version -format=json printed %q, not JSON: %v", out, err)
	}
	keys := slices.Sorted(maps.Keys(raw))
	if want := []string{"BuildDate", "FIPS", "Prerelease", "Revision", "Version"}; !slices.Equal(keys, want) {
		t.Errorf("version JSON keys = %v, want %v", keys, want)
	}
	var v struct {
		Version   string
		BuildDate time.Time
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version JSON does not decode as Consul's: %v", err)
	}
	if v.Version != agent.Version || v.BuildDate.IsZero() {
		t.Errorf("version JSON = %+v, want Version %q and a BuildDate", v, agent.Version)
	}
	if code, _, errOut := meridian("version", "-format=yaml"); code != 1 || !strings.Contains(errOut, `-format must be pretty or json, got "yaml"`) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("meridian version -format=yaml = exit %d, stderr %q; want 1 and one line", code, errOut)
	}
}
