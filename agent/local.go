package agent

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meridian/meridian/agent/checks"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/httpapi"
	"github.com/meridian/meridian/rpc"
)

// source says where a local service or check came from: config files are
// re-read on reload, API registrations are persisted in data_dir.
type source int

const (
	sourceConfig source = iota
	sourceAPI
	sourceMaint // maintenance-mode checks: no runner, not persisted
)

// localService is one service of the agent's local state.
type localService struct {
	svc    *catalog.Service
	def    httpapi.ServiceDefinition // as registered, for persistence
	source source
	synced bool // the catalog holds svc as it is now
}

// localCheck is one check of the agent's local state.
type localCheck struct {
	check  *catalog.HealthCheck
	def    httpapi.CheckDefinition
	source source
	runner *checks.Runner
	synced bool
	// criticalSince is when the check last turned critical (zero while it
	// is not), for DeregisterCriticalServiceAfter.
	criticalSince time.Time
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", rpc.ErrBadRequest, fmt.Sprintf(format, args...))
}

// fromConfigService converts a service definition from a config file.
func fromConfigService(d configs.ServiceDefinition) httpapi.ServiceDefinition {
	out := httpapi.ServiceDefinition{
		ID: d.ID, Name: d.Name, Tags: d.Tags, Address: d.Address, Port: d.Port,
		Meta: d.Meta, EnableTagOverride: d.EnableTagOverride,
	}
	if d.Weights.Passing != 0 || d.Weights.Warning != 0 {
		out.Weights = &catalog.Weights{Passing: d.Weights.Passing, Warning: d.Weights.Warning}
	}
	if len(d.TaggedAddresses) > 0 {
		out.TaggedAddresses = make(map[string]catalog.ServiceAddress, len(d.TaggedAddresses))
		for tag, a := range d.TaggedAddresses {
			out.TaggedAddresses[tag] = catalog.ServiceAddress{Address: a.Address, Port: a.Port}
		}
	}
	out.SocketPath = d.SocketPath
	for _, p := range d.Ports {
		out.Ports = append(out.Ports, catalog.ServicePort{Name: p.Name, Port: p.Port, Default: p.Default})
	}
	if d.Locality != nil {
		out.Locality = &catalog.Locality{Region: d.Locality.Region, Zone: d.Locality.Zone}
	}
	for _, c := range d.Checks {
		out.Checks = append(out.Checks, fromConfigCheck(c))
	}
	return out
}

// fromConfigCheck converts a check definition from a config file.
func fromConfigCheck(c configs.CheckDefinition) httpapi.CheckDefinition {
	return httpapi.CheckDefinition{
		ID: c.ID, Name: c.Name, Notes: c.Notes, ServiceID: c.ServiceID,
		HTTP: c.HTTP, Method: c.Method, Header: c.Header, Body: c.Body, TLSSkipVerify: c.TLSSkipVerify,
		TCP: c.TCP, TTL: c.TTL, Args: c.Args, Interval: c.Interval, Timeout: c.Timeout,
		DeregisterCriticalServiceAfter: c.DeregisterCriticalServiceAfter,
		SuccessBeforePassing:           c.SuccessBeforePassing, FailuresBeforeCritical: c.FailuresBeforeCritical,
		Status: c.Status,
	}
}

// buildService validates a service definition and returns the service with
// Consul's defaults and its checks, with IDs filled in.
func (a *Agent) buildService(def httpapi.ServiceDefinition, src source) (*catalog.Service, []*catalog.HealthCheck, []checks.Spec, error) {
	if def.Name == "" {
		return nil, nil, nil, badRequest("Name: missing service name")
	}
	id := def.ID
	if id == "" {
		id = def.Name
	}
	if err := def.Validate(); err != nil {
		return nil, nil, nil, badRequest("%v", err)
	}
	svc := &catalog.Service{
		ID: id, Service: def.Name, Tags: append([]string{}, def.Tags...), Address: def.Address,
		Port: def.Port, Meta: maps.Clone(def.Meta), Weights: catalog.Weights{Passing: 1, Warning: 1},
		EnableTagOverride: def.EnableTagOverride,
		TaggedAddresses:   maps.Clone(def.TaggedAddresses), SocketPath: def.SocketPath, Ports: slices.Clone(def.Ports),
	}
	if len(svc.TaggedAddresses) == 0 {
		svc.TaggedAddresses = nil
	}
	if len(svc.Ports) == 0 {
		svc.Ports = nil
	}
	if def.Locality != nil {
		l := *def.Locality
		svc.Locality = &l
	}
	if svc.Meta == nil {
		svc.Meta = map[string]string{}
	}
	if def.Weights != nil && (def.Weights.Passing != 0 || def.Weights.Warning != 0) {
		svc.Weights = *def.Weights
	}
	var hcs []*catalog.HealthCheck
	var specs []checks.Spec
	seen := map[string]bool{}
	for i, cd := range def.Checks {
		field := "Check"
		if len(def.Checks) > 1 {
			field = "Checks[" + strconv.Itoa(i) + "]"
		}
		cd.ServiceID = id
		if cd.ID == "" {
			cd.ID = "service:" + id
			if len(def.Checks) > 1 {
				cd.ID += ":" + strconv.Itoa(i+1)
			}
		}
		if cd.Name == "" {
			cd.Name = "Service '" + def.Name + "' check"
		}
		if seen[cd.ID] {
			return nil, nil, nil, badRequest("%s.CheckID: %q appears twice", field, cd.ID)
		}
		seen[cd.ID] = true
		hc, spec, err := a.buildCheck(cd, src, field+".")
		if err != nil {
			return nil, nil, nil, err
		}
		hc.ServiceName, hc.ServiceTags = svc.Service, svc.Tags
		hcs = append(hcs, hc)
		specs = append(specs, spec)
	}
	return svc, hcs, specs, nil
}

// buildCheck validates a check definition (ID and ServiceID already set as
// wanted) and returns the check and its runner's spec.
func (a *Agent) buildCheck(cd httpapi.CheckDefinition, src source, field string) (*catalog.HealthCheck, checks.Spec, error) {
	if cd.ID == "" {
		cd.ID = cd.Name
	}
	if cd.ID == "" {
		return nil, checks.Spec{}, badRequest("%sName: missing check name", field)
	}
	if cd.Unsupported != "" {
		return nil, checks.Spec{}, badRequest("%s%s: unknown check type: %s checks are not supported", field, cd.Unsupported, cd.Unsupported)
	}
	spec := checks.Spec{
		CheckID: cd.ID, HTTP: cd.HTTP, Method: cd.Method, Header: cd.Header, Body: cd.Body,
		TLSSkipVerify: cd.TLSSkipVerify, TCP: cd.TCP, TTL: cd.TTL, Args: cd.Args,
		Interval: cd.Interval, Timeout: cd.Timeout,
		SuccessBeforePassing: cd.SuccessBeforePassing, FailuresBeforeCritical: cd.FailuresBeforeCritical,
	}
	if spec.Kind() == "" {
		return nil, spec, badRequest("%sType: unknown check type: one of HTTP, TCP, TTL or Args must be set", field)
	}
	if err := spec.Validate(); err != nil {
		return nil, spec, badRequest("%s%s", field, strings.TrimPrefix(err.Error(), checks.ErrInvalidSpec.Error()+": "))
	}
	if spec.Kind() != checks.KindTTL && spec.Interval < checks.MinInterval {
		a.logger.Warn("check interval below the minimum: raised to it", "check", cd.ID, "interval", spec.Interval, "minimum", checks.MinInterval)
		spec.Interval, cd.Interval = checks.MinInterval, checks.MinInterval
	}
	if spec.Kind() == checks.KindScript {
		allowed := a.cfg.EnableScriptChecks || (src == sourceConfig && a.cfg.EnableLocalScriptChecks)
		if !allowed {
			return nil, spec, badRequest("%sArgs: script checks are disabled (set enable_script_checks)", field)
		}
	}
	status := cd.Status
	switch status {
	case "":
		status = catalog.HealthCritical
	case catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical:
	default:
		return nil, spec, badRequest("%sStatus: %q is not one of passing, warning, critical", field, status)
	}
	hc := &catalog.HealthCheck{
		Node: a.cfg.NodeName, CheckID: cd.ID, Name: cd.Name, Status: status, Notes: cd.Notes,
		ServiceID: cd.ServiceID, ServiceTags: []string{}, Type: string(spec.Kind()),
		Definition: catalog.HealthCheckDefinition{
			HTTP: cd.HTTP, Header: cd.Header, Method: cd.Method, Body: cd.Body, TLSSkipVerify: cd.TLSSkipVerify,
			TCP: cd.TCP, Interval: durString(cd.Interval), Timeout: durString(cd.Timeout),
			DeregisterCriticalServiceAfter: durString(cd.DeregisterCriticalServiceAfter),
			TTL:                            durString(cd.TTL), ScriptArgs: cd.Args,
		},
	}
	if spec.Kind() == checks.KindScript {
		hc.Type = "script"
	}
	hc.Interval, hc.Timeout = hc.Definition.Interval, hc.Definition.Timeout
	return hc, spec, nil
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// RegisterService adds or replaces a service registered over the HTTP API.
func (a *Agent) RegisterService(def httpapi.ServiceDefinition, replaceChecks bool) error {
	return a.addService(def, sourceAPI, replaceChecks)
}

// addService validates everything first, then changes the local state,
// then starts the new runners and stops the replaced ones.
func (a *Agent) addService(def httpapi.ServiceDefinition, src source, replaceChecks bool) error {
	svc, hcs, specs, err := a.buildService(def, src)
	if err != nil {
		return err
	}
	l := a.local
	l.mu.Lock()
	if old, ok := l.services[svc.ID]; ok && old.svc.Service != svc.Service {
		l.mu.Unlock()
		return badRequest("ID: service ID %q is already registered for service %q", svc.ID, old.svc.Service)
	}
	for _, hc := range hcs {
		if old, ok := l.checks[hc.CheckID]; ok && old.check.ServiceID != svc.ID {
			l.mu.Unlock()
			return badRequest("CheckID: check ID %q is already registered for another service or the node", hc.CheckID)
		}
	}
	if old, ok := l.services[svc.ID]; ok && old.source == sourceConfig && src == sourceAPI {
		src = sourceConfig // keep it under the files' control
	}
	l.services[svc.ID] = &localService{svc: svc, def: def, source: src}
	var stop []*checks.Runner
	keep := map[string]bool{}
	for _, hc := range hcs {
		keep[hc.CheckID] = true
	}
	if replaceChecks {
		for id, c := range l.checks {
			if c.check.ServiceID == svc.ID && !keep[id] && c.source != sourceMaint {
				stop = append(stop, l.removeCheckLocked(id)...)
			}
		}
	}
	var started []*localCheck
	for i, hc := range hcs {
		lc, stopped := l.putCheckLocked(hc, def.Checks[i], src)
		stop = append(stop, stopped...)
		lc.def.ID, lc.def.ServiceID = hc.CheckID, svc.ID
		started = append(started, lc)
	}
	// Service checks share the service's name and tags.
	for _, c := range l.checks {
		if c.check.ServiceID == svc.ID {
			c.check.ServiceName, c.check.ServiceTags = svc.Service, svc.Tags
		}
	}
	l.mu.Unlock()
	for _, r := range stop {
		r.Stop()
	}
	for i, lc := range started {
		a.startRunner(lc, specs[i])
	}
	if src == sourceAPI {
		a.persistService(svc.ID, def)
	}
	l.changed()
	return nil
}

// putCheckLocked puts a check in the local state, keeping the status of a
// check it replaces unless the definition sets one. It returns the runner
// of the replaced check, for the caller to stop once it has unlocked.
func (l *localState) putCheckLocked(hc *catalog.HealthCheck, def httpapi.CheckDefinition, src source) (*localCheck, []*checks.Runner) {
	var stop []*checks.Runner
	if old, ok := l.checks[hc.CheckID]; ok {
		if def.Status == "" {
			hc.Status, hc.Output = old.check.Status, old.check.Output
		}
		if old.runner != nil {
			stop = append(stop, old.runner)
		}
	}
	lc := &localCheck{check: hc, def: def, source: src}
	if hc.Status == catalog.HealthCritical {
		lc.criticalSince = time.Now()
	}
	l.checks[hc.CheckID] = lc
	return lc, stop
}

// removeCheckLocked drops a check and queues its deregistration.
func (l *localState) removeCheckLocked(id string) []*checks.Runner {
	c, ok := l.checks[id]
	if !ok {
		return nil
	}
	delete(l.checks, id)
	l.deletedChecks[id] = true
	if c.runner != nil {
		return []*checks.Runner{c.runner}
	}
	return nil
}

// startRunner starts the runner of a check just put in the local state.
// Results of a runner whose check was replaced meanwhile are dropped.
func (a *Agent) startRunner(lc *localCheck, spec checks.Spec) {
	l := a.local
	r, err := checks.Start(spec, func(id, status, output string) {
		l.updateCheck(lc, status, output)
	}, a.logger.With("component", "checks"))
	if err != nil {
		// buildCheck validated the spec; this would be a bug.
		a.logger.Error("start check runner", "check", spec.CheckID, "error", err)
		return
	}
	l.mu.Lock()
	if l.checks[spec.CheckID] == lc && !l.stopped {
		lc.runner = r
		r = nil
	}
	l.mu.Unlock()
	if r != nil {
		r.Stop()
	}
}

// DeregisterService removes a local service, its checks with it.
func (a *Agent) DeregisterService(id string) error {
	l := a.local
	l.mu.Lock()
	if _, ok := l.services[id]; !ok {
		l.mu.Unlock()
		return fmt.Errorf("%w: unknown service ID %q", rpc.ErrNotFound, id)
	}
	stop := l.removeServiceLocked(id)
	l.mu.Unlock()
	for _, r := range stop {
		r.Stop()
	}
	a.unpersistService(id)
	l.changed()
	return nil
}

func (l *localState) removeServiceLocked(id string) []*checks.Runner {
	delete(l.services, id)
	l.deletedServices[id] = true
	var stop []*checks.Runner
	for cid, c := range l.checks {
		if c.check.ServiceID == id {
			stop = append(stop, l.removeCheckLocked(cid)...)
			// Deregistering the service removes its checks from the
			// catalog too.
			delete(l.deletedChecks, cid)
		}
	}
	return stop
}

// RegisterCheck adds or replaces a check registered over the HTTP API.
func (a *Agent) RegisterCheck(def httpapi.CheckDefinition) error {
	return a.addCheck(def, sourceAPI)
}

func (a *Agent) addCheck(def httpapi.CheckDefinition, src source) error {
	if def.ID == "" {
		def.ID = def.Name
	}
	hc, spec, err := a.buildCheck(def, src, "")
	if err != nil {
		return err
	}
	l := a.local
	l.mu.Lock()
	if def.ServiceID != "" {
		svc, ok := l.services[def.ServiceID]
		if !ok {
			l.mu.Unlock()
			return badRequest("ServiceID: unknown service ID %q", def.ServiceID)
		}
		hc.ServiceName, hc.ServiceTags = svc.svc.Service, svc.svc.Tags
	}
	lc, stop := l.putCheckLocked(hc, def, src)
	l.mu.Unlock()
	for _, r := range stop {
		r.Stop()
	}
	a.startRunner(lc, spec)
	if src == sourceAPI {
		a.persistCheck(hc.CheckID, def)
	}
	l.changed()
	return nil
}

// DeregisterCheck removes a local check.
func (a *Agent) DeregisterCheck(id string) error {
	l := a.local
	l.mu.Lock()
	if _, ok := l.checks[id]; !ok {
		l.mu.Unlock()
		return fmt.Errorf("%w: unknown check ID %q", rpc.ErrNotFound, id)
	}
	stop := l.removeCheckLocked(id)
	l.mu.Unlock()
	for _, r := range stop {
		r.Stop()
	}
	a.unpersistCheck(id)
	l.changed()
	return nil
}

// UpdateTTL sets the status of a TTL check (pass, warn, fail, update).
func (a *Agent) UpdateTTL(id, status, output string) error {
	l := a.local
	l.mu.Lock()
	c, ok := l.checks[id]
	var r *checks.Runner
	if ok {
		r = c.runner
	}
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: unknown check ID %q", rpc.ErrNotFound, id)
	}
	if r == nil || r.Kind() != checks.KindTTL {
		return badRequest("CheckID: %q is not a TTL check", id)
	}
	if err := r.SetTTL(status, output); err != nil {
		return badRequest("Status: %v", err)
	}
	return nil
}

// updateCheck records a runner's result. An unchanged result changes
// nothing, so it is not written to the catalog again.
func (l *localState) updateCheck(lc *localCheck, status, output string) {
	l.mu.Lock()
	if l.checks[lc.check.CheckID] != lc || (lc.check.Status == status && lc.check.Output == output) {
		l.mu.Unlock()
		return
	}
	if status == catalog.HealthCritical && lc.check.Status != catalog.HealthCritical {
		lc.criticalSince = time.Now()
	} else if status != catalog.HealthCritical {
		lc.criticalSince = time.Time{}
	}
	c := *lc.check
	c.Status, c.Output = status, output
	lc.check = &c
	lc.synced = false
	l.mu.Unlock()
	l.changed()
}

// Maintenance-mode check names and the default reason, as Consul has them.
const (
	serviceMaintName    = "Service Maintenance Mode"
	nodeMaintName       = "Node Maintenance Mode"
	defaultMaintReason  = "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."
	defaultNodeMaintMsg = "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
)

// ServiceMaintenance puts a service in maintenance (a critical check that
// takes it out of healthy answers) or back.
func (a *Agent) ServiceMaintenance(id string, enable bool, reason string) error {
	l := a.local
	l.mu.Lock()
	svc, ok := l.services[id]
	if !ok {
		l.mu.Unlock()
		return fmt.Errorf("%w: unknown service ID %q", rpc.ErrNotFound, id)
	}
	if reason == "" {
		reason = defaultMaintReason
	}
	a.setMaintLocked(catalog.ServiceMaintPrefix+id, serviceMaintName, id, svc.svc, enable, reason)
	l.mu.Unlock()
	l.changed()
	return nil
}

// NodeMaintenance puts the whole node in maintenance or back.
func (a *Agent) NodeMaintenance(enable bool, reason string) error {
	if reason == "" {
		reason = defaultNodeMaintMsg
	}
	a.local.mu.Lock()
	a.setMaintLocked(catalog.NodeMaint, nodeMaintName, "", nil, enable, reason)
	a.local.mu.Unlock()
	a.local.changed()
	return nil
}

func (a *Agent) setMaintLocked(checkID, name, serviceID string, svc *catalog.Service, enable bool, reason string) {
	l := a.local
	if !enable {
		l.removeCheckLocked(checkID) // no runner
		return
	}
	hc := &catalog.HealthCheck{
		Node: a.cfg.NodeName, CheckID: checkID, Name: name, Status: catalog.HealthCritical,
		Notes: reason, ServiceID: serviceID, ServiceTags: []string{}, Type: "maintenance",
	}
	if svc != nil {
		hc.ServiceName, hc.ServiceTags = svc.Service, svc.Tags
	}
	l.checks[checkID] = &localCheck{check: hc, source: sourceMaint}
	delete(l.deletedChecks, checkID)
}

// LocalServices is the agent's services by ID (/v1/agent/services).
func (a *Agent) LocalServices() map[string]*catalog.Service {
	l := a.local
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]*catalog.Service, len(l.services))
	for id, s := range l.services {
		c := *s.svc
		c.Tags = slices.Clone(s.svc.Tags)
		c.Meta = maps.Clone(s.svc.Meta)
		out[id] = &c
	}
	return out
}

// LocalChecks is the agent's checks by ID (/v1/agent/checks).
func (a *Agent) LocalChecks() map[string]*catalog.HealthCheck {
	l := a.local
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]*catalog.HealthCheck, len(l.checks))
	for id, c := range l.checks {
		cc := *c.check
		cc.ServiceTags = slices.Clone(c.check.ServiceTags)
		out[id] = &cc
	}
	return out
}
