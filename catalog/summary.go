package catalog

import (
	"fmt"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"
)

// metaExternalSource is the service meta key naming the system that
// registered a service (Consul's "external-source").
const metaExternalSource = "external-source"

// ServiceSummary is one service of /v1/internal/ui/services, the shape of
// Consul's UI summary: its instances counted once each, the nodes they run
// on, the union of their tags, and the checks bearing on them by status.
// Tags and ExternalSources are null when there are none, as in Consul.
type ServiceSummary struct {
	Kind            string `json:",omitempty"`
	Name            string
	Datacenter      string
	Tags            []string
	Nodes           []string
	ExternalSources []string
	InstanceCount   int
	ChecksPassing   int
	ChecksWarning   int
	ChecksCritical  int
}

// ServiceSummaries answers /v1/internal/ui/services: one summary per
// service name, sorted by name. The checks counted for a service are, for
// each instance, the instance's own checks and its node's node-level
// checks, each check counted once per service (a node check shared by two
// instances on one node counts once), as Consul counts them.
func ServiceSummaries(tx *memdb.Txn, ws memdb.WatchSet) (uint64, []*ServiceSummary, error) {
	idx, err := tablesIndex(tx, ws, tableNodes, tableServices, tableChecks)
	if err != nil {
		return 0, nil, fmt.Errorf("service summaries: %w", err)
	}
	it, err := tx.Get(tableServices, "service")
	if err != nil {
		return 0, nil, fmt.Errorf("service summaries: %w", err)
	}
	byName := map[string]*ServiceSummary{}
	seen := map[*ServiceSummary]map[string]bool{} // node\x00checkID
	var nodes nodeCache
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*serviceRow)
		n, err := nodes.get(tx, r.node)
		if err != nil {
			return 0, nil, fmt.Errorf("service summaries: %w", err)
		}
		if n == nil {
			continue
		}
		sum, ok := byName[r.svc.Service]
		if !ok {
			sum = &ServiceSummary{Name: r.svc.Service, Nodes: []string{}}
			byName[r.svc.Service] = sum
			seen[sum] = map[string]bool{}
		}
		sum.Kind, sum.Datacenter = r.svc.Kind, n.Datacenter
		sum.InstanceCount++
		if !slices.Contains(sum.Nodes, n.Node) {
			sum.Nodes = append(sum.Nodes, n.Node)
		}
		sum.Tags = append(sum.Tags, r.svc.Tags...)
		if src := r.svc.Meta[metaExternalSource]; src != "" && !slices.Contains(sum.ExternalSources, src) {
			sum.ExternalSources = append(sum.ExternalSources, src)
		}
		for _, svcID := range []string{"", r.svc.ID} {
			if err := countChecks(tx, sum, seen[sum], r.node, svcID); err != nil {
				return 0, nil, fmt.Errorf("service summaries: %w", err)
			}
		}
	}
	out := make([]*ServiceSummary, 0, len(byName))
	for _, sum := range byName {
		slices.Sort(sum.Nodes)
		if sum.Tags != nil {
			slices.Sort(sum.Tags)
			sum.Tags = slices.Compact(sum.Tags)
		}
		out = append(out, sum)
	}
	slices.SortFunc(out, func(a, b *ServiceSummary) int { return strings.Compare(a.Name, b.Name) })
	return idx, out, nil
}

// countChecks adds to sum the checks of node that belong to serviceID (""
// for the node-level ones) and are not in seen yet.
func countChecks(tx *memdb.Txn, sum *ServiceSummary, seen map[string]bool, node, serviceID string) error {
	it, err := tx.Get(tableChecks, "node_service", node, serviceID)
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		c := raw.(*HealthCheck)
		key := join(c.Node, c.CheckID)
		if seen[key] {
			continue
		}
		seen[key] = true
		switch c.Status {
		case HealthPassing:
			sum.ChecksPassing++
		case HealthWarning:
			sum.ChecksWarning++
		case HealthCritical:
			sum.ChecksCritical++
		}
	}
	return nil
}
