package catalog

import (
	"encoding/binary"
	"reflect"
)

// checkRow is a check as a nodeRow holds it. HealthCheck is 640 bytes,
// most of them its definition's two dozen fields, which a check sets two
// or three of; the row is 112. Node, ServiceName and ServiceTags are the
// node's and the service's; the other fields but the ID, the output and
// the service ID are packed (pack) in two strings: common, the fields that
// repeat from node to node (name, type, intervals, TTL, ...), interned, and
// own, those that usually name an address (HTTP, TCP, ...). A definition
// with headers or script arguments is kept whole in full.
type checkRow struct {
	id, output, serviceID    string
	common, own              string
	full                     *HealthCheckDefinition
	status                   uint8
	createIndex, modifyIndex uint64
}

// The stored forms of the check states.
const (
	statusCritical uint8 = iota
	statusWarning
	statusPassing
)

var statusNames = [...]string{statusCritical: HealthCritical, statusWarning: HealthWarning, statusPassing: HealthPassing}

func statusCode(s string) uint8 {
	switch s {
	case HealthPassing:
		return statusPassing
	case HealthWarning:
		return statusWarning
	}
	return statusCritical
}

// The fields pack packs: the strings by their position in packedStrings,
// the booleans after them, then ExposedPort and OutputMaxSize. The first
// addressFields strings go in own, the rest in common.
var packedStrings = [...]func(*HealthCheck) *string{
	func(c *HealthCheck) *string { return &c.Definition.HTTP },
	func(c *HealthCheck) *string { return &c.Definition.TCP },
	func(c *HealthCheck) *string { return &c.Definition.UDP },
	func(c *HealthCheck) *string { return &c.Definition.GRPC },
	func(c *HealthCheck) *string { return &c.Definition.Body },
	func(c *HealthCheck) *string { return &c.Definition.DockerContainerID },
	func(c *HealthCheck) *string { return &c.Definition.AliasNode },
	func(c *HealthCheck) *string { return &c.Name },
	func(c *HealthCheck) *string { return &c.Type },
	func(c *HealthCheck) *string { return &c.Interval },
	func(c *HealthCheck) *string { return &c.Timeout },
	func(c *HealthCheck) *string { return &c.Notes },
	func(c *HealthCheck) *string { return &c.Definition.TLSServerName },
	func(c *HealthCheck) *string { return &c.Definition.Method },
	func(c *HealthCheck) *string { return &c.Definition.OSService },
	func(c *HealthCheck) *string { return &c.Definition.Interval },
	func(c *HealthCheck) *string { return &c.Definition.Timeout },
	func(c *HealthCheck) *string { return &c.Definition.DeregisterCriticalServiceAfter },
	func(c *HealthCheck) *string { return &c.Definition.TTL },
	func(c *HealthCheck) *string { return &c.Definition.Shell },
	func(c *HealthCheck) *string { return &c.Definition.AliasService },
	func(c *HealthCheck) *string { return &c.Definition.SessionName },
}

// addressFields counts the strings at the start of packedStrings that
// usually name an address: HTTP .. AliasNode.
const addressFields = 7

var packedBools = [...]func(*HealthCheck) *bool{
	func(c *HealthCheck) *bool { return &c.Definition.TLSSkipVerify },
	func(c *HealthCheck) *bool { return &c.Definition.DisableRedirects },
	func(c *HealthCheck) *bool { return &c.Definition.TCPUseTLS },
	func(c *HealthCheck) *bool { return &c.Definition.GRPCUseTLS },
}

const (
	tagBools         = len(packedStrings)
	tagExposedPort   = tagBools + len(packedBools)
	tagOutputMaxSize = tagExposedPort + 1
)

// newCheckRow makes the row of a canonical check (cloneCheck).
func newCheckRow(h *HealthCheck) *checkRow {
	c := &checkRow{
		id: h.CheckID, output: h.Output, serviceID: h.ServiceID,
		status: statusCode(h.Status), createIndex: h.CreateIndex, modifyIndex: h.ModifyIndex,
	}
	d := &h.Definition
	if d.Header != nil || d.ScriptArgs != nil {
		full := *d
		c.full = &full
		rest := HealthCheck{Name: h.Name, Type: h.Type, Interval: h.Interval, Timeout: h.Timeout,
			Notes: h.Notes, ExposedPort: h.ExposedPort}
		c.common = pack(&rest, false)
		return c
	}
	c.common, c.own = pack(h, false), pack(h, true)
	return c
}

// pack encodes the check's address fields (own) or its other fields but
// the ID, status, output, service and indexes, and its definition's
// Header and ScriptArgs: for each field that is set, its tag, then for a
// string its length and bytes, for a number its value (varints). A check
// that sets none packs to "".
func pack(h *HealthCheck, own bool) string {
	var b []byte
	for i, f := range packedStrings {
		if s := *f(h); s != "" && (i < addressFields) == own {
			b = append(b, byte(i))
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	if own {
		return string(b)
	}
	for i, f := range packedBools {
		if *f(h) {
			b = append(b, byte(tagBools+i))
		}
	}
	if h.ExposedPort != 0 {
		b = append(b, byte(tagExposedPort))
		b = binary.AppendVarint(b, int64(h.ExposedPort))
	}
	if h.Definition.OutputMaxSize != 0 {
		b = append(b, byte(tagOutputMaxSize))
		b = binary.AppendUvarint(b, uint64(h.Definition.OutputMaxSize))
	}
	return string(b)
}

// unpack sets the fields pack packed in p. The strings share p's bytes.
func unpack(p string, h *HealthCheck) {
	for i := 0; i < len(p); {
		tag := int(p[i])
		i++
		switch {
		case tag < tagBools:
			n, w := uvarint(p[i:])
			i += w
			*packedStrings[tag](h) = p[i : i+int(n)]
			i += int(n)
		case tag < tagExposedPort:
			*packedBools[tag-tagBools](h) = true
		case tag == tagExposedPort:
			v, w := varint(p[i:])
			i += w
			h.ExposedPort = int(v)
		default: // tagOutputMaxSize
			v, w := uvarint(p[i:])
			i += w
			h.Definition.OutputMaxSize = uint(v)
		}
	}
}

func uvarint(s string) (uint64, int) {
	var v uint64
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return v, len(s)
}

func varint(s string) (int64, int) {
	u, w := uvarint(s)
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v, w
}

// healthCheck builds the HealthCheck of c, a check of r.
func (r *nodeRow) healthCheck(c *checkRow) *HealthCheck {
	h := new(HealthCheck)
	r.fillCheck(h, c)
	return h
}

// fillCheck sets *h, a zero HealthCheck, to c, a check of r.
func (r *nodeRow) fillCheck(h *HealthCheck, c *checkRow) {
	*h = HealthCheck{
		Node: r.node.Node, CheckID: c.id, Status: statusNames[c.status],
		Output: c.output, ServiceID: c.serviceID, ServiceTags: []string{},
		CreateIndex: c.createIndex, ModifyIndex: c.modifyIndex,
	}
	if c.full != nil {
		h.Definition = *c.full
	}
	unpack(c.common, h)
	unpack(c.own, h)
	if c.serviceID != "" {
		if s := r.service(c.serviceID); s != nil {
			h.ServiceName, h.ServiceTags = s.Service, s.Tags
		}
	}
}

// equal reports whether two rows hold the same check.
func (c *checkRow) equal(o *checkRow) bool {
	if c.full == nil || o.full == nil {
		return *c == *o
	}
	a, b := *c, *o
	a.full, b.full = nil, nil
	return a == b && reflect.DeepEqual(c.full, o.full)
}
