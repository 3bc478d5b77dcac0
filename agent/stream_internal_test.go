package agent

import (
	"errors"
	"reflect"
	"testing"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/server"
)

func TestApplyHealthEvent(t *testing.T) {
	inst := func(node string) *catalog.CheckServiceNode {
		return &catalog.CheckServiceNode{Node: &catalog.Node{Node: node}, Service: &catalog.Service{ID: "web", Service: "web"}}
	}
	a, b, c, b2 := inst("a"), inst("b"), inst("c"), inst("b")
	key := server.InstanceKey
	had := map[string]*catalog.CheckServiceNode{key(a): a, key(b): b}
	for _, tc := range []struct {
		name    string
		had     map[string]*catalog.CheckServiceNode
		ev      server.HealthEvent
		want    []*catalog.CheckServiceNode
		wantErr error
	}{
		{name: "whole answer", ev: server.HealthEvent{Order: []string{key(a), key(b)}, Changed: []*catalog.CheckServiceNode{a, b}}, want: []*catalog.CheckServiceNode{a, b}},
		{name: "one changed, one new, in a new order", had: had, ev: server.HealthEvent{Order: []string{key(c), key(b), key(a)}, Changed: []*catalog.CheckServiceNode{c, b2}}, want: []*catalog.CheckServiceNode{c, b2, a}},
		{name: "one gone", had: had, ev: server.HealthEvent{Order: []string{key(b)}}, want: []*catalog.CheckServiceNode{b}},
		{name: "empty", had: had, ev: server.HealthEvent{Order: []string{}}, want: []*catalog.CheckServiceNode{}},
		{name: "unknown instance", had: had, ev: server.HealthEvent{Order: []string{key(c)}}, wantErr: errBadEvent},
		{name: "instance without a node", ev: server.HealthEvent{Order: []string{key(a)}, Changed: []*catalog.CheckServiceNode{{Service: a.Service}}}, wantErr: errBadEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := applyHealthEvent(tc.had, &tc.ev)
			if !errors.Is(err, tc.wantErr) || (err == nil && !reflect.DeepEqual(got, tc.want)) {
				t.Errorf("applyHealthEvent = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("instance %d is not the one sent or kept", i)
				}
			}
		})
	}
}
