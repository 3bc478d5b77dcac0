package httpapi

import (
	"errors"
	"net/http"
)

// HostReporter is what an agent offers for /v1/agent/host: the machine's
// host, memory, disk and CPU facts in the shape of Consul's answer.
type HostReporter interface {
	Host() map[string]any
}

func (s *Server) agentHost(_ http.ResponseWriter, _ *http.Request) (any, error) {
	h, ok := s.agent.(HostReporter)
	if !ok {
		return nil, errors.New("this agent cannot describe its host")
	}
	return uncached{h.Host()}, nil
}
