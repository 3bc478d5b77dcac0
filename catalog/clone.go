package catalog

import (
	"fmt"
	"maps"
	"slices"

	memdb "github.com/hashicorp/go-memdb"
)

// The clone functions make the stored, canonical copy of a caller's value:
// maps and slices are copied (so the caller keeps ownership), empty maps
// become nil, Tags and ServiceTags become non-nil (Consul writes [] for
// them), and defaults are filled. Equal content gives DeepEqual copies,
// which is how writes detect that nothing changed.

func cloneNode(n *Node) *Node {
	c := *n
	c.TaggedAddresses = cloneMap(n.TaggedAddresses)
	c.Meta = cloneMap(n.Meta)
	return &c
}

func cloneService(s *Service) *Service {
	c := *s
	if c.ID == "" {
		c.ID = c.Service
	}
	c.Tags = cloneTags(s.Tags)
	c.Meta = cloneMap(s.Meta)
	c.TaggedAddresses = cloneMap(s.TaggedAddresses)
	c.Ports = nil
	if len(s.Ports) > 0 {
		c.Ports = slices.Clone(s.Ports)
	}
	if s.Locality != nil {
		l := *s.Locality
		c.Locality = &l
	}
	if c.Weights == (Weights{}) {
		c.Weights = Weights{Passing: 1, Warning: 1}
	}
	return &c
}

func cloneCheck(h *HealthCheck) *HealthCheck {
	c := *h
	if c.Status == "" {
		c.Status = HealthCritical
	}
	c.ServiceTags = cloneTags(h.ServiceTags)
	d := &c.Definition
	d.Header = nil
	if len(h.Definition.Header) > 0 {
		d.Header = make(map[string][]string, len(h.Definition.Header))
		for k, v := range h.Definition.Header {
			d.Header[k] = slices.Clone(v)
		}
	}
	d.ScriptArgs = nil
	if len(h.Definition.ScriptArgs) > 0 {
		d.ScriptArgs = slices.Clone(h.Definition.ScriptArgs)
	}
	for _, s := range []*string{&c.Interval, &c.Timeout, &d.Interval, &d.Timeout, &d.DeregisterCriticalServiceAfter, &d.TTL} {
		if *s == "0s" || *s == "0" {
			*s = ""
		}
	}
	return &c
}

func cloneMap[V any](m map[string]V) map[string]V {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func cloneTags(t []string) []string {
	if len(t) == 0 {
		return []string{}
	}
	return slices.Clone(t)
}

// canonical restores the non-nil invariants that a decoder (gob drops empty
// slices) may have lost, without copying.
func canonicalService(s *Service) {
	if s.Tags == nil {
		s.Tags = []string{}
	}
}

// collect reads every row of an index lookup into a slice, so that the
// caller may then modify the table (memdb iterators must not see writes).
func collect[T any](tx *memdb.Txn, table, index string, args ...any) ([]T, error) {
	it, err := tx.Get(table, index, args...)
	if err != nil {
		return nil, fmt.Errorf("scan %s by %s: %w", table, index, err)
	}
	var out []T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(T))
	}
	return out, nil
}
