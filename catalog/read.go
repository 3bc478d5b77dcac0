package catalog

import (
	"fmt"
	"slices"
	"sort"
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
	out := []*Node{}
	err = eachRow(tx, func(r *nodeRow) (bool, error) {
		if metaMatches(r.node, nodeMeta) {
			out = append(out, r.node)
		}
		return true, nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("nodes: %w", err)
	}
	return idx, out, nil
}

// GetNode returns the node with that name (case-insensitive), or nil and no
// error when there is none.
func GetNode(tx *memdb.Txn, ws memdb.WatchSet, name string) (uint64, *Node, error) {
	idx, r, err := nodeIndex(tx, ws, name)
	if err != nil || r == nil {
		return idx, nil, err
	}
	return idx, r.node, nil
}

// GetNodeServices returns a node and its services, or nil and no error when the
// node is not registered.
func GetNodeServices(tx *memdb.Txn, ws memdb.WatchSet, node string) (uint64, *NodeServices, error) {
	idx, r, err := nodeIndex(tx, ws, node)
	if err != nil || r == nil {
		return idx, nil, err
	}
	out := &NodeServices{Node: r.node, Services: make(map[string]*Service, len(r.services))}
	for _, s := range r.services {
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
	out := map[string][]string{}
	err = eachRow(tx, func(r *nodeRow) (bool, error) {
		if !metaMatches(r.node, nodeMeta) {
			return true, nil
		}
		for _, s := range r.services {
			tags, ok := out[s.Service]
			if !ok {
				tags = []string{}
			}
			out[s.Service] = append(tags, s.Tags...)
		}
		return true, nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("services: %w", err)
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
	err = eachInstance(tx, service, q, func(r *nodeRow, s *Service) error {
		n := r.node
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
			ServicePorts:             s.Ports,
			ServiceSocketPath:        s.SocketPath,
			ServiceEnableTagOverride: s.EnableTagOverride,
			ServiceLocality:          s.Locality,
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
		lastRow   *nodeRow
		nodeLevel []*HealthCheck // lastRow's node-level checks
	)
	err = eachInstance(tx, service, q, func(r *nodeRow, s *Service) error {
		if r != lastRow {
			lastRow, nodeLevel = r, r.serviceChecks("")
		}
		if q.Passing && !r.passing(s.ID) {
			return nil
		}
		own := r.serviceChecks(s.ID)
		checks := make([]*HealthCheck, 0, len(nodeLevel)+len(own))
		checks = append(append(checks, nodeLevel...), own...)
		out = append(out, &CheckServiceNode{Node: r.node, Service: s, Checks: checks})
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("health of service %q: %w", service, err)
	}
	return idx, out, nil
}

// passing reports whether every check of the instance with that ID and
// every node-level check is passing.
func (r *nodeRow) passing(serviceID string) bool {
	for _, c := range r.checks {
		if c.status != statusPassing && (c.serviceID == "" || strings.EqualFold(c.serviceID, serviceID)) {
			return false
		}
	}
	return true
}

// NodeChecks returns every check on the node, ordered by check ID.
func NodeChecks(tx *memdb.Txn, ws memdb.WatchSet, node string) (uint64, []*HealthCheck, error) {
	idx, r, err := nodeIndex(tx, ws, node)
	if err != nil {
		return 0, nil, fmt.Errorf("checks of node %q: %w", node, err)
	}
	out := []*HealthCheck{}
	if r != nil {
		out = append(out, r.healthChecks(nil)...)
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
	// The checks of each instance, found in the instance's node row, in
	// the order of node and check ID.
	out := []*HealthCheck{}
	var keys []string
	err = eachInstance(tx, service, ServiceQuery{NodeMeta: nodeMeta}, func(r *nodeRow, s *Service) error {
		for _, c := range r.serviceChecks(s.ID) {
			out = append(out, c)
			keys = append(keys, strings.ToLower(join(c.Node, c.CheckID)))
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("checks of service %q: %w", service, err)
	}
	sort.Stable(byKey{out, keys})
	return idx, out, nil
}

// byKey sorts checks by their keys.
type byKey struct {
	checks []*HealthCheck
	keys   []string
}

func (b byKey) Len() int           { return len(b.checks) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.checks[i], b.checks[j] = b.checks[j], b.checks[i]
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
}

// ChecksInState returns the checks in a state (HealthAny for all),
// keeping only those on nodes whose Meta carries all of nodeMeta, ordered
// by node and check ID. An unknown state is ErrInvalidRequest.
func ChecksInState(tx *memdb.Txn, ws memdb.WatchSet, state string, nodeMeta map[string]string) (uint64, []*HealthCheck, error) {
	keep := func(*checkRow) bool { return true }
	switch state {
	case HealthAny:
	case HealthPassing, HealthWarning, HealthCritical:
		code := statusCode(state)
		keep = func(c *checkRow) bool { return c.status == code }
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
	// A scan of every node: a status index cost two index entries per
	// instance, and a node's checks are at hand in its row.
	out := []*HealthCheck{}
	err = eachRow(tx, func(r *nodeRow) (bool, error) {
		if metaMatches(r.node, nodeMeta) {
			out = append(out, r.healthChecks(keep)...)
		}
		return true, nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("checks in state %q: %w", state, err)
	}
	return idx, out, nil
}

// eachInstance calls fn for each instance of service that matches q's tags
// and node meta, with its node's row, in the order of node name, then
// service ID.
func eachInstance(tx *memdb.Txn, service string, q ServiceQuery, fn func(*nodeRow, *Service) error) error {
	set, err := serviceSet(tx, service)
	if err != nil || set == nil {
		return err
	}
	set.nodes.Ascend(func(node string) bool {
		var r *nodeRow
		if r, err = getRow(tx, node); err != nil {
			return false
		}
		if r == nil || !metaMatches(r.node, q.NodeMeta) {
			return true
		}
		for _, s := range r.services {
			if strings.EqualFold(s.Service, service) && tagsMatch(s.Tags, q.Tags) {
				if err = fn(r, s); err != nil {
					return false
				}
			}
		}
		return true
	})
	return err
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

// nodeIndex returns the node's row and index, and watches the row. An
// absent node answers the highest table index, and watches the radix node
// where its row would go, which fires when it is created.
func nodeIndex(tx *memdb.Txn, ws memdb.WatchSet, name string) (uint64, *nodeRow, error) {
	ch, raw, err := tx.FirstWatch(tableNodes, "id", name)
	if err != nil {
		return 0, nil, fmt.Errorf("read node %q: %w", name, err)
	}
	ws.Add(ch)
	if r, ok := raw.(*nodeRow); ok {
		return max(r.index, 1), r, nil
	}
	idx, err := tablesIndex(tx, nil, tableNodes, tableServices, tableChecks)
	return idx, nil, err
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
