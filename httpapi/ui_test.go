package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestUIMount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ui       UIConfig
		path     string
		code     int
		location string
		body     string
	}{
		{name: "off: /ui/", path: "/ui/", code: 404, body: "-ui"},
		{name: "off: /ui", path: "/ui", code: 404, body: "-ui"},
		{name: "off: /ui/app.js", path: "/ui/app.js", code: 404, body: "-ui"},
		{name: "off: / is not redirected", path: "/", code: 404},
		{name: "on: index", ui: UIConfig{Enabled: true}, path: "/ui/", code: 200, body: "<!doctype html>"},
		{name: "on: asset", ui: UIConfig{Enabled: true}, path: "/ui/app.js", code: 200, body: "import"},
		{name: "on: / redirects", ui: UIConfig{Enabled: true}, path: "/", code: 301, location: "/ui/"},
		{name: "on: /ui redirects", ui: UIConfig{Enabled: true}, path: "/ui", code: 307, location: "/ui/"},
		{name: "moved", ui: UIConfig{Enabled: true, ContentPath: "/console/"}, path: "/", code: 301, location: "/console/"},
		{name: "moved: served there", ui: UIConfig{Enabled: true, ContentPath: "/console/"}, path: "/console/style.css", code: 200, body: ":root"},
		{name: "on: API still routed", ui: UIConfig{Enabled: true}, path: "/v1/nope", code: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := New(Config{UI: tc.ui}, nil)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.code {
				t.Fatalf("GET %s = %d %q, want %d", tc.path, rec.Code, rec.Body.String(), tc.code)
			}
			if tc.location != "" && rec.Header().Get("Location") != tc.location {
				t.Errorf("GET %s Location = %q, want %q", tc.path, rec.Header().Get("Location"), tc.location)
			}
			if !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("GET %s body = %q, want it to contain %q", tc.path, rec.Body.String(), tc.body)
			}
		})
	}
}
