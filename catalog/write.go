package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	memdb "github.com/hashicorp/go-memdb"
)

var (
	// ErrMissingNode is returned when a service or check is written for a
	// node that is not in the catalog.
	ErrMissingNode = errors.New("node not registered")
	// ErrMissingService is returned when a check names a service ID that is
	// not registered on its node.
	ErrMissingService = errors.New("service not registered")
	// ErrInvalidRequest is returned for a write that lacks a required field
	// (node name, address, service name, check ID) or carries an unknown
	// check status.
	ErrInvalidRequest = errors.New("invalid catalog request")
	// ErrNodeIDConflict is returned when a node name is registered with a
	// node ID that differs from the ID of the live node holding that name.
	ErrNodeIDConflict = errors.New("node ID conflicts with an existing node")
)

// Register applies a catalog registration the way Consul's state store does:
// the node is created or updated (left alone when SkipNodeUpdate is set and
// it exists), then the service, then Check and Checks. A check without Node
// takes the request's, a check without CheckID takes its Name, and a check
// whose ServiceID is not on the node fails with ErrMissingService. Nothing
// that is unchanged moves an index. On error the caller must abort tx.
func Register(tx *memdb.Txn, idx uint64, req *RegisterRequest) error {
	if req == nil || req.Node == "" {
		return fmt.Errorf("register: node name missing: %w", ErrInvalidRequest)
	}
	existing, err := getNode(tx, req.Node)
	if err != nil {
		return fmt.Errorf("register node %q: %w", req.Node, err)
	}
	// As Consul's: an Address is required unless SkipNodeUpdate is set,
	// and a missing node is created even then (with the address given,
	// which may be none).
	if req.Address == "" && !req.SkipNodeUpdate {
		return fmt.Errorf("register node %q: address missing (give Address, or SkipNodeUpdate for an existing node): %w", req.Node, ErrInvalidRequest)
	}
	if !req.SkipNodeUpdate || existing == nil {
		n := &Node{
			ID:              req.ID,
			Node:            req.Node,
			Address:         req.Address,
			Datacenter:      req.Datacenter,
			TaggedAddresses: req.TaggedAddresses,
			Meta:            req.NodeMeta,
		}
		if err := EnsureNode(tx, idx, n); err != nil {
			return fmt.Errorf("register: %w", err)
		}
	}
	if req.Service != nil {
		if err := EnsureService(tx, idx, req.Node, req.Service); err != nil {
			return fmt.Errorf("register: %w", err)
		}
	}
	checks := req.Checks
	if req.Check != nil {
		checks = append(checks[:len(checks):len(checks)], req.Check)
	}
	for _, c := range checks {
		if c == nil {
			continue
		}
		cc := *c
		switch {
		case cc.Node == "":
			cc.Node = req.Node
		case !strings.EqualFold(cc.Node, req.Node):
			return fmt.Errorf("register: check %q is for node %q, not %q: %w", cc.CheckID, cc.Node, req.Node, ErrInvalidRequest)
		}
		if cc.CheckID == "" {
			cc.CheckID = cc.Name
		}
		if err := EnsureCheck(tx, idx, &cc); err != nil {
			return fmt.Errorf("register: %w", err)
		}
	}
	return nil
}

// Deregister removes a whole node (its services and checks with it) when
// req names neither service nor check, else the named service (with its
// checks) and/or the named check. Removing something absent is not an error.
func Deregister(tx *memdb.Txn, idx uint64, req *DeregisterRequest) error {
	if req == nil || req.Node == "" {
		return fmt.Errorf("deregister: node name missing: %w", ErrInvalidRequest)
	}
	if req.ServiceID == "" && req.CheckID == "" {
		return DeleteNode(tx, idx, req.Node)
	}
	if req.ServiceID != "" {
		if err := DeleteService(tx, idx, req.Node, req.ServiceID); err != nil {
			return err
		}
	}
	if req.CheckID != "" {
		if err := DeleteCheck(tx, idx, req.Node, req.CheckID); err != nil {
			return err
		}
	}
	return nil
}

// EnsureNode creates or updates a node. Names are case-insensitive and keep
// the spelling they were first registered with. An empty ID keeps the stored
// one. A known ID under a new name renames the node: the
// old name is deleted with its services and checks, as Consul does. A name
// held by a node with another ID fails with ErrNodeIDConflict unless that
// node's serfHealth check is critical, in which case the new ID takes it.
func EnsureNode(tx *memdb.Txn, idx uint64, n *Node) error {
	if n == nil || n.Node == "" {
		return fmt.Errorf("ensure node: name missing: %w", ErrInvalidRequest)
	}
	nn := cloneNode(n)
	existing, err := getNode(tx, nn.Node)
	if err != nil {
		return fmt.Errorf("ensure node %q: %w", nn.Node, err)
	}
	if existing != nil && nn.ID != "" && existing.ID != "" && !strings.EqualFold(existing.ID, nn.ID) {
		dead, err := nodeIsDead(tx, existing.Node)
		if err != nil {
			return fmt.Errorf("ensure node %q: %w", nn.Node, err)
		}
		if !dead {
			return fmt.Errorf("ensure node %q with ID %q: held by ID %q: %w", nn.Node, nn.ID, existing.ID, ErrNodeIDConflict)
		}
	}
	if nn.ID != "" {
		raw, err := tx.First(tableNodes, "uuid", nn.ID)
		if err != nil {
			return fmt.Errorf("ensure node %q: lookup ID %q: %w", nn.Node, nn.ID, err)
		}
		if old, ok := raw.(*Node); ok && !strings.EqualFold(old.Node, nn.Node) {
			if err := DeleteNode(tx, idx, old.Node); err != nil {
				return fmt.Errorf("ensure node %q: rename from %q: %w", nn.Node, old.Node, err)
			}
		}
	}
	if existing != nil {
		// The name is the node's identity; its first spelling stays.
		nn.Node = existing.Node
		if nn.ID == "" {
			nn.ID = existing.ID
		}
		nn.CreateIndex, nn.ModifyIndex = existing.CreateIndex, existing.ModifyIndex
		if reflect.DeepEqual(existing, nn) {
			return nil
		}
	} else {
		nn.CreateIndex = idx
	}
	nn.ModifyIndex = idx
	if err := tx.Insert(tableNodes, nn); err != nil {
		return fmt.Errorf("ensure node %q: %w", nn.Node, err)
	}
	if err := touchNode(tx, idx, nn.Node); err != nil {
		return fmt.Errorf("ensure node %q: %w", nn.Node, err)
	}
	names, err := serviceNamesOn(tx, nn.Node)
	if err != nil {
		return fmt.Errorf("ensure node %q: %w", nn.Node, err)
	}
	for _, name := range names {
		if err := touchService(tx, idx, name); err != nil {
			return fmt.Errorf("ensure node %q: %w", nn.Node, err)
		}
	}
	return bumpIndex(tx, tableNodes, idx)
}

// DeleteNode removes a node with all its services, checks and coordinate.
// An absent node is not an error.
func DeleteNode(tx *memdb.Txn, idx uint64, name string) error {
	n, err := getNode(tx, name)
	if err != nil || n == nil {
		return wrapIf(err, "delete node %q", name)
	}
	svcs, err := collect[*serviceRow](tx, tableServices, "node", name)
	if err != nil {
		return fmt.Errorf("delete node %q: %w", name, err)
	}
	for _, r := range svcs {
		if err := DeleteService(tx, idx, r.node, r.svc.ID); err != nil {
			return fmt.Errorf("delete node %q: %w", name, err)
		}
	}
	checks, err := collect[*HealthCheck](tx, tableChecks, "node", name)
	if err != nil {
		return fmt.Errorf("delete node %q: %w", name, err)
	}
	for _, c := range checks {
		if err := tx.Delete(tableChecks, c); err != nil {
			return fmt.Errorf("delete node %q: check %q: %w", name, c.CheckID, err)
		}
	}
	if len(checks) > 0 {
		if err := bumpIndex(tx, tableChecks, idx); err != nil {
			return fmt.Errorf("delete node %q: %w", name, err)
		}
	}
	if err := deleteCoordinate(tx, idx, name); err != nil {
		return fmt.Errorf("delete node %q: %w", name, err)
	}
	if err := tx.Delete(tableNodes, n); err != nil {
		return fmt.Errorf("delete node %q: %w", name, err)
	}
	if err := deleteIndex(tx, nodeKey(name)); err != nil {
		return fmt.Errorf("delete node %q: %w", name, err)
	}
	return wrapIf(bumpIndex(tx, tableNodes, idx), "delete node %q", name)
}

// EnsureService creates or updates a service instance on a registered node
// (ErrMissingNode otherwise). An empty ID means the service name; zero
// Weights mean {1, 1}. Checks of the service get its new name and tags.
func EnsureService(tx *memdb.Txn, idx uint64, node string, s *Service) error {
	if s == nil || s.Service == "" {
		return fmt.Errorf("ensure service on node %q: service name missing: %w", node, ErrInvalidRequest)
	}
	n, err := getNode(tx, node)
	if err != nil {
		return fmt.Errorf("ensure service %q: %w", s.ID, err)
	}
	if n == nil {
		return fmt.Errorf("ensure service %q on node %q: %w", s.ID, node, ErrMissingNode)
	}
	ns := cloneService(s)
	old, err := getService(tx, node, ns.ID)
	if err != nil {
		return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
	}
	if old != nil {
		ns.CreateIndex, ns.ModifyIndex = old.svc.CreateIndex, old.svc.ModifyIndex
		if reflect.DeepEqual(old.svc, ns) {
			return nil
		}
	} else {
		ns.CreateIndex = idx
	}
	ns.ModifyIndex = idx
	if err := tx.Insert(tableServices, &serviceRow{node: n.Node, svc: ns}); err != nil {
		return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
	}
	if err := refreshServiceChecks(tx, idx, n.Node, ns); err != nil {
		return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
	}
	names := []string{ns.Service}
	if old != nil && !strings.EqualFold(old.svc.Service, ns.Service) {
		names = append(names, old.svc.Service)
	}
	for _, name := range names {
		if err := touchService(tx, idx, name); err != nil {
			return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
		}
	}
	if err := touchNode(tx, idx, n.Node); err != nil {
		return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
	}
	return wrapIf(bumpIndex(tx, tableServices, idx), "ensure service %q on node %q", ns.ID, node)
}

// refreshServiceChecks copies the service's name and tags into its checks.
func refreshServiceChecks(tx *memdb.Txn, idx uint64, node string, s *Service) error {
	checks, err := collect[*HealthCheck](tx, tableChecks, "node_service", node, s.ID)
	if err != nil {
		return err
	}
	changed := false
	for _, c := range checks {
		if c.ServiceName == s.Service && reflect.DeepEqual(c.ServiceTags, s.Tags) {
			continue
		}
		cc := *c
		cc.ServiceName, cc.ServiceTags, cc.ModifyIndex = s.Service, s.Tags, idx
		if err := tx.Insert(tableChecks, &cc); err != nil {
			return fmt.Errorf("update check %q: %w", c.CheckID, err)
		}
		changed = true
	}
	if changed {
		return bumpIndex(tx, tableChecks, idx)
	}
	return nil
}

// DeleteService removes a service instance and its checks. An absent
// service is not an error.
func DeleteService(tx *memdb.Txn, idx uint64, node, id string) error {
	r, err := getService(tx, node, id)
	if err != nil || r == nil {
		return wrapIf(err, "delete service %q on node %q", id, node)
	}
	checks, err := collect[*HealthCheck](tx, tableChecks, "node_service", node, id)
	if err != nil {
		return fmt.Errorf("delete service %q on node %q: %w", id, node, err)
	}
	for _, c := range checks {
		if err := tx.Delete(tableChecks, c); err != nil {
			return fmt.Errorf("delete service %q on node %q: check %q: %w", id, node, c.CheckID, err)
		}
	}
	if len(checks) > 0 {
		if err := bumpIndex(tx, tableChecks, idx); err != nil {
			return fmt.Errorf("delete service %q on node %q: %w", id, node, err)
		}
	}
	if err := tx.Delete(tableServices, r); err != nil {
		return fmt.Errorf("delete service %q on node %q: %w", id, node, err)
	}
	if err := touchService(tx, idx, r.svc.Service); err != nil {
		return fmt.Errorf("delete service %q on node %q: %w", id, node, err)
	}
	if err := touchNode(tx, idx, r.node); err != nil {
		return fmt.Errorf("delete service %q on node %q: %w", id, node, err)
	}
	return wrapIf(bumpIndex(tx, tableServices, idx), "delete service %q on node %q", id, node)
}

// EnsureCheck creates or updates a check on a registered node
// (ErrMissingNode otherwise). A check with a ServiceID needs that service on
// the node (ErrMissingService otherwise) and takes its name and tags. An
// empty Status means critical; other statuses than passing, warning and
// critical are refused.
func EnsureCheck(tx *memdb.Txn, idx uint64, c *HealthCheck) error {
	if c == nil || c.Node == "" || c.CheckID == "" {
		return fmt.Errorf("ensure check: node or check ID missing: %w", ErrInvalidRequest)
	}
	n, err := getNode(tx, c.Node)
	if err != nil {
		return fmt.Errorf("ensure check %q: %w", c.CheckID, err)
	}
	if n == nil {
		return fmt.Errorf("ensure check %q on node %q: %w", c.CheckID, c.Node, ErrMissingNode)
	}
	nc := cloneCheck(c)
	nc.Node = n.Node
	switch nc.Status {
	case HealthPassing, HealthWarning, HealthCritical:
	default:
		return fmt.Errorf("ensure check %q on node %q: status %q: %w", nc.CheckID, nc.Node, nc.Status, ErrInvalidRequest)
	}
	if nc.ServiceID != "" {
		r, err := getService(tx, n.Node, nc.ServiceID)
		if err != nil {
			return fmt.Errorf("ensure check %q on node %q: %w", nc.CheckID, nc.Node, err)
		}
		if r == nil {
			return fmt.Errorf("ensure check %q on node %q: service %q: %w", nc.CheckID, nc.Node, nc.ServiceID, ErrMissingService)
		}
		nc.ServiceName, nc.ServiceTags = r.svc.Service, r.svc.Tags
	} else {
		nc.ServiceName, nc.ServiceTags = "", []string{}
	}
	old, err := getCheck(tx, n.Node, nc.CheckID)
	if err != nil {
		return fmt.Errorf("ensure check %q on node %q: %w", nc.CheckID, nc.Node, err)
	}
	if old != nil {
		nc.CreateIndex, nc.ModifyIndex = old.CreateIndex, old.ModifyIndex
		if reflect.DeepEqual(old, nc) {
			return nil
		}
	} else {
		nc.CreateIndex = idx
	}
	nc.ModifyIndex = idx
	if err := tx.Insert(tableChecks, nc); err != nil {
		return fmt.Errorf("ensure check %q on node %q: %w", nc.CheckID, nc.Node, err)
	}
	if err := touchForCheck(tx, idx, old, nc); err != nil {
		return fmt.Errorf("ensure check %q on node %q: %w", nc.CheckID, nc.Node, err)
	}
	return nil
}

// DeleteCheck removes a check. An absent check is not an error.
func DeleteCheck(tx *memdb.Txn, idx uint64, node, id string) error {
	c, err := getCheck(tx, node, id)
	if err != nil || c == nil {
		return wrapIf(err, "delete check %q on node %q", id, node)
	}
	if err := tx.Delete(tableChecks, c); err != nil {
		return fmt.Errorf("delete check %q on node %q: %w", id, node, err)
	}
	return wrapIf(touchForCheck(tx, idx, c, nil), "delete check %q on node %q", id, node)
}

// touchForCheck moves the indexes whose answers include check old or new
// (either may be nil): the checks table, the node, and the service the check
// belongs to, or every service on the node for a node-level check.
func touchForCheck(tx *memdb.Txn, idx uint64, old, nc *HealthCheck) error {
	var names []string
	nodeLevel := false
	node := ""
	for _, c := range []*HealthCheck{old, nc} {
		if c == nil {
			continue
		}
		node = c.Node
		if c.ServiceID == "" {
			nodeLevel = true
		} else {
			names = append(names, c.ServiceName)
		}
	}
	if nodeLevel {
		all, err := serviceNamesOn(tx, node)
		if err != nil {
			return err
		}
		names = append(names, all...)
	}
	for _, name := range names {
		if err := touchService(tx, idx, name); err != nil {
			return err
		}
	}
	if err := touchNode(tx, idx, node); err != nil {
		return err
	}
	return bumpIndex(tx, tableChecks, idx)
}

// nodeIsDead reports whether the node's serfHealth check is critical.
func nodeIsDead(tx *memdb.Txn, node string) (bool, error) {
	c, err := getCheck(tx, node, SerfCheckID)
	if err != nil {
		return false, err
	}
	return c != nil && c.Status == HealthCritical, nil
}

// serviceNamesOn lists the distinct service names on a node.
func serviceNamesOn(tx *memdb.Txn, node string) ([]string, error) {
	rows, err := collect[*serviceRow](tx, tableServices, "node", node)
	if err != nil {
		return nil, err
	}
	var names []string
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		k := strings.ToLower(r.svc.Service)
		if !seen[k] {
			seen[k] = true
			names = append(names, r.svc.Service)
		}
	}
	return names, nil
}

// touchService moves the "service.<name>" index to idx, or removes it when
// no instance of the service is left (reads then fall back to the tables'
// indexes, which are at least as high).
func touchService(tx *memdb.Txn, idx uint64, name string) error {
	raw, err := tx.First(tableServices, "service", name)
	if err != nil {
		return fmt.Errorf("lookup service %q: %w", name, err)
	}
	if raw == nil {
		return deleteIndex(tx, serviceKey(name))
	}
	return bumpIndex(tx, serviceKey(name), idx)
}

// touchNode moves the "node.<name>" index to idx.
func touchNode(tx *memdb.Txn, idx uint64, name string) error {
	return bumpIndex(tx, nodeKey(name), idx)
}

// bumpIndex raises the index row key to idx; it never lowers it.
func bumpIndex(tx *memdb.Txn, key string, idx uint64) error {
	raw, err := tx.First(tableIndex, "id", key)
	if err != nil {
		return fmt.Errorf("read index %q: %w", key, err)
	}
	if r, ok := raw.(*indexRow); ok && r.Value >= idx {
		return nil
	}
	if err := tx.Insert(tableIndex, &indexRow{Key: key, Value: idx}); err != nil {
		return fmt.Errorf("write index %q: %w", key, err)
	}
	return nil
}

func deleteIndex(tx *memdb.Txn, key string) error {
	raw, err := tx.First(tableIndex, "id", key)
	if err != nil {
		return fmt.Errorf("read index %q: %w", key, err)
	}
	if raw == nil {
		return nil
	}
	if err := tx.Delete(tableIndex, raw); err != nil {
		return fmt.Errorf("delete index %q: %w", key, err)
	}
	return nil
}

func serviceKey(name string) string { return serviceIndexPrefix + strings.ToLower(name) }
func nodeKey(name string) string    { return nodeIndexPrefix + strings.ToLower(name) }

func wrapIf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
