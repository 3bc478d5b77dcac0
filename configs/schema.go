package configs

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The schema is read from the `config` tags of Config and the structs it
// holds, so a new key is one new field. A tag is
//
//	config:"name[,collect][,single=alias]"
//
// collect: the loader appends the values of every file instead of letting a
// later file replace the list (services, checks, retry_join). single=alias: a
// file may also give one element under alias (`service:` for `services:`).

// field is one key of a struct in the schema.
type field struct {
	key     string // canonical snake_case key
	norm    string // key folded by normKey, matched against what files spell
	single  string // alias that holds one element of this list, or ""
	collect bool
	index   int
	typ     reflect.Type
}

// elemKey is the reserved key under which a decoded list element remembers
// how the file spelled its path ("services[1]", "service.check"), so that
// Validate can point into the file after lists were collected.
const elemKey = "@key"

var durationType = reflect.TypeFor[time.Duration]()

// fieldsOf lists the keys of struct type t.
func fieldsOf(t reflect.Type) []field {
	var fields []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("config")
		if !ok || !sf.IsExported() {
			continue
		}
		parts := strings.Split(tag, ",")
		f := field{key: parts[0], norm: normKey(parts[0]), index: i, typ: sf.Type}
		for _, p := range parts[1:] {
			switch {
			case p == "collect":
				f.collect = true
			case strings.HasPrefix(p, "single="):
				f.single = strings.TrimPrefix(p, "single=")
			}
		}
		fields = append(fields, f)
	}
	return fields
}

// normKey folds the spellings of one key together: service_id, ServiceID,
// serviceId and service-id all become "serviceid".
func normKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '_' || r == '-' {
			continue
		}
		b.WriteString(strings.ToLower(string(r)))
	}
	return b.String()
}

// lookupField finds the field for a dotted canonical key ("ports.http").
func lookupField(t reflect.Type, key string) (field, bool) {
	name, rest, nested := strings.Cut(key, ".")
	for _, f := range fieldsOf(t) {
		if f.key != name {
			continue
		}
		if !nested {
			return f, true
		}
		if f.typ.Kind() == reflect.Struct && f.typ != durationType {
			return lookupField(f.typ, rest)
		}
	}
	return field{}, false
}

// decoder turns the raw values one source holds (as decoded from YAML or
// JSON) into canonical values: maps with canonical keys for structs, typed Go
// values for leaves. It records every problem rather than stopping at the
// first, so a user sees all the mistakes of a file at once.
type decoder struct {
	source string
	// at, if set, names the source and line of a key (HCL files).
	at    func(key string) string
	errs  []error
	warns []string
}

func (d *decoder) where(key string) string {
	if d.at != nil {
		return d.at(key)
	}
	return d.source
}

func (d *decoder) failf(key, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Source: d.where(key), Key: key, Err: fmt.Errorf(format, args...)})
}

// object decodes raw, which must be a mapping, as struct type t.
func (d *decoder) object(key string, t reflect.Type, raw any) (map[string]any, bool) {
	m, ok := asMap(raw)
	if !ok {
		d.failf(keyOrTop(key), "must be a mapping, got %s", describe(raw))
		return nil, false
	}
	fields := fieldsOf(t)
	out := make(map[string]any, len(m))
	spelled := make(map[string]string, len(m))
	good := true
	for _, k := range sortedKeys(m) {
		path := joinKey(key, k)
		f, single, found := matchField(fields, k)
		if !found {
			if consulOnly(t, k) {
				d.warns = append(d.warns, fmt.Sprintf("%s: %s: a Consul setting Meridian does not implement; it has no effect", d.where(path), path))
				continue
			}
			d.failf(path, "unknown key%s", suggest(fields, k))
			good = false
			continue
		}
		canon := f.key
		if single {
			canon = f.single
		}
		if prev, dup := spelled[canon]; dup {
			d.failf(path, "set twice, also as %q", prev)
			good = false
			continue
		}
		spelled[canon] = k
		var v any
		if _, isList := m[k].([]any); single && isList {
			// one `service { }` block per service, as HCL writes them
			var ok bool
			if v, ok = d.list(path, f.typ, m[k]); !ok {
				good = false
				continue
			}
		} else if single {
			elem, ok := d.value(path, f.typ.Elem(), m[k])
			if !ok {
				good = false
				continue
			}
			if em, isMap := elem.(map[string]any); isMap {
				em[elemKey] = path
			}
			v = listOf(f.typ.Elem(), elem)
		} else {
			var ok bool
			if v, ok = d.value(path, f.typ, m[k]); !ok {
				good = false
				continue
			}
		}
		if prev, has := out[f.key]; has { // `check:` and `checks:` in one mapping
			v = appendList(prev, v)
		}
		out[f.key] = v
	}
	return out, good
}

// value decodes raw as type t.
func (d *decoder) value(key string, t reflect.Type, raw any) (any, bool) {
	if t == durationType {
		s, ok := raw.(string)
		if !ok {
			d.failf(key, "must be a duration such as \"10s\", got %s", describe(raw))
			return nil, false
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.failf(key, "must be a duration such as \"10s\", got %q", s)
			return nil, false
		}
		return dur, true
	}
	switch t.Kind() {
	case reflect.String:
		if s, ok := raw.(string); ok {
			return s, true
		}
		d.failf(key, "must be a string, got %s", describe(raw))
	case reflect.Bool:
		if b, ok := raw.(bool); ok {
			return b, true
		}
		d.failf(key, "must be true or false, got %s", describe(raw))
	case reflect.Int:
		if n, ok := asInt(raw); ok {
			return n, true
		}
		d.failf(key, "must be an integer, got %s", describe(raw))
	case reflect.Struct:
		return d.object(key, t, raw)
	case reflect.Pointer:
		if t.Elem().Kind() != reflect.Struct { // *bool: set or not
			return d.value(key, t.Elem(), raw)
		}
		return d.object(key, t.Elem(), raw)
	case reflect.Slice:
		return d.list(key, t, raw)
	case reflect.Map:
		return d.stringMap(key, t, raw)
	default:
		d.failf(key, "has a type the loader cannot read (%s)", t)
	}
	return nil, false
}

// list decodes a list of strings ([]string) or of structs ([]any of maps).
func (d *decoder) list(key string, t reflect.Type, raw any) (any, bool) {
	items, ok := raw.([]any)
	if !ok {
		d.failf(key, "must be a list, got %s", describe(raw))
		return nil, false
	}
	if t.Elem().Kind() == reflect.String {
		out := make([]string, 0, len(items))
		for i, item := range items {
			s, ok := item.(string)
			if !ok {
				d.failf(fmt.Sprintf("%s[%d]", key, i), "must be a string, got %s", describe(item))
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	out := make([]any, 0, len(items))
	good := true
	for i, item := range items {
		path := fmt.Sprintf("%s[%d]", key, i)
		v, ok := d.value(path, t.Elem(), item)
		if !ok {
			good = false
			continue
		}
		if m, isMap := v.(map[string]any); isMap {
			m[elemKey] = path
		}
		out = append(out, v)
	}
	return out, good
}

// stringMap decodes map[string]string, map[string][]string and maps of
// structs, keeping the keys as written. A header given as one string is a
// list of one.
func (d *decoder) stringMap(key string, t reflect.Type, raw any) (any, bool) {
	m, ok := asMap(raw)
	if !ok {
		d.failf(key, "must be a mapping, got %s", describe(raw))
		return nil, false
	}
	switch t.Elem().Kind() {
	case reflect.String:
		out := make(map[string]string, len(m))
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				d.failf(joinKey(key, k), "must be a string, got %s", describe(v))
				return nil, false
			}
			out[k] = s
		}
		return out, true
	case reflect.Slice:
		out := make(map[string][]string, len(m))
		for k, v := range m {
			if s, ok := v.(string); ok {
				out[k] = []string{s}
				continue
			}
			l, ok := d.list(joinKey(key, k), t.Elem(), v)
			if !ok {
				return nil, false
			}
			out[k] = l.([]string)
		}
		return out, true
	case reflect.Struct:
		out := make(map[string]any, len(m))
		good := true
		for k, v := range m {
			obj, ok := d.object(joinKey(key, k), t.Elem(), v)
			if !ok {
				good = false
				continue
			}
			out[k] = obj
		}
		return out, good
	}
	d.failf(key, "has a type the loader cannot read (%s)", t)
	return nil, false
}

// parseText parses a flag or environment value as type t. Lists are
// comma-separated.
func parseText(t reflect.Type, s string) (any, error) {
	if t == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("must be a duration such as \"10s\", got %q", s)
		}
		return d, nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return parseText(t.Elem(), s)
	case reflect.String:
		return s, nil
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("must be true or false, got %q", s)
		}
		return b, nil
	case reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("must be an integer, got %q", s)
		}
		return n, nil
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			out := make(map[string]string)
			for p := range strings.SplitSeq(s, ",") {
				if p = strings.TrimSpace(p); p == "" {
					continue
				}
				k, v, _ := strings.Cut(p, ":")
				if k == "" {
					return nil, fmt.Errorf("must be key:value pairs separated by commas, got %q", s)
				}
				out[k] = v
			}
			return out, nil
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			var out []string
			for p := range strings.SplitSeq(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("cannot be set from text (%s)", t)
}

// assign stores canonical value v into dst.
func assign(dst reflect.Value, v any) error {
	t := dst.Type()
	switch {
	case t.Kind() == reflect.Struct && t != durationType:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a mapping for %s, have %T", t, v)
		}
		for _, f := range fieldsOf(t) {
			fv, ok := m[f.key]
			if !ok {
				continue
			}
			if err := assign(dst.Field(f.index), fv); err != nil {
				return fmt.Errorf("%s: %w", f.key, err)
			}
		}
		return nil
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		if err := assign(p.Elem(), v); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Struct:
		items, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a mapping for %s, have %T", t, v)
		}
		m := reflect.MakeMapWithSize(t, len(items))
		for k, item := range items {
			e := reflect.New(t.Elem()).Elem()
			if err := assign(e, item); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			m.SetMapIndex(reflect.ValueOf(k), e)
		}
		dst.Set(m)
		return nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		items, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list for %s, have %T", t, v)
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			if err := assign(s.Index(i), item); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		dst.Set(s)
		return nil
	}
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || !rv.Type().ConvertibleTo(t) {
		return fmt.Errorf("want %s, have %T", t, v)
	}
	dst.Set(rv.Convert(t))
	return nil
}

// matchField finds the field a spelled key names, directly or as its
// single-element alias.
func matchField(fields []field, spelled string) (f field, single, found bool) {
	n := normKey(spelled)
	for _, f := range fields {
		if f.norm == n {
			return f, false, true
		}
		if f.single != "" && normKey(f.single) == n {
			return f, true, true
		}
	}
	return field{}, false, false
}

// suggest returns `, did you mean "x"?` for the known key closest to
// spelled, or "" when none is close.
func suggest(fields []field, spelled string) string {
	n := normKey(spelled)
	best, bestDist := "", math.MaxInt
	for _, f := range fields {
		for _, cand := range []string{f.key, f.single} {
			if cand == "" {
				continue
			}
			if d := editDistance(n, normKey(cand)); d < bestDist {
				best, bestDist = cand, d
			}
		}
	}
	if best == "" || bestDist > max(1, len(n)/4) {
		return ""
	}
	return fmt.Sprintf(", did you mean %q?", best)
}

// editDistance is the optimal-string-alignment distance between a and b, by
// bytes: insertions, deletions, substitutions and swaps of neighbours cost 1,
// so "datadri" is one step from "datadir".
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// asMap accepts the two shapes a YAML or JSON mapping decodes to.
func asMap(raw any) (map[string]any, bool) {
	switch m := raw.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out, true
	}
	return nil, false
}

// asInt accepts the integer shapes YAML and JSON decode to; JSON numbers are
// float64, and must be whole.
func asInt(raw any) (int, bool) {
	switch n := raw.(type) {
	case int:
		return n, true
	case int64:
		if n >= math.MinInt && n <= math.MaxInt {
			return int(n), true
		}
	case uint64:
		if n <= math.MaxInt {
			return int(n), true
		}
	case float64:
		if n == math.Trunc(n) && math.Abs(n) <= 1<<53 {
			return int(n), true
		}
	}
	return 0, false
}

// describe names a raw value for an error message.
func describe(raw any) string {
	switch v := raw.(type) {
	case nil:
		return "nothing (null)"
	case string:
		return fmt.Sprintf("%q", v)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	default:
		return fmt.Sprint(v)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func keyOrTop(key string) string {
	if key == "" {
		return "(top level)"
	}
	return key
}

// listOf wraps one decoded element in the canonical list shape of its type.
func listOf(elem reflect.Type, v any) any {
	if elem.Kind() == reflect.String {
		return []string{v.(string)}
	}
	return []any{v}
}

// appendList appends canonical list b to canonical list a.
func appendList(a, b any) any {
	switch a := a.(type) {
	case map[string]string:
		out := make(map[string]string, len(a))
		for k, v := range a {
			out[k] = v
		}
		for k, v := range b.(map[string]string) {
			out[k] = v
		}
		return out
	case []string:
		return append(a, b.([]string)...)
	case []any:
		return append(a, b.([]any)...)
	}
	return b
}
