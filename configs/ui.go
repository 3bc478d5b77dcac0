package configs

import "strings"

// DefaultUIContentPath is where the web UI is served unless
// ui_config.content_path moves it, as Consul's.
const DefaultUIContentPath = "/ui/"

// UIConfig is the web UI (the ui_config block, as Consul's).
type UIConfig struct {
	// Enabled serves the web UI on the HTTP port. -ui, the older `ui` key,
	// and -dev (unless ui or ui_config.enabled say otherwise) turn it on.
	Enabled bool `config:"enabled"`
	// ContentPath is the URL path the UI is served under: it starts with
	// '/', Load adds the trailing '/', and it cannot be "/" or lie under
	// /v1/. Default "/ui/".
	ContentPath string `config:"content_path"`
}

func defaultUIConfig() UIConfig {
	return UIConfig{ContentPath: DefaultUIContentPath}
}

// foldUI makes `ui` and ui_config.enabled one setting: either one set true
// turns the UI on; in dev mode it is on unless one of them was set false.
func (l *loader) foldUI(c *Config) {
	setUI, setEnabled := l.isSet("ui"), l.isSet("ui_config.enabled")
	switch {
	case setUI || setEnabled:
		c.UIConfig.Enabled = (setUI && c.UI) || (setEnabled && c.UIConfig.Enabled)
	case c.Dev:
		c.UIConfig.Enabled = true
	}
	c.UI = c.UIConfig.Enabled
	if p := c.UIConfig.ContentPath; p != "" && !strings.HasSuffix(p, "/") {
		c.UIConfig.ContentPath = p + "/"
	}
}

func (v *validation) ui() {
	p := v.c.UIConfig.ContentPath
	switch {
	case !strings.HasPrefix(p, "/"):
		v.failf("ui_config.content_path", "must be a URL path starting with '/', such as /ui/, got %q", p)
	case p == "/" || p == "/v1/" || strings.HasPrefix(p, "/v1/"):
		v.failf("ui_config.content_path", "must not be / or under /v1/ (the HTTP API lives there), got %q", p)
	case strings.ContainsAny(p, "?#{} \t"):
		v.failf("ui_config.content_path", "must be a plain URL path without '?', '#', braces or spaces, got %q", p)
	}
}
