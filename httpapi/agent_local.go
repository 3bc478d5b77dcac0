package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meridian/meridian/catalog"
)

// LocalAgent is what the local service and check endpoints need from the
// agent. Errors wrapping rpc.ErrBadRequest answer 400 and those wrapping
// rpc.ErrNotFound 404, with the error's text.
type LocalAgent interface {
	// RegisterService adds or replaces a service (and its checks) in the
	// agent's local state; replaceChecks removes the service's checks that
	// def no longer names.
	RegisterService(def ServiceDefinition, replaceChecks bool) error
	// DeregisterService removes a local service and its checks.
	DeregisterService(id string) error
	// RegisterCheck adds or replaces a local check.
	RegisterCheck(def CheckDefinition) error
	// DeregisterCheck removes a local check.
	DeregisterCheck(id string) error
	// UpdateTTL sets the status and output of a TTL check.
	UpdateTTL(id, status, output string) error
	// ServiceMaintenance puts a local service in or out of maintenance.
	ServiceMaintenance(id string, enable bool, reason string) error
	// NodeMaintenance puts the node in or out of maintenance.
	NodeMaintenance(enable bool, reason string) error
	// LocalServices is the local services by ID.
	LocalServices() map[string]*catalog.Service
	// LocalChecks is the local checks by ID.
	LocalChecks() map[string]*catalog.HealthCheck
	// LocalChanged is closed at the next change of the local services or
	// checks.
	LocalChanged() <-chan struct{}
	// Reload re-reads the service and check definitions from the config.
	Reload() error
	// SyncLocal pushes the local changes to the catalog and returns once
	// they are there, or it gave up (the push is retried later).
	SyncLocal(ctx context.Context)
}

// ServiceDefinition is a local service as registered through
// /v1/agent/service/register or written in a config file.
type ServiceDefinition struct {
	ID                string
	Name              string
	Tags              []string
	Address           string
	Port              int
	Meta              map[string]string
	Weights           *catalog.Weights
	EnableTagOverride bool
	Checks            []CheckDefinition
	// TaggedAddresses are the service's other addresses by tag ("lan",
	// "wan", "lan_ipv4", ...), as Consul's.
	TaggedAddresses map[string]catalog.ServiceAddress
	// SocketPath is the unix socket the service listens on, if any.
	SocketPath string
	// Ports are the service's named ports (one the Default), if it has
	// several.
	Ports []catalog.ServicePort
	// Locality is the region and zone the service runs in.
	Locality *catalog.Locality
}

// CheckDefinition is a local check, node-level when ServiceID is empty.
type CheckDefinition struct {
	ID                             string
	Name                           string
	Notes                          string
	ServiceID                      string
	HTTP                           string
	Method                         string
	Header                         map[string][]string
	Body                           string
	TLSSkipVerify                  bool
	TCP                            string
	TTL                            time.Duration
	Args                           []string
	Interval                       time.Duration
	Timeout                        time.Duration
	DeregisterCriticalServiceAfter time.Duration
	SuccessBeforePassing           int
	FailuresBeforeCritical         int
	Status                         string
	// Unsupported names a kind of check Meridian does not run (GRPC,
	// DockerContainerID, ...) when the definition asked for one.
	Unsupported string
}

// wireService is the register body in Consul's shape
// (api.AgentServiceRegistration); keys are matched without underscores and
// case-insensitively, so CamelCase and snake_case both work.
type wireService struct {
	ID                string
	Name              string
	Tags              []string
	Address           string
	Port              int
	Meta              map[string]string
	Weights           *catalog.Weights
	EnableTagOverride bool
	TaggedAddresses   map[string]catalog.ServiceAddress
	SocketPath        string
	Ports             []catalog.ServicePort
	Locality          *catalog.Locality
	Check             *wireCheck
	Checks            []*wireCheck
}

// wireCheck is a check in Consul's shape (api.AgentCheckRegistration and
// api.AgentServiceCheck).
type wireCheck struct {
	ID                             string
	CheckID                        string
	Name                           string
	Notes                          string
	ServiceID                      string
	HTTP                           string
	Method                         string
	Header                         map[string][]string
	Body                           string
	TLSSkipVerify                  bool
	TCP                            string
	TTL                            json.RawMessage
	Interval                       json.RawMessage
	Timeout                        json.RawMessage
	DeregisterCriticalServiceAfter json.RawMessage
	Args                           []string
	ScriptArgs                     []string
	SuccessBeforePassing           int
	FailuresBeforeCritical         int
	Status                         string
	GRPC                           string
	DockerContainerID              string
	UDP                            string
	H2PING                         string
	AliasNode                      string
	AliasService                   string
	OSService                      string
}

// localOpaqueKeys name, in lower case without underscores, the fields of
// service and check definitions that hold user data whose keys must stay
// as written (tagged address names such as lan_ipv4 among them).
var localOpaqueKeys = map[string]bool{"meta": true, "header": true, "nodemeta": true, "taggedaddresses": true}

// normalizeKeys strips underscores from the object keys of v, leaving the
// keys inside the fields opaque names alone.
func normalizeKeys(v any, opaque map[string]bool) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			nk := strings.ReplaceAll(k, "_", "")
			if opaque[strings.ToLower(nk)] {
				out[nk] = val
				continue
			}
			out[nk] = normalizeKeys(val, opaque)
		}
		return out
	case []any:
		for i := range t {
			t[i] = normalizeKeys(t[i], opaque)
		}
		return t
	}
	return v
}

// decodeLocal decodes a JSON body in Consul's shape into v.
func decodeLocal(body []byte, v any) error {
	var raw any
	if !json.Valid(body) {
		err := json.Unmarshal(body, &raw)
		return badf("request body: %s", jsonError(err))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return badf("request body: %s", jsonError(err))
	}
	if _, ok := raw.(map[string]any); !ok {
		return badf("request body: want a JSON object")
	}
	norm, err := json.Marshal(normalizeKeys(raw, localOpaqueKeys))
	if err != nil {
		return badf("request body: %v", err)
	}
	if err := json.Unmarshal(norm, v); err != nil {
		return badf("request body: %s", jsonError(err))
	}
	return nil
}

// DecodeServiceDefinition parses a service registration body in Consul's
// shape, naming the field of the first problem.
func DecodeServiceDefinition(body []byte) (ServiceDefinition, error) {
	var w wireService
	if err := decodeLocal(body, &w); err != nil {
		return ServiceDefinition{}, err
	}
	if w.Name == "" {
		return ServiceDefinition{}, badf("Name: missing service name")
	}
	def := ServiceDefinition{
		ID: w.ID, Name: w.Name, Tags: w.Tags, Address: w.Address, Port: w.Port,
		Meta: w.Meta, Weights: w.Weights, EnableTagOverride: w.EnableTagOverride,
		TaggedAddresses: w.TaggedAddresses, SocketPath: w.SocketPath, Ports: w.Ports, Locality: w.Locality,
	}
	if err := def.Validate(); err != nil {
		return ServiceDefinition{}, badf("%v", err)
	}
	var wcs []*wireCheck
	var names []string
	if w.Check != nil {
		wcs = append(wcs, w.Check)
		names = append(names, "Check")
	}
	for i, c := range w.Checks {
		if c == nil {
			continue
		}
		wcs = append(wcs, c)
		names = append(names, "Checks["+strconv.Itoa(i)+"]")
	}
	for i, wc := range wcs {
		c, err := wc.definition(names[i] + ".")
		if err != nil {
			return ServiceDefinition{}, err
		}
		def.Checks = append(def.Checks, c)
	}
	return def, nil
}

// Validate checks what a service definition holds beyond its name, as
// Consul's agent does: ports in range, and Ports, when given, each named
// once with a port and exactly one of them the Default. The error names
// the field.
func (d *ServiceDefinition) Validate() error {
	if d.Port < 0 || d.Port > 65535 {
		return fmt.Errorf("Port: %d is not a port", d.Port)
	}
	for tag, a := range d.TaggedAddresses {
		if a.Port < 0 || a.Port > 65535 {
			return fmt.Errorf("TaggedAddresses[%q].Port: %d is not a port", tag, a.Port)
		}
	}
	if len(d.Ports) == 0 {
		return nil
	}
	seen := map[string]bool{}
	defaults := 0
	for i, p := range d.Ports {
		switch {
		case strings.TrimSpace(p.Name) == "":
			return fmt.Errorf("Ports[%d].Name: cannot be empty", i)
		case p.Port <= 0 || p.Port > 65535:
			return fmt.Errorf("Ports[%d].Port: %d is not a port", i, p.Port)
		case seen[p.Name]:
			return fmt.Errorf("Ports[%d].Name: %q has to be unique", i, p.Name)
		}
		seen[p.Name] = true
		if p.Default {
			defaults++
		}
	}
	if defaults != 1 {
		return fmt.Errorf("Ports: exactly one port must be marked Default, got %d", defaults)
	}
	return nil
}

// DecodeCheckDefinition parses a check registration body in Consul's shape.
func DecodeCheckDefinition(body []byte) (CheckDefinition, error) {
	var w wireCheck
	if err := decodeLocal(body, &w); err != nil {
		return CheckDefinition{}, err
	}
	c, err := w.definition("")
	if err != nil {
		return CheckDefinition{}, err
	}
	if c.ID == "" && c.Name == "" {
		return CheckDefinition{}, badf("Name: missing check name")
	}
	return c, nil
}

func (w *wireCheck) definition(prefix string) (CheckDefinition, error) {
	c := CheckDefinition{
		ID: w.ID, Name: w.Name, Notes: w.Notes, ServiceID: w.ServiceID,
		HTTP: w.HTTP, Method: w.Method, Header: w.Header, Body: w.Body, TLSSkipVerify: w.TLSSkipVerify,
		TCP: w.TCP, Args: w.Args,
		SuccessBeforePassing: w.SuccessBeforePassing, FailuresBeforeCritical: w.FailuresBeforeCritical,
		Status: w.Status,
	}
	if c.ID == "" {
		c.ID = w.CheckID
	}
	if len(c.Args) == 0 {
		c.Args = w.ScriptArgs
	}
	for _, u := range []struct{ name, v string }{
		{"GRPC", w.GRPC}, {"DockerContainerID", w.DockerContainerID}, {"UDP", w.UDP},
		{"H2PING", w.H2PING}, {"AliasNode", w.AliasNode}, {"AliasService", w.AliasService}, {"OSService", w.OSService},
	} {
		if u.v != "" {
			c.Unsupported = u.name
		}
	}
	switch c.Status {
	case "", catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical:
	default:
		return c, badf("%sStatus: %q is not one of passing, warning, critical", prefix, c.Status)
	}
	for _, d := range []struct {
		name string
		raw  json.RawMessage
		dst  *time.Duration
	}{
		{"TTL", w.TTL, &c.TTL}, {"Interval", w.Interval, &c.Interval}, {"Timeout", w.Timeout, &c.Timeout},
		{"DeregisterCriticalServiceAfter", w.DeregisterCriticalServiceAfter, &c.DeregisterCriticalServiceAfter},
	} {
		v, err := parseDurationJSON(d.raw)
		if err != nil {
			return c, badf("%s%s: %v", prefix, d.name, err)
		}
		*d.dst = v
	}
	return c, nil
}

// parseDurationJSON reads a duration written as a Go duration string
// ("10s") or a number of nanoseconds.
func parseDurationJSON(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		if d < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return d, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("%s is not a duration", raw)
	}
	if n < 0 {
		return 0, fmt.Errorf("%d is negative", n)
	}
	return time.Duration(n), nil
}

// agentLocalRoutes registers the endpoints of the agent's local services and
// checks: /v1/agent/service..., /v1/agent/check..., /v1/agent/services,
// /v1/agent/checks, /v1/agent/maintenance.
func (s *Server) agentLocalRoutes() {
	s.handle("PUT /v1/agent/service/register", s.synced(s.agentServiceRegister))
	s.handle("PUT /v1/agent/service/deregister/{id}", s.synced(s.agentServiceDeregister))
	s.handle("PUT /v1/agent/service/maintenance/{id}", s.synced(s.agentServiceMaintenance))
	s.handle("GET /v1/agent/services", s.agentServices)
	s.handle("GET /v1/agent/service/{id}", s.agentService)
	s.handle("GET /v1/agent/checks", s.agentChecks)
	s.handle("PUT /v1/agent/check/register", s.synced(s.agentCheckRegister))
	s.handle("PUT /v1/agent/check/deregister/{id}", s.synced(s.agentCheckDeregister))
	s.handle("PUT /v1/agent/check/pass/{id}", s.synced(s.agentCheckTTL(catalog.HealthPassing)))
	s.handle("PUT /v1/agent/check/warn/{id}", s.synced(s.agentCheckTTL(catalog.HealthWarning)))
	s.handle("PUT /v1/agent/check/fail/{id}", s.synced(s.agentCheckTTL(catalog.HealthCritical)))
	s.handle("PUT /v1/agent/check/update/{id}", s.synced(s.agentCheckUpdate))
	s.handle("PUT /v1/agent/maintenance", s.synced(s.agentNodeMaintenance))
	s.handle("PUT /v1/agent/reload", s.agentReload)
}

func (s *Server) agentServiceRegister(_ http.ResponseWriter, r *http.Request) (any, error) {
	replace, err := parseBool(r.URL.Query(), "replace-existing-checks")
	if err != nil {
		return nil, err
	}
	body, err := readBody(r, maxBodyBytes)
	if err != nil {
		return nil, err
	}
	def, err := DecodeServiceDefinition(body)
	if err != nil {
		return nil, err
	}
	return nil, s.agent.RegisterService(def, replace)
}

func (s *Server) agentServiceDeregister(_ http.ResponseWriter, r *http.Request) (any, error) {
	return nil, s.agent.DeregisterService(r.PathValue("id"))
}

// maintenanceParams reads enable (required) and reason.
func maintenanceParams(r *http.Request) (bool, string, error) {
	q := r.URL.Query()
	if _, ok := q["enable"]; !ok {
		return false, "", badf("enable: missing value")
	}
	enable, err := parseBool(q, "enable")
	return enable, q.Get("reason"), err
}

func (s *Server) agentServiceMaintenance(_ http.ResponseWriter, r *http.Request) (any, error) {
	enable, reason, err := maintenanceParams(r)
	if err != nil {
		return nil, err
	}
	return nil, s.agent.ServiceMaintenance(r.PathValue("id"), enable, reason)
}

func (s *Server) agentNodeMaintenance(_ http.ResponseWriter, r *http.Request) (any, error) {
	enable, reason, err := maintenanceParams(r)
	if err != nil {
		return nil, err
	}
	return nil, s.agent.NodeMaintenance(enable, reason)
}

// synced answers a change of the local services and checks once the
// catalog has it, as Consul's agent does, so a read right after the write
// sees it.
func (s *Server) synced(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		v, err := h(w, r)
		if err == nil {
			s.agent.SyncLocal(r.Context())
		}
		return v, err
	}
}

// agentServices and agentChecks answer the local state, with ?filter= as
// Consul's (on the fields of each service or check).
func (s *Server) agentServices(_ http.ResponseWriter, r *http.Request) (any, error) {
	return withFilter(r, s.agent.LocalServices())
}

// agentServiceAnswer is Consul's api.AgentService of one local service:
// the definition, its datacenter and the hash of its content.
type agentServiceAnswer struct {
	*catalog.Service
	ContentHash string
	Datacenter  string
}

// agentService answers one local service, as Consul's: with its
// ContentHash (also in X-Consul-ContentHash), and blocking while
// ?hash= is that hash, until the service changes or ?wait passes.
func (s *Server) agentService(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	wait := opts.MaxWait
	if wait <= 0 {
		wait = min(defaultBlockingWait, s.cfg.MaxQueryTime)
	}
	waitHash := r.URL.Query().Get("hash")
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		changed := s.agent.LocalChanged()
		svc, ok := s.agent.LocalServices()[id]
		if !ok {
			return nil, &notFound{msg: fmt.Sprintf("unknown service ID %q", id)}
		}
		hash := contentHash(svc)
		if waitHash == "" || waitHash != hash {
			w.Header().Set("X-Consul-ContentHash", hash)
			return agentServiceAnswer{Service: svc, ContentHash: hash, Datacenter: s.agent.Datacenter()}, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			waitHash = "" // answer the unchanged service
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
}

// contentHash is a service's ContentHash: 16 hex digits of a hash of its
// JSON, which changes with any field of the definition.
func contentHash(svc *catalog.Service) string {
	b, _ := json.Marshal(svc)
	h := fnv.New64a()
	h.Write(b)
	return fmt.Sprintf("%016x", h.Sum64())
}

func (s *Server) agentChecks(_ http.ResponseWriter, r *http.Request) (any, error) {
	return withFilter(r, s.agent.LocalChecks())
}

func (s *Server) agentCheckRegister(_ http.ResponseWriter, r *http.Request) (any, error) {
	body, err := readBody(r, maxBodyBytes)
	if err != nil {
		return nil, err
	}
	def, err := DecodeCheckDefinition(body)
	if err != nil {
		return nil, err
	}
	return nil, s.agent.RegisterCheck(def)
}

func (s *Server) agentCheckDeregister(_ http.ResponseWriter, r *http.Request) (any, error) {
	return nil, s.agent.DeregisterCheck(r.PathValue("id"))
}

func (s *Server) agentCheckTTL(status string) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) (any, error) {
		return nil, s.agent.UpdateTTL(r.PathValue("id"), status, r.URL.Query().Get("note"))
	}
}

func (s *Server) agentCheckUpdate(_ http.ResponseWriter, r *http.Request) (any, error) {
	body, err := readBody(r, maxBodyBytes)
	if err != nil {
		return nil, err
	}
	var u struct{ Status, Output string }
	if err := decodeLocal(body, &u); err != nil {
		return nil, err
	}
	switch u.Status {
	case catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical:
	default:
		return nil, badf("Status: %q is not one of passing, warning, critical", u.Status)
	}
	return nil, s.agent.UpdateTTL(r.PathValue("id"), u.Status, u.Output)
}

func (s *Server) agentReload(_ http.ResponseWriter, _ *http.Request) (any, error) {
	return nil, s.agent.Reload()
}
