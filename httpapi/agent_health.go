package httpapi

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/meridian/meridian/catalog"
)

// serviceChecksInfo is Consul's api.AgentServiceChecksInfo: one local
// instance, its checks and the node's, and their aggregate.
type serviceChecksInfo struct {
	AggregatedStatus string
	Service          *catalog.Service
	Checks           []*catalog.HealthCheck
}

func (s *Server) agentHealthRoutes() {
	s.handle("GET /v1/agent/health/service/id/{id}", s.agentHealthByID)
	s.handle("GET /v1/agent/health/service/name/{name}", s.agentHealthByName)
}

// agentHealthByID answers how one local instance is, as Consul's: the
// status code says it (200 passing, 429 warning, 503 critical or in
// maintenance), and ?format=text makes the body the status alone.
func (s *Server) agentHealthByID(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	svc, ok := s.agent.LocalServices()[id]
	if !ok {
		return nil, &notFound{msg: fmt.Sprintf("ServiceId %s not found", id)}
	}
	info := s.serviceChecksInfo(svc, s.agent.LocalChecks())
	return s.healthAnswer(w, r, info.AggregatedStatus, info)
}

// agentHealthByName answers every local instance of a service, the
// status code by the worst of them.
func (s *Server) agentHealthByName(w http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	checks := s.agent.LocalChecks()
	var infos []serviceChecksInfo
	for _, svc := range s.agent.LocalServices() {
		if svc.Service == name {
			infos = append(infos, s.serviceChecksInfo(svc, checks))
		}
	}
	if len(infos) == 0 {
		return nil, &notFound{msg: fmt.Sprintf("ServiceName %s Not Found", name)}
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Service.ID < infos[j].Service.ID })
	worst := catalog.HealthPassing
	for _, info := range infos {
		if healthRank(info.AggregatedStatus) > healthRank(worst) {
			worst = info.AggregatedStatus
		}
	}
	return s.healthAnswer(w, r, worst, infos)
}

func (s *Server) serviceChecksInfo(svc *catalog.Service, all map[string]*catalog.HealthCheck) serviceChecksInfo {
	info := serviceChecksInfo{Service: svc, Checks: []*catalog.HealthCheck{}}
	for _, c := range all {
		if c.ServiceID == svc.ID || c.ServiceID == "" {
			info.Checks = append(info.Checks, c)
		}
	}
	sort.Slice(info.Checks, func(i, j int) bool { return info.Checks[i].CheckID < info.Checks[j].CheckID })
	info.AggregatedStatus = aggregateStatus(info.Checks)
	return info
}

// aggregateStatus is Consul's HealthChecks.AggregatedStatus: maintenance
// when a maintenance check is there, else the worst status.
func aggregateStatus(checks []*catalog.HealthCheck) string {
	status := catalog.HealthPassing
	for _, c := range checks {
		if c.CheckID == catalog.NodeMaint || strings.HasPrefix(c.CheckID, catalog.ServiceMaintPrefix) {
			return catalog.HealthMaint
		}
		if healthRank(c.Status) > healthRank(status) {
			status = c.Status
		}
	}
	return status
}

func healthRank(status string) int {
	switch status {
	case catalog.HealthPassing:
		return 0
	case catalog.HealthWarning:
		return 1
	case catalog.HealthCritical:
		return 2
	default: // maintenance
		return 3
	}
}

func (s *Server) healthAnswer(w http.ResponseWriter, r *http.Request, status string, body any) (any, error) {
	code := http.StatusServiceUnavailable
	switch status {
	case catalog.HealthPassing:
		code = http.StatusOK
	case catalog.HealthWarning:
		code = http.StatusTooManyRequests
	}
	if r.URL.Query().Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(status))
		return nil, errAnswered
	}
	return statusBody{code: code, body: body}, nil
}
