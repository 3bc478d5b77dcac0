package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/httpapi"
)

// Services and checks registered over the HTTP API are kept in data_dir
// (services/ and checks/, one JSON file each, as Consul keeps them), so a
// restarted agent registers them again. Config-file definitions are not:
// the files are their record.

func (a *Agent) persistDir(kind string) string {
	if a.cfg.DataDir == "" || a.cfg.Dev {
		return ""
	}
	return filepath.Join(a.cfg.DataDir, kind)
}

func persistName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16]) + ".json"
}

func (a *Agent) persist(kind, id string, v any) {
	dir := a.persistDir(kind)
	if dir == "" {
		return
	}
	err := os.MkdirAll(dir, 0o700)
	var b []byte
	if err == nil {
		b, err = json.Marshal(v)
	}
	if err == nil {
		path := filepath.Join(dir, persistName(id))
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		a.logger.Warn("persist local definition", "kind", kind, "id", id, "error", err)
	}
}

func (a *Agent) unpersist(kind, id string) {
	dir := a.persistDir(kind)
	if dir == "" {
		return
	}
	if err := os.Remove(filepath.Join(dir, persistName(id))); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.logger.Warn("remove persisted definition", "kind", kind, "id", id, "error", err)
	}
}

func (a *Agent) persistService(id string, def httpapi.ServiceDefinition) {
	a.persist("services", id, def)
}
func (a *Agent) unpersistService(id string) { a.unpersist("services", id) }
func (a *Agent) persistCheck(id string, def httpapi.CheckDefinition) {
	a.persist("checks", id, def)
}
func (a *Agent) unpersistCheck(id string) { a.unpersist("checks", id) }

// loadPersisted registers the services, then the checks, kept in data_dir.
func (a *Agent) loadPersisted() {
	read := func(kind string, each func([]byte) error) {
		dir := a.persistDir(kind)
		if dir == "" {
			return
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil {
				err = each(b)
			}
			if err != nil {
				a.logger.Warn("load persisted definition", "file", f, "error", err)
			}
		}
	}
	read("services", func(b []byte) error {
		var def httpapi.ServiceDefinition
		if err := json.Unmarshal(b, &def); err != nil {
			return err
		}
		return a.addService(def, sourceAPI, false)
	})
	read("checks", func(b []byte) error {
		var def httpapi.CheckDefinition
		if err := json.Unmarshal(b, &def); err != nil {
			return err
		}
		return a.addCheck(def, sourceAPI)
	})
}

// loadDefinitions registers the config files' services and checks. One
// that is refused is logged and skipped, so the others still run.
func (a *Agent) loadDefinitions(svcs []configs.ServiceDefinition, chks []configs.CheckDefinition) {
	for _, s := range svcs {
		if err := a.addService(fromConfigService(s), sourceConfig, true); err != nil {
			a.logger.Error("service definition refused", "service", s.Name, "error", err)
		}
	}
	for _, c := range chks {
		if err := a.addCheck(fromConfigCheck(c), sourceConfig); err != nil {
			a.logger.Error("check definition refused", "check", c.Name, "error", err)
		}
	}
}

// Reload rereads the TLS certificate files (new connections use them; a
// bad file keeps the old ones, logged), then the service and check
// definitions from the config files (Options.ConfigArgs, as first given):
// services and checks added to the files are registered, changed ones
// updated, removed ones deregistered. Those registered over the HTTP API
// are kept. node_meta is registered anew, as Consul reloads it. log_level
// applies too, when the agent was given its LogLevel.
func (a *Agent) Reload() error {
	a.reloadTLS()
	if a.opts.ConfigArgs == nil {
		return fmt.Errorf("reload: the agent was not started from config files")
	}
	env := a.opts.ConfigEnv
	if env == nil {
		env = os.Environ()
	}
	cfg, err := configs.Load(a.opts.ConfigArgs, env, io.Discard)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	want := map[string]bool{}
	for _, s := range cfg.Services {
		id := s.ID
		if id == "" {
			id = s.Name
		}
		want[id] = true
	}
	wantChecks := map[string]bool{}
	for _, c := range cfg.Checks {
		id := c.ID
		if id == "" {
			id = c.Name
		}
		wantChecks[id] = true
	}
	l := a.local
	l.mu.Lock()
	var goneSvcs, goneChecks []string
	for id, s := range l.services {
		if s.source == sourceConfig && !want[id] {
			goneSvcs = append(goneSvcs, id)
		}
	}
	for id, c := range l.checks {
		if c.source == sourceConfig && c.check.ServiceID == "" && !wantChecks[id] {
			goneChecks = append(goneChecks, id)
		}
	}
	l.mu.Unlock()
	for _, id := range goneSvcs {
		_ = a.DeregisterService(id)
	}
	for _, id := range goneChecks {
		_ = a.DeregisterCheck(id)
	}
	a.loadDefinitions(cfg.Services, cfg.Checks)
	meta := cfg.NodeMeta
	a.nodeMeta.Store(&meta)
	a.nodeSynced.Store(false)
	a.local.changed()
	if a.opts.LogLevel != nil {
		a.opts.LogLevel.Set(LogLevel(cfg.LogLevel))
	}
	a.logger.Info("reloaded service and check definitions", "services", len(cfg.Services), "checks", len(cfg.Checks), "log_level", cfg.LogLevel)
	return nil
}
