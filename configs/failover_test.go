package configs

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestLoadFailoverPolicies(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"a.yaml": "data_dir: /d\nfailover:\n  web: {nearest: 2, datacenters: [dc3]}\n  '*': {nearest: 1}\n",
		"b.json": `{"failover": {"api": {"datacenters": ["dc2", "dc4"]}}}`,
	})
	c := mustLoad(t, []string{"-config-dir", dir}, nil)
	for _, tc := range []struct {
		service string
		want    FailoverPolicy
	}{
		{"web", FailoverPolicy{Nearest: 2, Datacenters: []string{"dc3"}}},
		{"WEB", FailoverPolicy{Nearest: 2, Datacenters: []string{"dc3"}}},
		{"api", FailoverPolicy{Datacenters: []string{"dc2", "dc4"}}},
		{"db", FailoverPolicy{Nearest: 1}},
	} {
		got, ok := c.FailoverFor(tc.service)
		if !ok || got.Nearest != tc.want.Nearest || !slices.Equal(got.Datacenters, tc.want.Datacenters) {
			t.Errorf("FailoverFor(%q) = %+v, %v; want %+v", tc.service, got, ok, tc.want)
		}
	}
}

func TestLoadFailoverRefusesBadPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"negative nearest", "failover: {web: {nearest: -1}}", "failover.web.nearest: must not be negative, got -1"},
		{"empty policy", "failover: {web: {nearest: 0}}", "failover.web: names no datacenter"},
		{"bad dc name", "failover: {web: {datacenters: [dc.2]}}", `"dc.2" is not a datacenter name`},
		{"unknown key", "failover: {web: {nearst: 1}}", `failover.web.nearst: unknown key, did you mean "nearest"?`},
		{"not a mapping", "failover: [web]", "failover: must be a mapping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, map[string]string{"a.yaml": "data_dir: /d\n" + tc.yaml + "\n"})
			_, err := Load([]string{"-config-dir", dir}, nil, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load(%s) = %v, want an error containing %q", tc.yaml, err, tc.want)
			}
		})
	}
}
