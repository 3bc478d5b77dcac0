package configs

import (
	"io"
	"strings"
	"testing"
)

func TestLoadUIConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   map[string]string
		args    []string
		enabled bool
		path    string
	}{
		{name: "off by default", args: []string{"-data-dir", "/d"}, path: "/ui/"},
		{name: "-ui", args: []string{"-data-dir", "/d", "-ui"}, enabled: true, path: "/ui/"},
		{name: "dev", args: []string{"-dev"}, enabled: true, path: "/ui/"},
		{name: "dev -ui=false", args: []string{"-dev", "-ui=false"}, path: "/ui/"},
		{name: "old ui key", files: map[string]string{"a.yaml": "data_dir: /d\nui: true\n"}, args: []string{"-config-dir", "$DIR"}, enabled: true, path: "/ui/"},
		{name: "ui_config.enabled", files: map[string]string{"a.yaml": "data_dir: /d\nui_config:\n  enabled: true\n  content_path: /console\n"},
			args: []string{"-config-dir", "$DIR"}, enabled: true, path: "/console/"},
		{name: "dev with ui_config.enabled false", files: map[string]string{"a.json": `{"ui_config": {"enabled": false}}`},
			args: []string{"-dev", "-config-dir", "$DIR"}, path: "/ui/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tc.files)
			c := mustLoad(t, expandDir(tc.args, dir), nil)
			if c.UIConfig.Enabled != tc.enabled || c.UI != tc.enabled || c.UIConfig.ContentPath != tc.path {
				t.Errorf("Load(%q) ui = %v, ui_config = %+v, want enabled %v at %q", tc.args, c.UI, c.UIConfig, tc.enabled, tc.path)
			}
		})
	}
}

func TestLoadUIConfigRefused(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"ui", "/", "/v1/ui", "/a b"} {
		dir := writeFiles(t, map[string]string{"a.yaml": "data_dir: /d\nui_config:\n  content_path: \"" + p + "\"\n"})
		_, err := Load([]string{"-config-dir", dir}, nil, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "ui_config.content_path") {
			t.Errorf("Load(content_path %q) error = %v, want one naming ui_config.content_path", p, err)
		}
	}
}
