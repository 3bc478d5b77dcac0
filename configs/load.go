package configs

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/spf13/viper"
)

// envPrefix starts every environment variable the agent reads.
const envPrefix = "MERIDIAN_"

// Load parses args (everything after `meridian agent`) and env (in
// os.Environ form) into a validated Config, reading the files that
// -config-file and -config-dir name. For -h or --help it writes usage to
// stderr and returns flag.ErrHelp; otherwise it writes nothing, and every
// problem is in the error, each naming its source and key.
func Load(args []string, env []string, stderr io.Writer) (*Config, error) {
	fl, err := newAgentFlags()
	if err != nil {
		return nil, err
	}
	if err := fl.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fl.writeUsage(stderr)
		}
		return nil, err
	}
	l := newLoader()
	files, skipped, err := configFiles(fl.sources, fl.format)
	if err != nil {
		return nil, err
	}
	l.notes = append(l.notes, skipped...)
	for _, f := range files {
		l.loadFile(f.name, f.format)
	}
	l.loadEnv(env)
	for i, frag := range fl.hcl {
		name := "flag -hcl"
		if len(fl.hcl) > 1 {
			name = fmt.Sprintf("flag -hcl #%d", i+1)
		}
		l.loadData(name, "hcl", []byte(frag))
	}
	fl.set(func(name, key string, val any) {
		l.setKey("flag -"+name, key, val)
	})
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return l.build()
}

// loader holds the layers while they are merged: viper holds every key that
// a later source replaces, collected holds the lists every file adds to.
type loader struct {
	v         *viper.Viper
	codecs    *viper.DefaultCodecRegistry
	collected map[string]any // canonical key -> []string or []any
	origins   map[string]origin
	// at, while a file is merged, names the file and line a key is on.
	at    func(key string) string
	notes []string
	errs  []error
}

func newLoader() *loader {
	return &loader{
		v:         viper.New(),
		codecs:    viper.NewCodecRegistry(),
		collected: make(map[string]any),
		origins:   make(map[string]origin),
	}
}

// configFile is one file to read and the format to read it in.
type configFile struct {
	name   string
	format string
}

// configFiles expands the -config-file and -config-dir sources, in order,
// into files. format, when set (-config-format), is the format of every
// file, whatever its name, and a directory's files are all read; otherwise
// a directory's files whose names end in no known format are skipped, each
// with a note.
func configFiles(sources []source, format string) (files []configFile, skipped []string, err error) {
	for _, s := range sources {
		if !s.dir {
			f, ok := formatOf(s.path)
			if format != "" {
				f, ok = format, true
			}
			if !ok {
				return nil, nil, fmt.Errorf("config file %s: name must end in .hcl, .json, .yaml or .yml (or set -config-format)", s.path)
			}
			files = append(files, configFile{name: s.path, format: f})
			continue
		}
		entries, err := os.ReadDir(s.path)
		if err != nil {
			return nil, nil, fmt.Errorf("config dir: %w", err)
		}
		// os.ReadDir sorts by name: that is the lexical order files merge in.
		for _, e := range entries {
			name := filepath.Join(s.path, e.Name())
			if e.IsDir() {
				continue
			}
			if e.Type()&os.ModeSymlink != 0 {
				if st, err := os.Stat(name); err == nil && st.IsDir() {
					continue
				}
			}
			f, ok := formatOf(e.Name())
			if format != "" {
				f, ok = format, true
			}
			if !ok {
				skipped = append(skipped, fmt.Sprintf("config dir %s: skipped %s: not .hcl, .json, .yaml or .yml (set -config-format to read it)", s.path, e.Name()))
				continue
			}
			files = append(files, configFile{name: name, format: f})
		}
	}
	return files, skipped, nil
}

// formatOf returns the format of a file name.
func formatOf(name string) (string, bool) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return "yaml", true
	case ".json":
		return "json", true
	case ".hcl":
		return "hcl", true
	}
	return "", false
}

// loadFile reads one file and merges it in.
func (l *loader) loadFile(name, format string) {
	data, err := os.ReadFile(name)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("read config file: %w", err))
		return
	}
	l.loadData(name, format, data)
}

// loadData decodes and checks the content of file name and merges it in.
func (l *loader) loadData(name, format string, data []byte) {
	var raw map[string]any
	line := func(string) int { return 0 }
	if format == "hcl" {
		doc, err := decodeHCL(data)
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		raw, line = doc.raw, doc.line
	} else {
		var err error
		if raw, err = l.decode(format, data); err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s: %w", name, err))
			return
		}
	}
	at := func(key string) string {
		if n := line(key); n > 0 {
			return fmt.Sprintf("%s:%d", name, n)
		}
		return name
	}
	d := &decoder{source: name, at: at}
	canon, ok := d.object("", reflect.TypeFor[Config](), raw)
	l.notes = append(l.notes, d.warns...)
	if !ok {
		l.errs = append(l.errs, d.errs...)
		return
	}
	l.at = at
	l.merge(name, canon)
	l.at = nil
}

// decode turns YAML or JSON into a map with the keys as written. It uses
// viper's codecs directly: viper.ReadConfig would lower-case every key,
// including the keys of service meta. A file of only white space is empty.
func (l *loader) decode(format string, data []byte) (raw map[string]any, err error) {
	raw = make(map[string]any)
	if len(bytes.TrimSpace(data)) == 0 {
		return raw, nil
	}
	dec, err := l.codecs.Decoder(format)
	if err != nil {
		return nil, fmt.Errorf("no %s decoder: %w", format, err)
	}
	defer func() {
		// The decoders parse untrusted input; a bug in one must not take the
		// agent down with a stack trace instead of naming the file.
		if r := recover(); r != nil {
			raw, err = nil, fmt.Errorf("cannot parse %s: %v", format, r)
		}
	}()
	if err := dec.Decode(data, raw); err != nil {
		return nil, parseError(format, data, err)
	}
	return raw, nil
}

// parseError makes a decoder's error one line with the line number.
func parseError(format string, data []byte, err error) error {
	if format == "json" {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return fmt.Errorf("line %d: invalid JSON: %w", lineOf(data, syn.Offset), err)
		case errors.As(err, &typ):
			return fmt.Errorf("line %d: invalid JSON: %w", lineOf(data, typ.Offset), err)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("line %d: invalid JSON: unexpected end of input", lineOf(data, int64(len(data))))
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	// yaml errors read "yaml: line 3: ..." or, for several,
	// "yaml: unmarshal errors:\n  line 1: ...".
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.Join(strings.Fields(msg), " ")
	return fmt.Errorf("invalid YAML: %s", msg)
}

// lineOf is the 1-based line of byte offset off in data.
func lineOf(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

// merge adds one file's canonical values: collected keys are appended,
// everything else goes to viper, where a later file replaces the keys an
// earlier one set.
func (l *loader) merge(source string, canon map[string]any) {
	rest := make(map[string]any, len(canon))
	for _, f := range fieldsOf(reflect.TypeFor[Config]()) {
		v, ok := canon[f.key]
		if !ok {
			continue
		}
		if !f.collect {
			rest[f.key] = v
			l.recordLeaves(source, f.key, v)
			continue
		}
		start := listLen(l.collected[f.key])
		l.collected[f.key] = appendList(l.collected[f.key], v)
		if _, isMap := v.(map[string]string); isMap {
			l.origins[f.key] = origin{source: l.sourceOf(source, f.key), key: f.key}
			continue
		}
		l.recordElems(source, f.key, start, v)
	}
	if err := l.v.MergeConfigMap(rest); err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: merge: %w", source, err))
	}
}

// recordLeaves notes source as the origin of every leaf key under key.
func (l *loader) recordLeaves(source, key string, v any) {
	if m, ok := v.(map[string]any); ok {
		for k, sub := range m {
			l.recordLeaves(source, key+"."+k, sub)
		}
		return
	}
	l.origins[key] = origin{source: l.sourceOf(source, key), key: key}
}

// sourceOf is source, with the line of key when the file is HCL.
func (l *loader) sourceOf(source, key string) string {
	if l.at == nil {
		return source
	}
	return l.at(key)
}

// recordElems notes where each element of a collected list came from, down
// to the checks inside a service, under its index in the merged list.
func (l *loader) recordElems(source, key string, start int, v any) {
	switch list := v.(type) {
	case []string:
		for i := range list {
			l.origins[fmt.Sprintf("%s[%d]", key, start+i)] = origin{source: source, key: fmt.Sprintf("%s[%d]", key, i)}
		}
	case []any:
		for i, item := range list {
			l.recordElem(source, fmt.Sprintf("%s[%d]", key, start+i), item)
		}
	}
}

func (l *loader) recordElem(source, key string, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if spelled, ok := m[elemKey].(string); ok {
		l.origins[key] = origin{source: l.sourceOf(source, spelled), key: spelled}
	}
	for k, sub := range m {
		if list, ok := sub.([]any); ok {
			for i, item := range list {
				l.recordElem(source, fmt.Sprintf("%s.%s[%d]", key, k, i), item)
			}
		}
	}
}

func listLen(v any) int {
	switch l := v.(type) {
	case []string:
		return len(l)
	case []any:
		return len(l)
	}
	return 0
}

// loadEnv applies the MERIDIAN_ variables. An empty variable is unset.
func (l *loader) loadEnv(env []string) {
	known := envKeys(reflect.TypeFor[Config](), "")
	names := make([]string, 0, len(env))
	values := make(map[string]string, len(env))
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) || val == "" {
			continue
		}
		if _, dup := values[name]; !dup {
			names = append(names, name)
		}
		values[name] = val // the last one wins, as in os.Getenv
	}
	sort.Strings(names)
	for _, name := range names {
		key, ok := known[name]
		if !ok {
			if !isClientEnv(name) { // read by the other CLI commands
				l.notes = append(l.notes, fmt.Sprintf("environment variable %s is not a configuration key; ignored", name))
			}
			continue
		}
		f, _ := lookupField(reflect.TypeFor[Config](), key)
		v, err := parseText(f.typ, values[name])
		if err != nil {
			l.errs = append(l.errs, &FieldError{Source: "env " + name, Key: key, Err: err})
			continue
		}
		l.setKey("env "+name, key, v)
	}
}

// envKeys maps MERIDIAN_ variable names to the keys they set: every leaf
// that text can express (not services or checks).
func envKeys(t reflect.Type, prefix string) map[string]string {
	out := make(map[string]string)
	for _, f := range fieldsOf(t) {
		key := joinKey(prefix, f.key)
		switch {
		case f.typ.Kind() == reflect.Struct && f.typ != durationType:
			for name, k := range envKeys(f.typ, key) {
				out[name] = k
			}
		case f.typ.Kind() == reflect.Slice && f.typ.Elem().Kind() != reflect.String:
			// definitions come from files only
		default:
			out[envPrefix+strings.ToUpper(strings.ReplaceAll(key, ".", "_"))] = key
		}
	}
	return out
}

// setKey applies a flag or variable, which replaces whatever the files said,
// collected lists included.
func (l *loader) setKey(source, key string, v any) {
	f, _ := lookupField(reflect.TypeFor[Config](), key)
	if _, isMap := v.(map[string]string); isMap && f.collect {
		// pairs add to those of the files, as Consul merges maps
		l.collected[key] = appendList(l.collected[key], v)
		l.origins[key] = origin{source: source, key: key}
		return
	}
	if f.collect {
		l.collected[key] = v
		for k := range l.origins {
			if strings.HasPrefix(k, key+"[") {
				delete(l.origins, k)
			}
		}
		l.origins[key] = origin{source: source, key: key}
		return
	}
	l.v.Set(key, v)
	l.origins[key] = origin{source: source, key: key}
}

// isSet reports whether any source set key.
func (l *loader) isSet(key string) bool {
	if _, ok := l.collected[key]; ok {
		return true
	}
	return l.v.IsSet(key)
}

// build assembles the Config, applies the defaults that depend on other keys,
// and validates it.
func (l *loader) build() (*Config, error) {
	c := Default()
	settings := l.v.AllSettings()
	for k, v := range l.collected {
		settings[k] = v
	}
	if err := assign(reflect.ValueOf(c).Elem(), settings); err != nil {
		return nil, fmt.Errorf("assemble config: %w", err)
	}
	c.LogLevel = strings.ToLower(c.LogLevel)
	c.WANTransport = strings.ToLower(c.WANTransport)
	if c.Dev {
		if !l.isSet("server") {
			c.Server = true
		}
		if c.Server && !l.isSet("bootstrap") && !l.isSet("bootstrap_expect") {
			c.Bootstrap = true
		}
		if !l.isSet("bind_addr") {
			c.BindAddr = "127.0.0.1"
		}
		if !l.isSet("client_addr") {
			c.ClientAddr = "127.0.0.1"
		}
		if c.DataDir != "" {
			l.notes = append(l.notes, "data_dir is not used in dev mode: state is kept in memory")
		}
	}
	if c.Server {
		if !l.isSet("leave_on_terminate") {
			c.LeaveOnTerminate = false
		}
		if !l.isSet("skip_leave_on_interrupt") {
			c.SkipLeaveOnInterrupt = true
		}
	}
	l.foldUI(c)
	c.origins = l.origins
	c.notes = l.notes
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.BootstrapExpect == 1 {
		c.Bootstrap, c.BootstrapExpect = true, 0
		delete(c.origins, "bootstrap_expect") // so that Validate again passes
		c.notes = append(c.notes, "bootstrap_expect = 1 is the same as bootstrap: this server elects itself leader without waiting for others")
	}
	return c, nil
}
