package httpapi

import (
	"context"
	"errors"
	"net/http"
)

// Monitorer is what an agent offers for /v1/agent/monitor.
type Monitorer interface {
	// Monitor streams the agent's log at level and above, one line per
	// record (JSON with asJSON): its recent lines, then live ones, until
	// ctx ends and the channel closes.
	Monitor(ctx context.Context, level string, asJSON bool) (<-chan []byte, error)
}

// agentMonitor is GET /v1/agent/monitor?loglevel=&logjson: the log streams
// as the body, flushed line by line, until the client goes away.
func (s *Server) agentMonitor(w http.ResponseWriter, r *http.Request) (any, error) {
	m, ok := s.agent.(Monitorer)
	if !ok {
		return nil, errors.New("this agent cannot stream its log")
	}
	q := r.URL.Query()
	asJSON, err := parseBool(q, "logjson")
	if err != nil {
		return nil, err
	}
	lines, err := m.Monitor(r.Context(), q.Get("loglevel"), asJSON)
	if err != nil {
		return nil, err
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	for line := range lines {
		if _, err := w.Write(line); err != nil {
			break
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
	// Drain so the agent's sender never blocks on a gone client.
	for range lines {
	}
	return nil, errAnswered
}

// redactedURL is the request's URL for the log, with a ?token= hidden as
// Consul hides it.
func redactedURL(r *http.Request) string {
	q := r.URL.Query()
	if _, ok := q["token"]; !ok {
		return r.URL.String()
	}
	q.Set("token", "<hidden>")
	u := *r.URL
	u.RawQuery = q.Encode()
	return u.String()
}
