package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// tableQueries holds prepared queries (*PreparedQuery rows).
const tableQueries = "catalog_queries"

// QueryTemplateNamePrefix is the one template type Consul defines: the
// query's Name is a prefix that the executed name must start with.
const QueryTemplateNamePrefix = "name_prefix_match"

var (
	// ErrInvalidQuery is wrapped by every refusal of a prepared query
	// definition: a bad field, or a name that conflicts with another query.
	ErrInvalidQuery = errors.New("invalid prepared query")
	// ErrQueryNotFound is returned when no query has the ID, no query has
	// the name and no template's prefix matches it.
	ErrQueryNotFound = errors.New("query not found")
)

// PreparedQuery is a stored service query, encoded as Consul writes it
// (api.PreparedQueryDefinition plus the indexes). Token is accepted and
// never stored: Meridian has no ACLs yet.
type PreparedQuery struct {
	ID       string
	Name     string
	Session  string
	Token    string
	Template QueryTemplate
	Service  QueryService
	DNS      QueryDNS
	// CreateIndex and ModifyIndex are the Raft indexes of the query's
	// creation and last change.
	CreateIndex uint64
	ModifyIndex uint64
}

// QueryTemplate makes a query a template (api.QueryTemplate): it answers
// every name that starts with its Name, with the strings of Service
// interpolated from the executed name (see Render).
type QueryTemplate struct {
	// Type is "" (not a template) or QueryTemplateNamePrefix.
	Type string
	// Regexp, when set, is matched against the executed name; its
	// submatches are ${match(N)}.
	Regexp string
	// RemoveEmptyTags drops the tags that interpolate to "".
	RemoveEmptyTags bool
}

// QueryService is what a query looks up (api.ServiceQuery).
type QueryService struct {
	// Service is the service name.
	Service string
	// Failover says which other datacenters to ask, in order, when no
	// instance of this one qualifies.
	Failover QueryFailover
	// OnlyPassing keeps only instances whose every check is passing; else
	// only critical checks disqualify.
	OnlyPassing bool
	// IgnoreCheckIDs are check IDs that never disqualify an instance.
	IgnoreCheckIDs []string
	// Near sorts the answer by distance from this node ("_agent": the
	// agent that asked), unless the request names one.
	Near string
	// Tags every instance must carry; a tag written "!tag" must be absent.
	// Compared case-insensitively.
	Tags []string
	// NodeMeta and ServiceMeta are key/value pairs the node, and the
	// service instance, must carry.
	NodeMeta    map[string]string
	ServiceMeta map[string]string
	// Connect, SamenessGroup, Namespace and Partition are accepted so that
	// Consul's client round-trips; a definition that sets them to anything
	// Meridian cannot do is refused.
	Connect       bool
	SamenessGroup string `json:",omitempty"`
	Namespace     string `json:",omitempty"`
	Partition     string `json:",omitempty"`
}

// QueryFailover lists the other datacenters to try (api.QueryFailoverOptions):
// the NearestN nearest by round-trip time, then Datacenters in order, each at
// most once. Targets is Consul's newer form of Datacenters; only datacenter
// targets are supported, and not together with the other two.
type QueryFailover struct {
	NearestN    int
	Datacenters []string
	Targets     []QueryFailoverTarget
}

// QueryFailoverTarget is one failover target (api.QueryFailoverTarget).
type QueryFailoverTarget struct {
	Peer       string
	Datacenter string
	Partition  string `json:",omitempty"`
	Namespace  string `json:",omitempty"`
}

// QueryDNS holds the DNS options of a query (api.QueryDNSOptions).
type QueryDNS struct {
	// TTL is a Go duration ("10s"); "" uses the agent's service TTL.
	TTL string
}

// IsTemplate reports whether the query is a template.
func (q *PreparedQuery) IsTemplate() bool { return q.Template.Type != "" }

// FailoverDatacenters is the Datacenters list of the failover, or the
// datacenters of its Targets when those are used instead.
func (f QueryFailover) FailoverDatacenters() []string {
	if len(f.Targets) == 0 {
		return f.Datacenters
	}
	out := make([]string, 0, len(f.Targets))
	for _, t := range f.Targets {
		out = append(out, t.Datacenter)
	}
	return out
}

// TTLDuration parses TTL; ok is false when it is empty or not a valid,
// non-negative duration (Validate refuses those).
func (d QueryDNS) TTLDuration() (ttl time.Duration, ok bool) {
	if d.TTL == "" {
		return 0, false
	}
	ttl, err := time.ParseDuration(d.TTL)
	return ttl, err == nil && ttl >= 0
}

// Validate checks a definition as Consul does at creation, naming the first
// problem in one line that wraps ErrInvalidQuery. It does not look at other
// queries (QuerySet does) nor at datacenters and sessions (the server does).
func (q *PreparedQuery) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidQuery, fmt.Sprintf(format, args...))
	}
	switch q.Template.Type {
	case "", QueryTemplateNamePrefix:
	default:
		return bad("template type %q: want %q", q.Template.Type, QueryTemplateNamePrefix)
	}
	// Template options without a type are not a template: Consul takes
	// them and ignores them, and so does this.
	if q.IsTemplate() && q.Template.Regexp != "" {
		if _, err := regexp.Compile(q.Template.Regexp); err != nil {
			return bad("template regexp %q does not compile: %v", q.Template.Regexp, oneLine(err.Error()))
		}
	}
	if q.Name != "" && looksLikeUUID(q.Name) {
		return bad("name %q looks like a query ID", q.Name)
	}
	svc := &q.Service
	if svc.Service == "" && !q.IsTemplate() {
		return bad("Service.Service: a service name is required")
	}
	if svc.Failover.NearestN < 0 {
		return bad("Service.Failover.NearestN %d: must not be negative", svc.Failover.NearestN)
	}
	if len(svc.Failover.Targets) > 0 {
		if svc.Failover.NearestN != 0 || len(svc.Failover.Datacenters) > 0 {
			return bad("Service.Failover.Targets cannot be combined with NearestN or Datacenters")
		}
		for i, t := range svc.Failover.Targets {
			switch {
			case t.Peer != "":
				return bad("Service.Failover.Targets[%d]: peers are not supported", i)
			case t.Datacenter == "":
				return bad("Service.Failover.Targets[%d]: a datacenter is required", i)
			case !defaultTenancy(t.Namespace) || !defaultTenancy(t.Partition):
				return bad("Service.Failover.Targets[%d]: namespaces and partitions are not supported", i)
			}
		}
	}
	if slices.Contains(svc.Failover.Datacenters, "") {
		return bad("Service.Failover.Datacenters: empty datacenter name")
	}
	switch {
	case svc.Connect:
		return bad("Service.Connect: Connect is not supported")
	case svc.SamenessGroup != "":
		return bad("Service.SamenessGroup: sameness groups are not supported")
	case !defaultTenancy(svc.Namespace) || !defaultTenancy(svc.Partition):
		return bad("Service: namespaces and partitions are not supported")
	}
	if q.DNS.TTL != "" {
		ttl, err := time.ParseDuration(q.DNS.TTL)
		if err != nil {
			return bad("DNS.TTL %q is not a duration such as 10s", q.DNS.TTL)
		}
		if ttl < 0 {
			return bad("DNS.TTL %q: must not be negative", q.DNS.TTL)
		}
	}
	if q.IsTemplate() {
		// A trial rendering finds bad interpolations now, not at
		// execution.
		if _, err := q.Render(q.Name); err != nil {
			return err
		}
	}
	return nil
}

func defaultTenancy(s string) bool { return s == "" || s == "default" }

// oneLine keeps the first line of a message.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// looksLikeUUID reports whether s has the shape of a query ID
// (8-4-4-4-12 hex digits), which a name must not have: lookups try the ID
// first.
func looksLikeUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// queryTableSchema is the schema of tableQueries: indexes "id" (query ID),
// "name" (queries with a name), "template" (templates by name, for the
// longest-prefix match) and "session", all case-insensitive.
func queryTableSchema() *memdb.TableSchema {
	qID := func(obj any) (string, bool) { return obj.(*PreparedQuery).ID, true }
	qName := func(obj any) (string, bool) { n := obj.(*PreparedQuery).Name; return n, n != "" }
	qSession := func(obj any) (string, bool) { s := obj.(*PreparedQuery).Session; return s, s != "" }
	return &memdb.TableSchema{
		Name: tableQueries,
		Indexes: map[string]*memdb.IndexSchema{
			"id":       {Name: "id", Unique: true, Indexer: &keyIndexer{fn: qID, lower: true}},
			"name":     {Name: "name", Unique: true, AllowMissing: true, Indexer: &keyIndexer{fn: qName, lower: true}},
			"template": {Name: "template", Unique: true, AllowMissing: true, Indexer: templateIndexer{}},
			"session":  {Name: "session", AllowMissing: true, Indexer: &keyIndexer{fn: qSession, lower: true}},
		},
	}
}

// templateIndexer indexes templates by their lowercased name behind a
// marker byte, so that a template with the empty name (which matches every
// name) has a key too, and answers prefix lookups for LongestPrefix.
type templateIndexer struct{}

var _ memdb.PrefixIndexer = templateIndexer{}

// FromObject implements memdb.SingleIndexer.
func (templateIndexer) FromObject(obj any) (bool, []byte, error) {
	q := obj.(*PreparedQuery)
	if !q.IsTemplate() {
		return false, nil, nil
	}
	return true, templateKey(q.Name), nil
}

// FromArgs implements memdb.Indexer.
func (templateIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("index takes 1 argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("index argument %v: want a string, got %T", args[0], args[0])
	}
	return templateKey(s), nil
}

// PrefixFromArgs implements memdb.PrefixIndexer.
func (t templateIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	return t.FromArgs(args...)
}

func templateKey(name string) []byte { return append([]byte{'t'}, strings.ToLower(name)...) }

// QuerySet creates or updates the query with q's ID (required), as Consul's
// state store does: the name must not be taken by another query nor be
// another query's ID, only one template may have the empty name, and the
// definition must pass Validate. CreateIndex is kept on update; Token is
// dropped. The caller keeps ownership of q.
func QuerySet(tx *memdb.Txn, idx uint64, q *PreparedQuery) error {
	if q == nil || q.ID == "" {
		return fmt.Errorf("%w: ID missing", ErrInvalidQuery)
	}
	if err := q.Validate(); err != nil {
		return err
	}
	existing, err := getQuery(tx, q.ID)
	if err != nil {
		return fmt.Errorf("set prepared query %q: %w", q.ID, err)
	}
	if q.Name != "" {
		raw, err := tx.First(tableQueries, "name", q.Name)
		if err != nil {
			return fmt.Errorf("set prepared query %q: %w", q.ID, err)
		}
		if other, ok := raw.(*PreparedQuery); ok && !strings.EqualFold(other.ID, q.ID) {
			return fmt.Errorf("%w: name %q is taken by query %q", ErrInvalidQuery, q.Name, other.ID)
		}
		other, err := getQuery(tx, q.Name)
		if err != nil {
			return fmt.Errorf("set prepared query %q: %w", q.ID, err)
		}
		if other != nil {
			return fmt.Errorf("%w: name %q is the ID of another query", ErrInvalidQuery, q.Name)
		}
	} else if q.IsTemplate() {
		raw, err := tx.First(tableQueries, "template", "")
		if err != nil {
			return fmt.Errorf("set prepared query %q: %w", q.ID, err)
		}
		if other, ok := raw.(*PreparedQuery); ok && !strings.EqualFold(other.ID, q.ID) {
			return fmt.Errorf("%w: a template with the empty name exists (query %q)", ErrInvalidQuery, other.ID)
		}
	}
	nq := cloneQuery(q)
	nq.Token = ""
	nq.CreateIndex, nq.ModifyIndex = idx, idx
	if existing != nil {
		nq.ID = existing.ID
		nq.CreateIndex = existing.CreateIndex
	}
	if err := tx.Insert(tableQueries, nq); err != nil {
		return fmt.Errorf("set prepared query %q: %w", q.ID, err)
	}
	return wrapIf(bumpIndex(tx, tableQueries, idx), "set prepared query %q", q.ID)
}

// QueryDelete deletes the query with that ID; ErrQueryNotFound when there
// is none.
func QueryDelete(tx *memdb.Txn, idx uint64, id string) error {
	q, err := getQuery(tx, id)
	if err != nil {
		return fmt.Errorf("delete prepared query %q: %w", id, err)
	}
	if q == nil {
		return fmt.Errorf("delete prepared query %q: %w", id, ErrQueryNotFound)
	}
	if err := tx.Delete(tableQueries, q); err != nil {
		return fmt.Errorf("delete prepared query %q: %w", id, err)
	}
	return wrapIf(bumpIndex(tx, tableQueries, idx), "delete prepared query %q", id)
}

// QueryDeleteSession deletes every query tied to the session, as Consul
// does when a session ends.
func QueryDeleteSession(tx *memdb.Txn, idx uint64, session string) error {
	if session == "" {
		return nil
	}
	qs, err := collect[*PreparedQuery](tx, tableQueries, "session", session)
	if err != nil {
		return fmt.Errorf("delete prepared queries of session %q: %w", session, err)
	}
	for _, q := range qs {
		if err := tx.Delete(tableQueries, q); err != nil {
			return fmt.Errorf("delete prepared query %q of session %q: %w", q.ID, session, err)
		}
	}
	if len(qs) == 0 {
		return nil
	}
	return wrapIf(bumpIndex(tx, tableQueries, idx), "delete prepared queries of session %q", session)
}

// QueryGet returns the query with that ID, or nil and no error.
func QueryGet(tx *memdb.Txn, ws memdb.WatchSet, id string) (uint64, *PreparedQuery, error) {
	idx, err := tablesIndex(tx, ws, tableQueries)
	if err != nil {
		return 0, nil, fmt.Errorf("prepared query %q: %w", id, err)
	}
	q, err := getQuery(tx, id)
	if err != nil {
		return 0, nil, fmt.Errorf("prepared query %q: %w", id, err)
	}
	return idx, q, nil
}

// QueryList returns every query, ordered by ID.
func QueryList(tx *memdb.Txn, ws memdb.WatchSet) (uint64, []*PreparedQuery, error) {
	idx, err := tablesIndex(tx, ws, tableQueries)
	if err != nil {
		return 0, nil, fmt.Errorf("prepared queries: %w", err)
	}
	qs, err := collect[*PreparedQuery](tx, tableQueries, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("prepared queries: %w", err)
	}
	if qs == nil {
		qs = []*PreparedQuery{}
	}
	return idx, qs, nil
}

// QueryResolve finds the query that idOrName names, in Consul's order: the
// query with that ID, then the query with that name, then the template
// whose name is the longest prefix of it. A template comes back rendered
// for idOrName (Render); nil and no error when nothing matches.
func QueryResolve(tx *memdb.Txn, ws memdb.WatchSet, idOrName string) (uint64, *PreparedQuery, error) {
	idx, err := tablesIndex(tx, ws, tableQueries)
	if err != nil {
		return 0, nil, fmt.Errorf("resolve prepared query %q: %w", idOrName, err)
	}
	if idOrName == "" {
		return idx, nil, nil
	}
	render := func(q *PreparedQuery) (uint64, *PreparedQuery, error) {
		if !q.IsTemplate() {
			return idx, q, nil
		}
		r, err := q.Render(idOrName)
		if err != nil {
			return 0, nil, fmt.Errorf("resolve prepared query %q: %w", idOrName, err)
		}
		return idx, r, nil
	}
	if looksLikeUUID(idOrName) {
		q, err := getQuery(tx, idOrName)
		if err != nil {
			return 0, nil, fmt.Errorf("resolve prepared query %q: %w", idOrName, err)
		}
		if q != nil {
			return render(q)
		}
	}
	raw, err := tx.First(tableQueries, "name", idOrName)
	if err != nil {
		return 0, nil, fmt.Errorf("resolve prepared query %q: %w", idOrName, err)
	}
	if q, ok := raw.(*PreparedQuery); ok {
		return render(q)
	}
	raw, err = tx.LongestPrefix(tableQueries, "template_prefix", idOrName)
	if err != nil {
		return 0, nil, fmt.Errorf("resolve prepared query %q: %w", idOrName, err)
	}
	if q, ok := raw.(*PreparedQuery); ok {
		return render(q)
	}
	return idx, nil, nil
}

// QueryNodes runs a (rendered) query's lookup on this catalog: the
// instances of svc.Service on nodes carrying all of NodeMeta, whose service
// carries all of ServiceMeta, every required tag and none of the "!" ones
// (case-insensitive), and that are healthy: no critical check (with
// OnlyPassing, no check that is not passing), checks named in
// IgnoreCheckIDs left out of that judgement. The order is
// CheckServiceNodes'; the caller shuffles or sorts. The index is the
// service's.
func QueryNodes(tx *memdb.Txn, ws memdb.WatchSet, svc *QueryService) (uint64, []*CheckServiceNode, error) {
	var must, not []string
	for _, t := range svc.Tags {
		if rest, ok := strings.CutPrefix(t, "!"); ok {
			not = append(not, rest)
		} else {
			must = append(must, t)
		}
	}
	idx, nodes, err := CheckServiceNodes(tx, ws, svc.Service, ServiceQuery{Tags: must, NodeMeta: svc.NodeMeta})
	if err != nil {
		return 0, nil, err
	}
	out := make([]*CheckServiceNode, 0, len(nodes))
	for _, n := range nodes {
		if queryHealthy(n.Checks, svc) && metaHas(n.Service.Meta, svc.ServiceMeta) && !anyTag(n.Service.Tags, not) {
			out = append(out, n)
		}
	}
	return idx, out, nil
}

func queryHealthy(checks []*HealthCheck, svc *QueryService) bool {
	for _, c := range checks {
		if slices.Contains(svc.IgnoreCheckIDs, c.CheckID) {
			continue
		}
		if c.Status == HealthCritical || svc.OnlyPassing && c.Status != HealthPassing {
			return false
		}
	}
	return true
}

func metaHas(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func anyTag(have, not []string) bool {
	for _, n := range not {
		if slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, n) }) {
			return true
		}
	}
	return false
}

func getQuery(tx *memdb.Txn, id string) (*PreparedQuery, error) {
	raw, err := tx.First(tableQueries, "id", id)
	if err != nil {
		return nil, fmt.Errorf("lookup prepared query: %w", err)
	}
	q, _ := raw.(*PreparedQuery)
	return q, nil
}

// cloneQuery makes the stored copy of a query: every slice and map copied,
// empty ones nil.
func cloneQuery(q *PreparedQuery) *PreparedQuery {
	c := *q
	s := &c.Service
	s.Failover.Datacenters = cloneSlice(q.Service.Failover.Datacenters)
	s.Failover.Targets = cloneSlice(q.Service.Failover.Targets)
	s.IgnoreCheckIDs = cloneSlice(q.Service.IgnoreCheckIDs)
	s.Tags = cloneSlice(q.Service.Tags)
	s.NodeMeta = cloneMap(q.Service.NodeMeta)
	s.ServiceMeta = cloneMap(q.Service.ServiceMeta)
	return &c
}

func cloneSlice[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}
