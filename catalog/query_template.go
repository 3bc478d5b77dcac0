package catalog

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Render returns the query a template makes for the executed name, as
// Consul's templates do: every string of Service (the service name, Near,
// tags, ignored check IDs, failover datacenters, and the values of NodeMeta
// and ServiceMeta) is interpolated, where
//
//   - ${name.full} is the executed name,
//   - ${name.prefix} is the template's Name,
//   - ${name.suffix} is the executed name without that prefix,
//   - ${match(N)} is submatch N of Template.Regexp on the executed name ("" when
//     it does not match or has no such group),
//   - ${agent.segment} is "" (Meridian has no network segments),
//   - $${ is a literal ${.
//
// With RemoveEmptyTags the tags that come out empty are dropped. A template
// without a service name looks up the executed name. A query that is not a
// template is returned as it is. q is not changed; errors wrap
// ErrInvalidQuery.
func (q *PreparedQuery) Render(name string) (*PreparedQuery, error) {
	if !q.IsTemplate() {
		return q, nil
	}
	v := templateVars{full: name, prefix: q.Name, suffix: name}
	if len(name) >= len(q.Name) && strings.EqualFold(name[:len(q.Name)], q.Name) {
		v.suffix = name[len(q.Name):]
	}
	if q.Template.Regexp != "" {
		re, err := regexp.Compile(q.Template.Regexp)
		if err != nil {
			return nil, fmt.Errorf("%w: template regexp %q does not compile: %v", ErrInvalidQuery, q.Template.Regexp, oneLine(err.Error()))
		}
		v.matches = re.FindStringSubmatch(name)
	}
	r := cloneQuery(q)
	s := &r.Service
	var err error
	one := func(field string, p *string) {
		if err != nil {
			return
		}
		var out string
		if out, err = v.interpolate(*p); err != nil {
			err = fmt.Errorf("%w: template: %s %q: %v", ErrInvalidQuery, field, *p, err)
			return
		}
		*p = out
	}
	one("Service.Service", &s.Service)
	one("Service.Near", &s.Near)
	for i := range s.Tags {
		one(fmt.Sprintf("Service.Tags[%d]", i), &s.Tags[i])
	}
	for i := range s.IgnoreCheckIDs {
		one(fmt.Sprintf("Service.IgnoreCheckIDs[%d]", i), &s.IgnoreCheckIDs[i])
	}
	for i := range s.Failover.Datacenters {
		one(fmt.Sprintf("Service.Failover.Datacenters[%d]", i), &s.Failover.Datacenters[i])
	}
	for i := range s.Failover.Targets {
		one(fmt.Sprintf("Service.Failover.Targets[%d].Datacenter", i), &s.Failover.Targets[i].Datacenter)
	}
	for _, m := range []struct {
		field string
		m     map[string]string
	}{{"Service.NodeMeta", s.NodeMeta}, {"Service.ServiceMeta", s.ServiceMeta}} {
		for _, k := range slices.Sorted(maps.Keys(m.m)) {
			val := m.m[k]
			one(fmt.Sprintf("%s[%s]", m.field, k), &val)
			m.m[k] = val
		}
	}
	if err != nil {
		return nil, err
	}
	if q.Service.Service == "" {
		s.Service = name
	}
	if q.Template.RemoveEmptyTags {
		s.Tags = slices.DeleteFunc(s.Tags, func(t string) bool { return t == "" })
	}
	return r, nil
}

// templateVars are the values a template interpolates.
type templateVars struct {
	full, prefix, suffix string
	matches              []string
}

// interpolate replaces every ${expr} of s by its value.
func (v *templateVars) interpolate(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			// $${ is a literal ${.
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ at byte %d", i)
		}
		val, err := v.eval(strings.TrimSpace(s[i+2 : i+end]))
		if err != nil {
			return "", err
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

// eval answers one expression.
func (v *templateVars) eval(expr string) (string, error) {
	switch expr {
	case "name.full":
		return v.full, nil
	case "name.prefix":
		return v.prefix, nil
	case "name.suffix":
		return v.suffix, nil
	case "agent.segment":
		return "", nil
	}
	if arg, ok := strings.CutPrefix(expr, "match("); ok {
		arg, ok = strings.CutSuffix(arg, ")")
		n, err := strconv.Atoi(strings.TrimSpace(arg))
		if !ok || err != nil {
			return "", fmt.Errorf("match takes one integer, as in ${match(1)}: got ${%s}", expr)
		}
		if n >= 0 && n < len(v.matches) {
			return v.matches[n], nil
		}
		return "", nil
	}
	return "", fmt.Errorf("unknown variable ${%s} (want name.full, name.prefix, name.suffix, agent.segment or match(N))", expr)
}
