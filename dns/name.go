package dns

import "strings"

// kind is what a name under the domain asks for.
type kind uint8

const (
	kindInvalid kind = iota // under the domain, but no known form: NXDOMAIN
	kindApex                // the domain itself
	kindService             // [TAG.]NAME.service[.DC] and _NAME._TAG.service[.DC]
	kindNode                // NODE.node[.DC]
	kindAddr                // HEXIP.addr[.DC]
	kindQuery               // NAME.query[.DC]
)

// query is a parsed question name. Every string is a substring of the
// lowercased question name, so parsing allocates nothing.
type query struct {
	kind   kind
	name   string // service, node, hex address or prepared query name
	tag    string // service tag filter, "" for none
	dc     string // "" when the name carries none
	domain string // the zone the name was asked in, as configured
}

// parseName parses a lowercase, fully qualified question name against the
// configured domains (lowercase, fully qualified). ok is false when the name
// is outside every domain.
func parseName(qname string, domains []string) (q query, ok bool) {
	var rest string
	for _, d := range domains {
		if qname == d {
			return query{kind: kindApex, domain: d}, true
		}
		if len(qname) > len(d) && strings.HasSuffix(qname, d) && qname[len(qname)-len(d)-1] == '.' {
			rest, q.domain, ok = qname[:len(qname)-len(d)-1], d, true
			break
		}
	}
	if !ok {
		return query{}, false
	}
	// rest is "labels.type[.dc]" without the trailing dot. Escaped names
	// (\. or \DDD) never match a registered name.
	if rest == "" || strings.IndexByte(rest, '\\') >= 0 {
		return query{domain: q.domain}, true
	}
	before, last := cutLast(rest)
	k := typeLabel(last)
	if k == kindInvalid {
		if before == "" {
			return query{domain: q.domain}, true
		}
		q.dc = last
		before, last = cutLast(before)
		if k = typeLabel(last); k == kindInvalid {
			return query{domain: q.domain}, true
		}
	}
	if before == "" {
		return query{domain: q.domain}, true // "service.consul", "node.dc1.consul"
	}
	switch k {
	case kindService:
		head, name := cutLast(before)
		if strings.IndexByte(head, '.') >= 0 {
			return query{domain: q.domain}, true // more than TAG.NAME
		}
		if strings.HasPrefix(head, "_") && strings.HasPrefix(name, "_") {
			// RFC 2782: _NAME._TAG; _tcp and _udp are no filter.
			name, head = head[1:], name[1:]
			if head == "tcp" || head == "udp" {
				head = ""
			}
		}
		if name == "" {
			return query{domain: q.domain}, true
		}
		q.name, q.tag = name, head
	default:
		// A prepared query's name may hold dots, as in Consul.
		if k != kindQuery && strings.IndexByte(before, '.') >= 0 {
			return query{domain: q.domain}, true
		}
		q.name = before
	}
	if q.dc != "" && strings.IndexByte(q.dc, '.') >= 0 {
		return query{domain: q.domain}, true
	}
	q.kind = k
	return q, true
}

// cutLast splits "a.b.c" into "a.b" and "c".
func cutLast(s string) (before, last string) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}

func typeLabel(l string) kind {
	switch l {
	case "service":
		return kindService
	case "node":
		return kindNode
	case "addr":
		return kindAddr
	case "query":
		return kindQuery
	}
	return kindInvalid
}
