package catalog

// Health states of a check, as Consul names them.
const (
	// HealthAny matches every state in ChecksInState; it is never a check's
	// status.
	HealthAny = "any"
	// HealthPassing is the status of a healthy check.
	HealthPassing = "passing"
	// HealthWarning is the status of a degraded check.
	HealthWarning = "warning"
	// HealthCritical is the status of a failing check, and the default
	// status of a check registered without one.
	HealthCritical = "critical"
	// HealthMaint is the aggregated status Consul reports for an instance in
	// maintenance; the maintenance check itself is critical.
	HealthMaint = "maintenance"
)

// Check IDs with a meaning of their own.
const (
	// NodeMaint is the check ID of a node's maintenance-mode check.
	NodeMaint = "_node_maintenance"
	// ServiceMaintPrefix prefixes the check ID of a service's
	// maintenance-mode check; the service ID follows it.
	ServiceMaintPrefix = "_service_maintenance:"
	// SerfCheckID is the node-level check the servers keep from gossip
	// membership. A node whose serfHealth is critical may lose its name to
	// another node ID (see EnsureNode).
	SerfCheckID = "serfHealth"
	// ConsulServiceID is the service every server has on its node, as in
	// Consul: consul.service.consul resolves to the servers. The leader
	// keeps it from gossip; agents never sync it away.
	ConsulServiceID = "consul"
)

// Node is a host in the catalog, encoded as Consul's api.Node.
type Node struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	Meta            map[string]string
	CreateIndex     uint64
	ModifyIndex     uint64
}

// ServiceAddress is one tagged address of a service (api.ServiceAddress).
type ServiceAddress struct {
	Address string
	Port    int
}

// ServicePort is one named port of a service with several
// (api.ServicePort); one of them is the Default.
type ServicePort struct {
	Name    string
	Port    int
	Default bool
}

// Locality is where a service runs (api.Locality).
type Locality struct {
	Region string
	Zone   string
}

// Weights are the DNS SRV weights of a service instance by health state
// (api.AgentWeights). A registration with both zero gets {1, 1}.
type Weights struct {
	Passing int
	Warning int
}

// Service is one service instance on a node, in the shape Consul's health
// endpoints and /v1/catalog/node write it (api.AgentService). Tags is never
// null in JSON.
type Service struct {
	Kind              string `json:",omitempty"`
	ID                string
	Service           string
	Tags              []string
	Address           string
	TaggedAddresses   map[string]ServiceAddress `json:",omitempty"`
	Meta              map[string]string
	Port              int
	Ports             []ServicePort `json:",omitempty" bexpr:"-"`
	SocketPath        string        `json:",omitempty"`
	Weights           Weights
	EnableTagOverride bool
	Locality          *Locality `json:",omitempty" bexpr:"-"`
	CreateIndex       uint64
	ModifyIndex       uint64
}

// HealthCheckDefinition records how a check is run (api.HealthCheckDefinition).
// Durations are Go duration strings ("10s"), as Consul writes them; a zero
// duration is stored as "" and omitted.
type HealthCheckDefinition struct {
	HTTP                           string              `json:",omitempty"`
	TLSServerName                  string              `json:",omitempty"`
	TLSSkipVerify                  bool                `json:",omitempty"`
	Header                         map[string][]string `json:",omitempty"`
	Method                         string              `json:",omitempty"`
	Body                           string              `json:",omitempty"`
	DisableRedirects               bool                `json:",omitempty"`
	TCP                            string              `json:",omitempty"`
	TCPUseTLS                      bool                `json:",omitempty"`
	UDP                            string              `json:",omitempty"`
	GRPC                           string              `json:",omitempty"`
	GRPCUseTLS                     bool                `json:",omitempty"`
	OSService                      string              `json:",omitempty"`
	Interval                       string              `json:",omitempty"`
	Timeout                        string              `json:",omitempty"`
	DeregisterCriticalServiceAfter string              `json:",omitempty"`
	TTL                            string              `json:",omitempty"`
	OutputMaxSize                  uint                `json:",omitempty"`
	ScriptArgs                     []string            `json:",omitempty"`
	DockerContainerID              string              `json:",omitempty"`
	Shell                          string              `json:",omitempty"`
	AliasNode                      string              `json:",omitempty"`
	AliasService                   string              `json:",omitempty"`
	SessionName                    string              `json:",omitempty"`
}

// HealthCheck is one check on a node, node-level when ServiceID is empty
// (api.HealthCheck). ServiceName and ServiceTags are filled from the service
// on write; ServiceTags is never null in JSON.
type HealthCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	Interval    string
	Timeout     string
	ExposedPort int
	Definition  HealthCheckDefinition
	CreateIndex uint64
	ModifyIndex uint64
}

// ServiceNode is one instance joined with its node, the flat shape of
// /v1/catalog/service/:name (api.CatalogService). CreateIndex and ModifyIndex
// are the service's.
type ServiceNode struct {
	ID                       string
	Node                     string
	Address                  string
	Datacenter               string
	TaggedAddresses          map[string]string
	NodeMeta                 map[string]string
	ServiceKind              string
	ServiceID                string
	ServiceName              string
	ServiceTags              []string
	ServiceAddress           string
	ServiceTaggedAddresses   map[string]ServiceAddress `json:",omitempty"`
	ServiceWeights           Weights
	ServiceMeta              map[string]string
	ServicePort              int
	ServicePorts             []ServicePort `json:",omitempty" bexpr:"-"`
	ServiceSocketPath        string        `json:",omitempty"`
	ServiceEnableTagOverride bool
	ServiceLocality          *Locality `json:",omitempty" bexpr:"-"`
	CreateIndex              uint64
	ModifyIndex              uint64
}

// CheckServiceNode is one instance with its node and every check that bears
// on it, node-level checks first (api.ServiceEntry, /v1/health/service).
// Checks is never null in JSON.
type CheckServiceNode struct {
	Node    *Node
	Service *Service
	Checks  []*HealthCheck
}

// NodeServices is a node and its services keyed by service ID
// (api.CatalogNode, /v1/catalog/node/:name).
type NodeServices struct {
	Node     *Node
	Services map[string]*Service
}

// RegisterRequest is the body of PUT /v1/catalog/register
// (api.CatalogRegistration) and what the agent's anti-entropy sends.
type RegisterRequest struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	NodeMeta        map[string]string
	Service         *Service
	Check           *HealthCheck
	Checks          []*HealthCheck
	// SkipNodeUpdate leaves an existing node record as it is; a missing
	// node is still created.
	SkipNodeUpdate bool
}

// DeregisterRequest is the body of PUT /v1/catalog/deregister
// (api.CatalogDeregistration): the whole node when ServiceID and CheckID are
// empty, else that service (with its checks) or that check.
type DeregisterRequest struct {
	Node       string
	Datacenter string `json:",omitempty"`
	ServiceID  string `json:",omitempty"`
	CheckID    string `json:",omitempty"`
}

// ServiceQuery narrows ServiceNodes and CheckServiceNodes.
type ServiceQuery struct {
	// Tags lists tags that every returned instance must carry, compared
	// case-insensitively as Consul does.
	Tags []string
	// NodeMeta lists key/value pairs the instance's node must carry, all of
	// them, compared exactly.
	NodeMeta map[string]string
	// Passing keeps only instances whose every check, node-level checks
	// included, is passing (warning is not). Only CheckServiceNodes reads it.
	Passing bool
}
