package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/meridian/meridian/rpc"
)

// autopilotRoutes mounts Consul's autopilot endpoints.
func (s *Server) autopilotRoutes() {
	s.handle("GET /v1/operator/autopilot/configuration", s.autopilotGetConfig)
	s.handle("PUT /v1/operator/autopilot/configuration", s.autopilotSetConfig)
	s.handle("GET /v1/operator/autopilot/health", s.autopilotHealth)
	s.handle("GET /v1/operator/autopilot/state", s.autopilotState)
}

// readableDuration is a duration as Consul's API writes one ("200ms") and
// reads one (that, or nanoseconds).
type readableDuration time.Duration

// MarshalJSON implements json.Marshaler.
func (d readableDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *readableDuration) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*d = readableDuration(n)
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return badf("want a duration such as \"200ms\" or nanoseconds, got %s", b)
	}
	v, err := time.ParseDuration(str)
	if err != nil {
		return badf("%q is not a duration such as \"200ms\"", str)
	}
	*d = readableDuration(v)
	return nil
}

// autopilotConfigJSON is rpc.AutopilotConfig in Consul's JSON.
type autopilotConfigJSON struct {
	CleanupDeadServers      bool
	LastContactThreshold    readableDuration
	MaxTrailingLogs         uint64
	MinQuorum               uint
	ServerStabilizationTime readableDuration
	RedundancyZoneTag       string
	DisableUpgradeMigration bool
	UpgradeVersionTag       string
	CreateIndex             uint64
	ModifyIndex             uint64
}

func (s *Server) autopilotGetConfig(w http.ResponseWriter, r *http.Request) (any, error) {
	c, err := query[struct{}, rpc.AutopilotConfig](s, w, r, rpc.MethodAutopilotGetConfig, struct{}{})
	if err != nil {
		return nil, err
	}
	return autopilotConfigJSON{
		CleanupDeadServers: c.CleanupDeadServers, LastContactThreshold: readableDuration(c.LastContactThreshold),
		MaxTrailingLogs: c.MaxTrailingLogs, MinQuorum: c.MinQuorum,
		ServerStabilizationTime: readableDuration(c.ServerStabilizationTime),
		RedundancyZoneTag:       c.RedundancyZoneTag, DisableUpgradeMigration: c.DisableUpgradeMigration,
		UpgradeVersionTag: c.UpgradeVersionTag, CreateIndex: c.CreateIndex, ModifyIndex: c.ModifyIndex,
	}, nil
}

// autopilotSetConfig is PUT /v1/operator/autopilot/configuration[?cas=]:
// it answers true, or false when the check-and-set lost.
func (s *Server) autopilotSetConfig(_ http.ResponseWriter, r *http.Request) (any, error) {
	var body autopilotConfigJSON
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	req := rpc.AutopilotSetRequest{Config: rpc.AutopilotConfig{
		CleanupDeadServers: body.CleanupDeadServers, LastContactThreshold: time.Duration(body.LastContactThreshold),
		MaxTrailingLogs: body.MaxTrailingLogs, MinQuorum: body.MinQuorum,
		ServerStabilizationTime: time.Duration(body.ServerStabilizationTime),
		RedundancyZoneTag:       body.RedundancyZoneTag, DisableUpgradeMigration: body.DisableUpgradeMigration,
		UpgradeVersionTag: body.UpgradeVersionTag,
	}}
	if cas := r.URL.Query().Get("cas"); cas != "" {
		idx, err := strconv.ParseUint(cas, 10, 64)
		if err != nil {
			return nil, badf("?cas=%q is not an index: give the ModifyIndex of the configuration you read", cas)
		}
		req.CAS, req.Config.ModifyIndex = true, idx
	}
	res, err := writeReply[rpc.AutopilotSetRequest, rpc.WriteResult](s, r, rpc.MethodAutopilotSetConfig, req)
	if err != nil {
		return nil, err
	}
	return res.OK, nil
}

// serverHealthJSON is rpc.ServerHealth in Consul's JSON.
type serverHealthJSON struct {
	ID          string
	Name        string
	Address     string
	SerfStatus  string
	Version     string
	Leader      bool
	LastContact readableDuration
	LastTerm    uint64
	LastIndex   uint64
	Healthy     bool
	Voter       bool
	StableSince time.Time
}

// autopilotHealth is GET /v1/operator/autopilot/health: 200 when every
// server is healthy, 429 when one is not, as Consul answers.
func (s *Server) autopilotHealth(w http.ResponseWriter, r *http.Request) (any, error) {
	h, err := query[struct{}, rpc.AutopilotHealth](s, w, r, rpc.MethodAutopilotHealth, struct{}{})
	if err != nil {
		return nil, err
	}
	out := struct {
		Healthy          bool
		FailureTolerance int
		Servers          []serverHealthJSON
	}{Healthy: h.Healthy, FailureTolerance: h.FailureTolerance, Servers: []serverHealthJSON{}}
	for _, srv := range h.Servers {
		out.Servers = append(out.Servers, serverHealthJSON{
			ID: srv.ID, Name: srv.Name, Address: srv.Address, SerfStatus: srv.SerfStatus, Version: srv.Version,
			Leader: srv.Leader, LastContact: readableDuration(max(srv.LastContact, 0)), LastTerm: srv.LastTerm,
			LastIndex: srv.LastIndex, Healthy: srv.Healthy, Voter: srv.Voter, StableSince: srv.StableSince,
		})
	}
	code := http.StatusOK
	if !h.Healthy {
		code = http.StatusTooManyRequests
	}
	return statusBody{code: code, body: uncached{out}}, nil
}

// autopilotServerJSON is one server of Consul's autopilot state.
type autopilotServerJSON struct {
	ID          string
	Name        string
	Address     string
	NodeStatus  string
	Version     string
	LastContact readableDuration
	LastTerm    uint64
	LastIndex   uint64
	Healthy     bool
	StableSince time.Time
	ReadReplica bool
	Status      string
	Meta        map[string]string
	NodeType    string
}

// autopilotState is GET /v1/operator/autopilot/state, Consul's richer
// view of the same health check.
func (s *Server) autopilotState(w http.ResponseWriter, r *http.Request) (any, error) {
	h, err := query[struct{}, rpc.AutopilotHealth](s, w, r, rpc.MethodAutopilotHealth, struct{}{})
	if err != nil {
		return nil, err
	}
	out := struct {
		Healthy                    bool
		FailureTolerance           int
		OptimisticFailureTolerance int
		Servers                    map[string]autopilotServerJSON
		Leader                     string
		Voters                     []string
	}{Healthy: h.Healthy, FailureTolerance: h.FailureTolerance, Servers: map[string]autopilotServerJSON{}, Voters: []string{}}
	voters := 0
	for _, srv := range h.Servers {
		status := "non-voter"
		switch {
		case srv.Leader:
			status, out.Leader = "leader", srv.ID
		case srv.Voter:
			status = "voter"
		}
		if srv.Voter {
			out.Voters = append(out.Voters, srv.ID)
			voters++
		}
		out.Servers[srv.ID] = autopilotServerJSON{
			ID: srv.ID, Name: srv.Name, Address: srv.Address, NodeStatus: srv.SerfStatus, Version: srv.Version,
			LastContact: readableDuration(max(srv.LastContact, 0)), LastTerm: srv.LastTerm, LastIndex: srv.LastIndex,
			Healthy: srv.Healthy, StableSince: srv.StableSince, Status: status, Meta: map[string]string{}, NodeType: "voter",
		}
	}
	out.OptimisticFailureTolerance = max(0, voters-(voters/2+1))
	return uncached{out}, nil
}
