package federation

import (
	"slices"
	"testing"
)

func TestFailoverOrder(t *testing.T) {
	sorted := []string{"dc1", "dc3", "dc2", "dc4"} // local first, then by distance
	tests := []struct {
		name string
		f    Failover
		want []string
	}{
		{"none", Failover{}, nil},
		{"nearest one", Failover{NearestN: 1}, []string{"dc3"}},
		{"nearest beyond the known", Failover{NearestN: 9}, []string{"dc3", "dc2", "dc4"}},
		{"list only, in its order", Failover{Datacenters: []string{"dc4", "dc2"}}, []string{"dc4", "dc2"}},
		{"nearest then list, each once", Failover{NearestN: 1, Datacenters: []string{"dc3", "dc4", "dc1", "dc4"}}, []string{"dc3", "dc4"}},
		{"unknown listed DC kept", Failover{Datacenters: []string{"dc9"}}, []string{"dc9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Order(sorted, "dc1"); !slices.Equal(got, tc.want) {
				t.Errorf("%+v.Order(%v) = %v, want %v", tc.f, sorted, got, tc.want)
			}
		})
	}
}
