package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
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
	row, err := getRow(tx, nn.Node)
	if err != nil {
		return fmt.Errorf("ensure node %q: %w", nn.Node, err)
	}
	if row != nil && nn.ID != "" && row.node.ID != "" && !strings.EqualFold(row.node.ID, nn.ID) && !row.dead() {
		return fmt.Errorf("ensure node %q with ID %q: held by ID %q: %w", nn.Node, nn.ID, row.node.ID, ErrNodeIDConflict)
	}
	if nn.ID != "" {
		old, err := nodeNameOf(tx, nn.ID)
		if err != nil {
			return fmt.Errorf("ensure node %q: lookup ID %q: %w", nn.Node, nn.ID, err)
		}
		if old != "" && !strings.EqualFold(old, nn.Node) {
			if err := DeleteNode(tx, idx, old); err != nil {
				return fmt.Errorf("ensure node %q: rename from %q: %w", nn.Node, old, err)
			}
		}
	}
	nr := &nodeRow{index: idx}
	if row != nil {
		existing := row.node
		// The name is the node's identity; its first spelling stays.
		nn.Node = existing.Node
		if nn.ID == "" {
			nn.ID = existing.ID
		}
		nn.CreateIndex, nn.ModifyIndex = existing.CreateIndex, existing.ModifyIndex
		if reflect.DeepEqual(existing, nn) {
			return nil
		}
		nr = row.copyRow(idx)
	} else {
		nn.CreateIndex = idx
	}
	nn.ModifyIndex = idx
	t, err := internsOf(tx)
	if err != nil {
		return fmt.Errorf("ensure node %q: %w", nn.Node, err)
	}
	t.internNode(tx, nn)
	nr.node = nn
	if err := putRow(tx, nr); err != nil {
		return fmt.Errorf("ensure node %q: %w", nn.Node, err)
	}
	oldID := ""
	if row != nil {
		t.count(tx, nodeHeld(row.node), -1)
		oldID = row.node.ID
	}
	t.count(tx, nodeHeld(nn), 1)
	if err := moveNodeID(tx, nn.Node, oldID, nn.ID); err != nil {
		return fmt.Errorf("ensure node %q: %w", nn.Node, err)
	}
	for _, name := range nr.serviceNames() {
		if err := touchService(tx, idx, name); err != nil {
			return fmt.Errorf("ensure node %q: %w", nn.Node, err)
		}
	}
	return bumpIndex(tx, tableNodes, idx)
}

// DeleteNode removes a node with all its services, checks and coordinate.
// An absent node is not an error.
func DeleteNode(tx *memdb.Txn, idx uint64, name string) error {
	row, err := getRow(tx, name)
	if err != nil || row == nil {
		return wrapIf(err, "delete node %q", name)
	}
	t, err := internsOf(tx)
	if err != nil {
		return fmt.Errorf("delete node %q: %w", name, err)
	}
	if err := tx.Delete(tableNodes, row); err != nil {
		return fmt.Errorf("delete node %q: %w", name, err)
	}
	for _, c := range row.checks {
		t.count(tx, checkHeld(c), -1)
	}
	for _, s := range row.services {
		t.count(tx, serviceHeld(s), -1)
	}
	t.count(tx, nodeHeld(row.node), -1)
	if err := moveNodeID(tx, row.node.Node, row.node.ID, ""); err != nil {
		return fmt.Errorf("delete node %q: %w", name, err)
	}
	for _, svc := range row.serviceNames() {
		if err := removeFromServiceSet(tx, svc, row.node.Node); err != nil {
			return fmt.Errorf("delete node %q: %w", name, err)
		}
		if err := touchService(tx, idx, svc); err != nil {
			return fmt.Errorf("delete node %q: %w", name, err)
		}
	}
	if len(row.services) > 0 {
		if err := bumpIndex(tx, tableServices, idx); err != nil {
			return fmt.Errorf("delete node %q: %w", name, err)
		}
	}
	if len(row.checks) > 0 {
		if err := bumpIndex(tx, tableChecks, idx); err != nil {
			return fmt.Errorf("delete node %q: %w", name, err)
		}
	}
	if err := deleteCoordinate(tx, idx, name); err != nil {
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
	row, err := getRow(tx, node)
	if err != nil {
		return fmt.Errorf("ensure service %q: %w", s.ID, err)
	}
	if row == nil {
		return fmt.Errorf("ensure service %q on node %q: %w", s.ID, node, ErrMissingNode)
	}
	ns := cloneService(s)
	old := row.service(ns.ID)
	if old != nil {
		ns.CreateIndex, ns.ModifyIndex = old.CreateIndex, old.ModifyIndex
		if reflect.DeepEqual(old, ns) {
			return nil
		}
	} else {
		ns.CreateIndex = idx
	}
	ns.ModifyIndex = idx
	t, err := internsOf(tx)
	if err != nil {
		return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
	}
	t.internService(tx, ns)
	nr := row.copyRow(idx)
	nr.putService(ns)
	// The service's checks carry its name and tags: they changed too.
	checksChanged := false
	if old != nil && (old.Service != ns.Service || !slices.Equal(old.Tags, ns.Tags)) {
		for i, c := range nr.checks {
			if !strings.EqualFold(c.serviceID, ns.ID) {
				continue
			}
			if !checksChanged {
				nr.checks = slices.Clone(nr.checks)
				checksChanged = true
			}
			cc := *c
			cc.modifyIndex = idx
			nr.checks[i] = &cc
		}
	}
	if err := putRow(tx, nr); err != nil {
		return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
	}
	if old != nil {
		t.count(tx, serviceHeld(old), -1)
	}
	t.count(tx, serviceHeld(ns), 1)
	if checksChanged {
		if err := bumpIndex(tx, tableChecks, idx); err != nil {
			return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
		}
	}
	if err := addToServiceSet(tx, ns.Service, nr.node.Node); err != nil {
		return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
	}
	names := []string{ns.Service}
	if old != nil && !strings.EqualFold(old.Service, ns.Service) {
		names = append(names, old.Service)
		if !nr.hosts(old.Service) {
			if err := removeFromServiceSet(tx, old.Service, nr.node.Node); err != nil {
				return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
			}
		}
	}
	for _, name := range names {
		if err := touchService(tx, idx, name); err != nil {
			return fmt.Errorf("ensure service %q on node %q: %w", ns.ID, node, err)
		}
	}
	return wrapIf(bumpIndex(tx, tableServices, idx), "ensure service %q on node %q", ns.ID, node)
}

// DeleteService removes a service instance and its checks. An absent
// service is not an error.
func DeleteService(tx *memdb.Txn, idx uint64, node, id string) error {
	row, err := getRow(tx, node)
	if err != nil || row == nil {
		return wrapIf(err, "delete service %q on node %q", id, node)
	}
	i, ok := row.serviceAt(id)
	if !ok {
		return nil
	}
	s := row.services[i]
	t, err := internsOf(tx)
	if err != nil {
		return fmt.Errorf("delete service %q on node %q: %w", id, node, err)
	}
	nr := row.copyRow(idx)
	nr.services = slices.Delete(slices.Clone(row.services), i, i+1)
	gone := nr.dropChecks(func(c *checkRow) bool { return strings.EqualFold(c.serviceID, s.ID) })
	if err := putRow(tx, nr); err != nil {
		return fmt.Errorf("delete service %q on node %q: %w", id, node, err)
	}
	for _, c := range gone {
		t.count(tx, checkHeld(c), -1)
	}
	t.count(tx, serviceHeld(s), -1)
	if len(gone) > 0 {
		if err := bumpIndex(tx, tableChecks, idx); err != nil {
			return fmt.Errorf("delete service %q on node %q: %w", id, node, err)
		}
	}
	if !nr.hosts(s.Service) {
		if err := removeFromServiceSet(tx, s.Service, nr.node.Node); err != nil {
			return fmt.Errorf("delete service %q on node %q: %w", id, node, err)
		}
	}
	if err := touchService(tx, idx, s.Service); err != nil {
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
	row, err := getRow(tx, c.Node)
	if err != nil {
		return fmt.Errorf("ensure check %q: %w", c.CheckID, err)
	}
	if row == nil {
		return fmt.Errorf("ensure check %q on node %q: %w", c.CheckID, c.Node, ErrMissingNode)
	}
	nc := cloneCheck(c)
	switch nc.Status {
	case HealthPassing, HealthWarning, HealthCritical:
	default:
		return fmt.Errorf("ensure check %q on node %q: status %q: %w", nc.CheckID, row.node.Node, nc.Status, ErrInvalidRequest)
	}
	if nc.ServiceID != "" && row.service(nc.ServiceID) == nil {
		return fmt.Errorf("ensure check %q on node %q: service %q: %w", nc.CheckID, row.node.Node, nc.ServiceID, ErrMissingService)
	}
	cr := newCheckRow(nc)
	old := row.check(cr.id)
	if old != nil {
		cr.createIndex, cr.modifyIndex = old.createIndex, old.modifyIndex
		if cr.equal(old) {
			return nil
		}
	} else {
		cr.createIndex = idx
	}
	cr.modifyIndex = idx
	t, err := internsOf(tx)
	if err != nil {
		return fmt.Errorf("ensure check %q on node %q: %w", nc.CheckID, row.node.Node, err)
	}
	t.internCheck(tx, cr)
	nr := row.copyRow(idx)
	nr.putCheck(cr)
	if err := putRow(tx, nr); err != nil {
		return fmt.Errorf("ensure check %q on node %q: %w", nc.CheckID, row.node.Node, err)
	}
	if old != nil {
		t.count(tx, checkHeld(old), -1)
	}
	t.count(tx, checkHeld(cr), 1)
	return wrapIf(touchForCheck(tx, idx, nr, old, cr), "ensure check %q on node %q", nc.CheckID, row.node.Node)
}

// DeleteCheck removes a check. An absent check is not an error.
func DeleteCheck(tx *memdb.Txn, idx uint64, node, id string) error {
	row, err := getRow(tx, node)
	if err != nil || row == nil {
		return wrapIf(err, "delete check %q on node %q", id, node)
	}
	i, ok := row.checkAt(id)
	if !ok {
		return nil
	}
	c := row.checks[i]
	nr := row.copyRow(idx)
	nr.checks = slices.Delete(slices.Clone(row.checks), i, i+1)
	if err := putRow(tx, nr); err != nil {
		return fmt.Errorf("delete check %q on node %q: %w", id, node, err)
	}
	t, err := internsOf(tx)
	if err != nil {
		return fmt.Errorf("delete check %q on node %q: %w", id, node, err)
	}
	t.count(tx, checkHeld(c), -1)
	return wrapIf(touchForCheck(tx, idx, nr, c, nil), "delete check %q on node %q", id, node)
}

// touchForCheck moves the indexes whose answers include check old or new
// (either may be nil) of the node row r (as stored after the change): the
// checks' index, and the service the check belongs to, or every service on
// the node for a node-level check. The node's own index moved with its
// row.
func touchForCheck(tx *memdb.Txn, idx uint64, r *nodeRow, old, nc *checkRow) error {
	var names []string
	nodeLevel := false
	for _, c := range []*checkRow{old, nc} {
		switch {
		case c == nil:
		case c.serviceID == "":
			nodeLevel = true
		default:
			if s := r.service(c.serviceID); s != nil {
				names = append(names, s.Service)
			}
		}
	}
	if nodeLevel {
		names = r.serviceNames()
	}
	for _, name := range names {
		if err := touchService(tx, idx, name); err != nil {
			return err
		}
	}
	return bumpIndex(tx, tableChecks, idx)
}

// dead reports whether the node's serfHealth check is critical.
func (r *nodeRow) dead() bool {
	c := r.check(SerfCheckID)
	return c != nil && c.status == statusCritical
}

// touchService moves the "service.<name>" index to idx, or removes it when
// no instance of the service is left (reads then fall back to the tables'
// indexes, which are at least as high).
func touchService(tx *memdb.Txn, idx uint64, name string) error {
	set, err := serviceSet(tx, name)
	if err != nil {
		return err
	}
	if set == nil {
		return deleteIndex(tx, serviceKey(name))
	}
	return bumpIndex(tx, serviceKey(name), idx)
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

func wrapIf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
