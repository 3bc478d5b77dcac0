package httpapi

// agentLocalRoutes registers the endpoints of the agent's local services and
// checks: /v1/agent/service..., /v1/agent/check..., /v1/agent/services,
// /v1/agent/checks, /v1/agent/maintenance.
func (s *Server) agentLocalRoutes() {}
