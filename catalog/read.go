package catalog

import (
	"fmt"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"
)

// Nodes returns every node whose Meta carries all of nodeMeta (nil: every
// node), sorted by lower-case name.
func Nodes(tx *memdb.Txn, ws memdb.WatchSet, nodeMeta map[string]string) (uint64, []*Node, error) {
	idx, err := tablesIndex(tx, ws, tableNodes)
	if err != nil {
		return 0, nil, fmt.Errorf("nodes: %w", err)
	}
	it, err := tx.Get(tableNodes, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("nodes: %w", err)
	}
	out := []*Node{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if n := raw.(*Node); metaMatches(n, nodeMeta) {
			out = append(out, n)
		}
	}
	return idx, out, nil
}

// GetNode returns the node with that name (case-insensitive), or nil and no
// error when there is none.
func GetNode(tx *memdb.Txn, ws memdb.WatchSet, name string) (uint64, *Node, error) {
	idx, err := keyIndex(tx, ws, nodeKey(name))
	if err != nil {
		return 0, nil, fmt.Errorf("node %q: %w", name, err)
	}
	n, err := getNode(tx, name)
	if err != nil {
		return 0, nil, fmt.Errorf("node %q: %w", name, err)
	}
	return idx, n, nil
}

// GetNodeServices returns a node and its services, or nil and no error when the
// node is not registered.
func GetNodeServices(tx *memdb.Txn, ws memdb.WatchSet, node string) (uint64, *NodeServices, error) {
	idx, n, err := GetNode(tx, ws, node)
	if err != nil || n == nil {
		return idx, nil, err
	}
	it, err := tx.Get(tableServices, "node", node)
	if err != nil {
		return 0, nil, fmt.Errorf("node %q services: %w", node, err)
	}
	out := &NodeServices{Node: n, Services: map[string]*Service{}}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		s := raw.(*serviceRow).svc
		out.Services[s.ID] = s
	}
	return idx, out, nil
}

// Services returns each service name with the sorted union of its
// instances' tags, counting only instances on nodes whose Meta carries all
// of nodeMeta.
func Services(tx *memdb.Txn, ws memdb.WatchSet, nodeMeta map[string]string) (uint64, map[string][]string, error) {
	tables := []string{tableServices}
	if len(nodeMeta) > 0 {
		tables = append(tables, tableNodes)
	}
	idx, err := tablesIndex(tx, ws, tables...)
	if err != nil {
		return 0, nil, fmt.Errorf("services: %w", err)
	}
	it, err := tx.Get(tableServices, "service")
	if err != nil {
		return 0, nil, fmt.Errorf("services: %w", err)
	}
	var nodes nodeCache
	out := map[string][]string{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*serviceRow)
		if len(nodeMeta) > 0 {
			n, err := nodes.get(tx, r.node)
			if err != nil {
				return 0, nil, fmt.Errorf("services: %w", err)
			}
			if !metaMatches(n, nodeMeta) {
				continue
			}
		}
		tags, ok := out[r.svc.Service]
		if !ok {
			tags = []string{}
		}
		out[r.svc.Service] = append(tags, r.svc.Tags...)
	}
	for name, tags := range out {
		slices.Sort(tags)
		out[name] = slices.Compact(tags)
	}
	return idx, out, nil
}

// ServiceNodes answers /v1/catalog/service/:name: the instances of the
// service (case-insensitive) that match q's Tags and NodeMeta, each joined
// with its node, ordered by node name then service ID.
func ServiceNodes(tx *memdb.Txn, ws memdb.WatchSet, service string, q ServiceQuery) (uint64, []*ServiceNode, error) {
	idx, err := keyIndex(tx, ws, serviceKey(service))
	if err != nil {
		return 0, nil, fmt.Errorf("service %q nodes: %w", service, err)
	}
	out := []*ServiceNode{}
	err = eachInstance(tx, service, q, func(n *Node, s *Service) error {
		out = append(out, &ServiceNode{
			ID:                       n.ID,
			Node:                     n.Node,
			Address:                  n.Address,
			Datacenter:               n.Datacenter,
			TaggedAddresses:          n.TaggedAddresses,
			NodeMeta:                 n.Meta,
			ServiceKind:              s.Kind,
			ServiceID:                s.ID,
			ServiceName:              s.Service,
			ServiceTags:              s.Tags,
			ServiceAddress:           s.Address,
			ServiceTaggedAddresses:   s.TaggedAddresses,
			ServiceWeights:           s.Weights,
			ServiceMeta:              s.Meta,
			ServicePort:              s.Port,
			ServiceEnableTagOverride: s.EnableTagOverride,
			CreateIndex:              s.CreateIndex,
			ModifyIndex:              s.ModifyIndex,
		})
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("service %q nodes: %w", service, err)
	}
	return idx, out, nil
}

// CheckServiceNodes answers /v1/health/service/:name: the instances of the
// service that match q, each with its node and checks (node-level checks
// first, then the instance's, each group ordered by check ID). With
// q.Passing only instances whose every check is passing are kept.
func CheckServiceNodes(tx *memdb.Txn, ws memdb.WatchSet, service string, q ServiceQuery) (uint64, []*CheckServiceNode, error) {
	idx, err := keyIndex(tx, ws, serviceKey(service))
	if err != nil {
		return 0, nil, fmt.Errorf("health of service %q: %w", service, err)
	}
	out := []*CheckServiceNode{}
	var (
		lastNode  *Node
		allChecks []*HealthCheck // every check on lastNode, by check ID
		nodeLevel int            // how many of them are node-level
	)
	err = eachInstance(tx, service, q, func(n *Node, s *Service) error {
		if n != lastNode {
			lastNode, allChecks, nodeLevel = n, allChecks[:0], 0
			it, err := tx.Get(tableChecks, "node", n.Node)
			if err != nil {
				return err
			}
			for raw := it.Next(); raw != nil; raw = it.Next() {
				c := raw.(*HealthCheck)
				allChecks = append(allChecks, c)
				if c.ServiceID == "" {
					nodeLevel++
				}
			}
		}
		own := 0
		for _, c := range allChecks {
			if c.ServiceID == s.ID {
				own++
			}
		}
		checks := make([]*HealthCheck, 0, nodeLevel+own)
		for _, c := range allChecks {
			if c.ServiceID == "" {
				checks = append(checks, c)
			}
		}
		for _, c := range allChecks {
			if c.ServiceID == s.ID {
				checks = append(checks, c)
			}
		}
		if q.Passing {
			for _, c := range checks {
				if c.Status != HealthPassing {
					return nil
				}
			}
		}
		out = append(out, &CheckServiceNode{Node: n, Service: s, Checks: checks})
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("health of service %q: %w", service, err)
	}
	return idx, out, nil
}

// NodeChecks returns every check on the node, ordered by check ID.
func NodeChecks(tx *memdb.Txn, ws memdb.WatchSet, node string) (uint64, []*HealthCheck, error) {
	idx, err := keyIndex(tx, ws, nodeKey(node))
	if err != nil {
		return 0, nil, fmt.Errorf("checks of node %q: %w", node, err)
	}
	out := []*HealthCheck{}
	it, err := tx.Get(tableChecks, "node", node)
	if err != nil {
		return 0, nil, fmt.Errorf("checks of node %q: %w", node, err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*HealthCheck))
	}
	return idx, out, nil
}

// ServiceChecks returns the checks of every instance of the service
// (node-level checks excluded, as in Consul's /v1/health/checks/:service),
// keeping only those on nodes whose Meta carries all of nodeMeta.
func ServiceChecks(tx *memdb.Txn, ws memdb.WatchSet, service string, nodeMeta map[string]string) (uint64, []*HealthCheck, error) {
	idx, err := keyIndex(tx, ws, serviceKey(service))
	if err != nil {
		return 0, nil, fmt.Errorf("checks of service %q: %w", service, err)
	}
	out, err := filterChecks(tx, nodeMeta, tableChecks, "service", service)
	if err != nil {
		return 0, nil, fmt.Errorf("checks of service %q: %w", service, err)
	}
	return idx, out, nil
}

// ChecksInState returns the checks in a state (HealthAny for all),
// keeping only those on nodes whose Meta carries all of nodeMeta. An unknown
// state is ErrInvalidRequest.
func ChecksInState(tx *memdb.Txn, ws memdb.WatchSet, state string, nodeMeta map[string]string) (uint64, []*HealthCheck, error) {
	var args []any
	index := "id"
	switch state {
	case HealthAny:
	case HealthPassing, HealthWarning, HealthCritical:
		index, args = "status", []any{state}
	default:
		return 0, nil, fmt.Errorf("checks in state %q: %w", state, ErrInvalidRequest)
	}
	tables := []string{tableChecks}
	if len(nodeMeta) > 0 {
		tables = append(tables, tableNodes)
	}
	idx, err := tablesIndex(tx, ws, tables...)
	if err != nil {
		return 0, nil, fmt.Errorf("checks in state %q: %w", state, err)
	}
	out, err := filterChecks(tx, nodeMeta, tableChecks, index, args...)
	if err != nil {
		return 0, nil, fmt.Errorf("checks in state %q: %w", state, err)
	}
	return idx, out, nil
}

func filterChecks(tx *memdb.Txn, nodeMeta map[string]string, table, index string, args ...any) ([]*HealthCheck, error) {
	it, err := tx.Get(table, index, args...)
	if err != nil {
		return nil, err
	}
	var nodes nodeCache
	out := []*HealthCheck{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		c := raw.(*HealthCheck)
		if len(nodeMeta) > 0 {
			n, err := nodes.get(tx, c.Node)
			if err != nil {
				return nil, err
			}
			if !metaMatches(n, nodeMeta) {
				continue
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// eachInstance calls fn for each instance of service that matches q's tags
// and node meta, in index order (node name, then service ID).
func eachInstance(tx *memdb.Txn, service string, q ServiceQuery, fn func(*Node, *Service) error) error {
	it, err := tx.Get(tableServices, "service", service)
	if err != nil {
		return err
	}
	var nodes nodeCache
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*serviceRow)
		if !tagsMatch(r.svc.Tags, q.Tags) {
			continue
		}
		n, err := nodes.get(tx, r.node)
		if err != nil {
			return err
		}
		if n == nil || !metaMatches(n, q.NodeMeta) {
			continue
		}
		if err := fn(n, r.svc); err != nil {
			return err
		}
	}
	return nil
}

// nodeCache remembers the last node looked up: rows come in node order, so
// consecutive rows usually share it.
type nodeCache struct {
	name string
	node *Node
}

func (c *nodeCache) get(tx *memdb.Txn, name string) (*Node, error) {
	if c.node != nil && c.name == name {
		return c.node, nil
	}
	n, err := getNode(tx, name)
	if err != nil {
		return nil, err
	}
	c.name, c.node = name, n
	return n, nil
}

func tagsMatch(have, want []string) bool {
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, w) }) {
			return false
		}
	}
	return true
}

func metaMatches(n *Node, want map[string]string) bool {
	if n == nil {
		return false
	}
	for k, v := range want {
		if got, ok := n.Meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// keyIndex returns the index row key and watches it. An absent row (nothing
// registered under it) answers the highest table index, which is at least
// as high as the row ever was, and watches the radix node where the row
// would go, which fires when it is created.
func keyIndex(tx *memdb.Txn, ws memdb.WatchSet, key string) (uint64, error) {
	ch, raw, err := tx.FirstWatch(tableIndex, "id", key)
	if err != nil {
		return 0, fmt.Errorf("read index %q: %w", key, err)
	}
	ws.Add(ch)
	if r, ok := raw.(*indexRow); ok {
		return max(r.Value, 1), nil
	}
	return tablesIndex(tx, nil, tableNodes, tableServices, tableChecks)
}

// tablesIndex returns the highest index of the tables (at least 1) and
// watches their rows.
func tablesIndex(tx *memdb.Txn, ws memdb.WatchSet, tables ...string) (uint64, error) {
	idx := uint64(1)
	for _, t := range tables {
		ch, raw, err := tx.FirstWatch(tableIndex, "id", t)
		if err != nil {
			return 0, fmt.Errorf("read index %q: %w", t, err)
		}
		ws.Add(ch)
		if r, ok := raw.(*indexRow); ok {
			idx = max(idx, r.Value)
		}
	}
	return idx, nil
}
