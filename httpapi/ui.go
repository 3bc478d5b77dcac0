package httpapi

import (
	"fmt"
	"net/http"

	"github.com/meridian/meridian/ui"
)

// UIConfig says whether the HTTP API serves the web UI, and where.
type UIConfig struct {
	// Enabled mounts the UI (ui_config.enabled, -ui).
	Enabled bool
	// ContentPath is the path it is served under, starting and ending with
	// '/'; empty is /ui/.
	ContentPath string
}

const defaultUIPath = "/ui/"

// uiRoutes mounts the web UI under its content path, with / redirecting
// there as Consul's does; without it, /ui answers a 404 that says how to
// turn it on.
func (s *Server) uiRoutes() {
	if !s.cfg.UI.Enabled {
		s.mux.HandleFunc(defaultUIPath, uiDisabled)
		s.mux.HandleFunc("/ui", uiDisabled)
		return
	}
	prefix := s.cfg.UI.ContentPath
	if prefix == "" {
		prefix = defaultUIPath
	}
	var h http.Handler
	h, err := ui.New(prefix)
	if err != nil {
		// Only a content path configs did not check, or a binary built
		// without its assets, gets here: answer why rather than not start.
		s.log.Error("web ui not served", "path", prefix, "error", err)
		msg := fmt.Sprintf("the web UI cannot be served: %v", err)
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, msg, http.StatusInternalServerError)
		})
	}
	s.mux.Handle(prefix, h)
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, prefix, http.StatusMovedPermanently)
	})
}

func uiDisabled(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "the web UI is not enabled on this agent: start it with -ui (or ui_config.enabled: true in its config)", http.StatusNotFound)
}
