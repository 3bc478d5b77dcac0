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

	// byNode is the same summary node by node (in the order the nodes were
	// met), for Restrict. It is not encoded: a summary that crossed the
	// network has none, and was restricted by the server that sent it.
	byNode []*nodeSummary
}

// nodeSummary is what one node adds to a service's summary.
type nodeSummary struct {
	node                       string
	tags, externalSources      []string
	instances                  int
	passing, warning, critical int
}

// Restrict returns the summary of the instances on the nodes keep
// accepts, as if the others did not exist (counts, tags and sources
// included), nil when none is left, and whether anything was cut. A
// summary that came over the network (no per-node breakdown) loses the
// refused nodes from Nodes and keeps its counts.
func (s *ServiceSummary) Restrict(keep func(node string) bool) (*ServiceSummary, bool) {
	cut := false
	for _, n := range s.Nodes {
		if !keep(n) {
			cut = true
			break
		}
	}
	if !cut {
		return s, false
	}
	out := *s
	out.byNode = nil
	out.Nodes = []string{}
	for _, n := range s.Nodes {
		if keep(n) {
			out.Nodes = append(out.Nodes, n)
		}
	}
	if len(out.Nodes) == 0 {
		return nil, true
	}
	if s.byNode == nil {
		return &out, true
	}
	out.Tags, out.ExternalSources = nil, nil
	out.InstanceCount, out.ChecksPassing, out.ChecksWarning, out.ChecksCritical = 0, 0, 0, 0
	for _, ns := range s.byNode {
		if !keep(ns.node) {
			continue
		}
		out.InstanceCount += ns.instances
		out.ChecksPassing += ns.passing
		out.ChecksWarning += ns.warning
		out.ChecksCritical += ns.critical
		out.Tags = append(out.Tags, ns.tags...)
		for _, src := range ns.externalSources {
			if !slices.Contains(out.ExternalSources, src) {
				out.ExternalSources = append(out.ExternalSources, src)
			}
		}
	}
	if out.Tags != nil {
		slices.Sort(out.Tags)
		out.Tags = slices.Compact(out.Tags)
	}
	return &out, true
}

// nodeSummary returns the part of sum that node adds, made when first met.
func (s *ServiceSummary) nodeSummary(node string) *nodeSummary {
	for _, ns := range s.byNode {
		if ns.node == node {
			return ns
		}
	}
	ns := &nodeSummary{node: node}
	s.byNode = append(s.byNode, ns)
	return ns
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
	byName := map[string]*ServiceSummary{}
	seen := map[*ServiceSummary]map[string]bool{} // node\x00checkID
	err = eachRow(tx, func(r *nodeRow) (bool, error) {
		n := r.node
		for _, svc := range r.services {
			sum, ok := byName[svc.Service]
			if !ok {
				sum = &ServiceSummary{Name: svc.Service, Nodes: []string{}}
				byName[svc.Service] = sum
				seen[sum] = map[string]bool{}
			}
			sum.Kind, sum.Datacenter = svc.Kind, n.Datacenter
			sum.InstanceCount++
			if !slices.Contains(sum.Nodes, n.Node) {
				sum.Nodes = append(sum.Nodes, n.Node)
			}
			ns := sum.nodeSummary(n.Node)
			ns.instances++
			sum.Tags = append(sum.Tags, svc.Tags...)
			ns.tags = append(ns.tags, svc.Tags...)
			if src := svc.Meta[metaExternalSource]; src != "" {
				if !slices.Contains(sum.ExternalSources, src) {
					sum.ExternalSources = append(sum.ExternalSources, src)
				}
				if !slices.Contains(ns.externalSources, src) {
					ns.externalSources = append(ns.externalSources, src)
				}
			}
			for _, svcID := range []string{"", svc.ID} {
				countChecks(r, sum, ns, seen[sum], svcID)
			}
		}
		return true, nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("service summaries: %w", err)
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

// countChecks adds to sum (and to ns, node's part of it) the checks of
// the node row r that belong to serviceID ("" for the node-level ones) and
// are not in seen yet.
func countChecks(r *nodeRow, sum *ServiceSummary, ns *nodeSummary, seen map[string]bool, serviceID string) {
	for _, c := range r.checks {
		if !strings.EqualFold(c.serviceID, serviceID) {
			continue
		}
		key := join(r.node.Node, c.id)
		if seen[key] {
			continue
		}
		seen[key] = true
		switch c.status {
		case statusPassing:
			sum.ChecksPassing++
			ns.passing++
		case statusWarning:
			sum.ChecksWarning++
			ns.warning++
		default:
			sum.ChecksCritical++
			ns.critical++
		}
	}
}
