package acl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	hclparser "github.com/hashicorp/hcl/hcl/parser"
	hclstrconv "github.com/hashicorp/hcl/hcl/strconv"
	"github.com/hashicorp/hcl/hcl/token"
)

// Access is a level of access a rule grants. The zero value, AccessDefault,
// is "no rule here": the next rule out, or the default policy, decides.
type Access uint8

// The levels, in the order Consul's rule language names them. Write grants
// list and read; list grants read (list is only valid on keys); deny grants
// nothing and stops the search.
const (
	AccessDefault Access = iota
	AccessDeny
	AccessRead
	AccessList
	AccessWrite
)

// String returns the level as rules spell it.
func (a Access) String() string {
	switch a {
	case AccessDeny:
		return "deny"
	case AccessRead:
		return "read"
	case AccessList:
		return "list"
	case AccessWrite:
		return "write"
	}
	return "default"
}

// grants reports whether a rule of level a allows an operation that needs
// want (read, list or write).
func (a Access) grants(want Access) bool {
	switch a {
	case AccessWrite:
		return true
	case AccessList:
		return want == AccessList || want == AccessRead
	case AccessRead:
		return want == AccessRead
	}
	return false
}

// precedes reports whether a wins over b when two policies set a rule on
// the same segment: deny wins, then the widest grant.
func (a Access) precedes(b Access) bool {
	if a == AccessDeny || b == AccessDeny {
		return a == AccessDeny
	}
	return a > b
}

// Resource is a kind of thing rules grant access to.
type Resource uint8

// The resources of Consul's rule language. The first ones are named by a
// segment (a key, a service name...) with exact and prefix rules; from
// ResOperator on they are single switches (`operator = "read"`).
const (
	ResKey Resource = iota
	ResService
	ResNode
	ResSession
	ResEvent
	ResQuery
	ResAgent
	ResOperator
	ResKeyring
	ResACL
	ResMesh
	ResPeering
	numResources
)

// numSegmented is how many resources take segments.
const numSegmented = int(ResOperator)

var resourceNames = [numResources]string{"key", "service", "node", "session", "event", "query", "agent", "operator", "keyring", "acl", "mesh", "peering"}

// String returns the resource as rules spell it.
func (r Resource) String() string {
	if r < numResources {
		return resourceNames[r]
	}
	return "resource(" + strconv.Itoa(int(r)) + ")"
}

// segmented reports whether r takes exact and prefix rules on segments.
func (r Resource) segmented() bool { return int(r) < numSegmented }

// Rule is one rule of a policy: Access to Resource on Segment (exactly, or
// every segment that starts with it when Prefix is set). A switch resource
// (operator, keyring, acl, mesh, peering) has neither segment nor prefix.
type Rule struct {
	Resource Resource
	Segment  string
	Prefix   bool
	Access   Access
}

// Rules are a parsed policy, in the order written.
type Rules []Rule

// RuleError is a policy that does not parse or says something the rule
// language does not: where (1-based line and column of the rules text, 0
// when unknown) and what.
type RuleError struct {
	Line, Column int
	Msg          string

	near string // the offending text, to locate a JSON mistake
}

func (e *RuleError) Error() string {
	if e.Line == 0 {
		return "rules: " + e.Msg
	}
	return fmt.Sprintf("rules: line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// ruleErr is a mistake at node. HCL's JSON parser keeps no positions, so
// the error also carries the node's text for ParseRules to find.
func ruleErr(at ast.Node, format string, args ...any) error {
	e := &RuleError{Msg: fmt.Sprintf(format, args...)}
	var pos token.Pos
	switch n := at.(type) {
	case *ast.ObjectKey:
		pos, e.near = n.Token.Pos, n.Token.Text
	case *ast.LiteralType:
		pos, e.near = n.Token.Pos, n.Token.Text
	default:
		pos = at.Pos()
	}
	e.Line, e.Column = pos.Line, pos.Column
	return e
}

// locate sets e's line and column, when it has none, to the first place
// text holds what the error is about.
func (e *RuleError) locate(text string) {
	if e.Line != 0 || e.near == "" {
		return
	}
	if i := strings.Index(text, e.near); i >= 0 {
		e.Line, e.Column = lineColumn(text, i)
	}
}

// lineColumn turns a byte offset of text into a 1-based line and column.
func lineColumn(text string, off int) (int, int) {
	line := 1 + strings.Count(text[:off], "\n")
	return line, off - strings.LastIndexByte(text[:off], '\n')
}

// checkJSON reports JSON syntax errors with their position: HCL's JSON
// parser reads some malformed JSON (`{"key": }`) as an empty object.
func checkJSON(text string) error {
	var v any
	err := json.Unmarshal([]byte(text), &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineColumn(text, int(min(max(se.Offset-1, 0), int64(len(text)))))
		return &RuleError{Line: line, Column: col, Msg: se.Error()}
	}
	if err != nil {
		return &RuleError{Msg: err.Error()}
	}
	if _, ok := v.(map[string]any); !ok {
		return &RuleError{Line: 1, Column: 1, Msg: "JSON rules must be an object"}
	}
	return nil
}

// maxRulesSize bounds the rules text ParseRules accepts; Consul's largest
// real policies are a few kilobytes.
const maxRulesSize = 128 << 10

// ParseRules parses a policy's rules, written in Consul's rule language in
// HCL or JSON (which HCL v1 reads too, as Consul does):
//
//	key_prefix "app/" { policy = "write" }
//	service "web" { policy = "read" }
//	operator = "read"
//
// Errors are *RuleError with the line and column of the mistake. Empty
// rules are valid and grant nothing.
func ParseRules(text string) (Rules, error) {
	if len(text) > maxRulesSize {
		return nil, &RuleError{Msg: fmt.Sprintf("%d bytes, more than the %d allowed", len(text), maxRulesSize)}
	}
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	if strings.HasPrefix(strings.TrimLeft(text, " \t\r\n"), "{") {
		if err := checkJSON(text); err != nil {
			return nil, err
		}
	}
	f, err := parseHCL(text)
	if err != nil {
		var pe *hclparser.PosError
		if errors.As(err, &pe) {
			return nil, &RuleError{Line: pe.Pos.Line, Column: pe.Pos.Column, Msg: pe.Err.Error()}
		}
		return nil, &RuleError{Msg: err.Error()}
	}
	list, ok := f.Node.(*ast.ObjectList)
	if !ok {
		return nil, ruleErr(f.Node, "want resource rules at the top level")
	}
	var p ruleParser
	for _, item := range list.Items {
		if err := p.item(item); err != nil {
			var re *RuleError
			if errors.As(err, &re) {
				re.locate(text)
			}
			return nil, err
		}
	}
	return p.rules, nil
}

// parseHCL parses text as HCL or JSON; the HCL parser panics on a few
// malformed inputs, which are errors here.
func parseHCL(text string) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("malformed rules: %v", r)
		}
	}()
	f, err = hcl.ParseString(text)
	if err == nil && (f == nil || f.Node == nil) {
		err = errors.New("malformed rules")
	}
	return f, err
}

type ruleParser struct {
	rules Rules
}

// resourceKeywords maps each keyword of the language to its resource and
// whether it writes prefix rules.
var resourceKeywords = map[string]struct {
	res    Resource
	prefix bool
}{
	"key": {ResKey, false}, "key_prefix": {ResKey, true},
	"service": {ResService, false}, "service_prefix": {ResService, true},
	"node": {ResNode, false}, "node_prefix": {ResNode, true},
	"session": {ResSession, false}, "session_prefix": {ResSession, true},
	"event": {ResEvent, false}, "event_prefix": {ResEvent, true},
	"query": {ResQuery, false}, "query_prefix": {ResQuery, true},
	"agent": {ResAgent, false}, "agent_prefix": {ResAgent, true},
	"operator": {ResOperator, false}, "keyring": {ResKeyring, false},
	"acl": {ResACL, false}, "mesh": {ResMesh, false}, "peering": {ResPeering, false},
}

const knownResources = "key, key_prefix, service, service_prefix, node, node_prefix, session, session_prefix, event, event_prefix, query, query_prefix, agent, agent_prefix, operator, keyring, acl, mesh, peering"

// item reads one top-level item: `operator = "read"`, `key "a" { ... }`,
// or, as JSON gives it, `key = { "a" = { ... } }`.
func (p *ruleParser) item(item *ast.ObjectItem) error {
	if len(item.Keys) == 0 {
		return ruleErr(item.Val, "want a resource name")
	}
	word, err := keyText(item.Keys[0])
	if err != nil {
		return err
	}
	kw, ok := resourceKeywords[word]
	if !ok {
		return ruleErr(item.Keys[0], "unknown resource %q (want one of %s)", word, knownResources)
	}
	if !kw.res.segmented() {
		if len(item.Keys) > 1 {
			return ruleErr(item.Keys[1], "%s takes no name: write %s = \"read\"", word, word)
		}
		a, err := p.level(item.Val, word, false)
		if err != nil {
			return err
		}
		p.rules = append(p.rules, Rule{Resource: kw.res, Access: a})
		return nil
	}
	if len(item.Keys) > 2 {
		return ruleErr(item.Keys[2], "%s takes one name, got more", word)
	}
	if len(item.Keys) == 2 {
		seg, err := keyText(item.Keys[1])
		if err != nil {
			return err
		}
		return p.block(kw.res, kw.prefix, word, seg, item.Val)
	}
	return p.named(kw.res, kw.prefix, word, item.Val)
}

// named reads the body of `key = { "a" = {...} "b" = {...} }` (and JSON's
// lists of such objects): each item names a segment.
func (p *ruleParser) named(res Resource, prefix bool, word string, val ast.Node) error {
	switch v := val.(type) {
	case *ast.ObjectType:
		for _, it := range v.List.Items {
			if len(it.Keys) == 0 {
				return ruleErr(it.Val, "%s wants a name, such as %s \"web\" { policy = \"read\" }", word, word)
			}
			seg, err := keyText(it.Keys[0])
			if err != nil {
				return err
			}
			if len(it.Keys) > 1 {
				return ruleErr(it.Keys[1], "%s takes one name, got more", word)
			}
			if err := p.block(res, prefix, word, seg, it.Val); err != nil {
				return err
			}
		}
		return nil
	case *ast.ListType:
		for _, el := range v.List {
			if err := p.named(res, prefix, word, el); err != nil {
				return err
			}
		}
		return nil
	}
	return ruleErr(val, "%s wants a name, such as %s \"web\" { policy = \"read\" }", word, word)
}

// block reads `{ policy = "read" }` (service blocks may add intentions).
func (p *ruleParser) block(res Resource, prefix bool, word, seg string, val ast.Node) error {
	if l, ok := val.(*ast.ListType); ok && len(l.List) == 1 {
		val = l.List[0] // JSON: "key": {"a": [{"policy": "read"}]}
	}
	obj, ok := val.(*ast.ObjectType)
	if !ok {
		return ruleErr(val, "%s %q wants a block such as { policy = \"read\" }", word, seg)
	}
	var access Access
	var seen bool
	for _, it := range obj.List.Items {
		if len(it.Keys) != 1 {
			return ruleErr(it.Val, "%s %q: want field = value", word, seg)
		}
		field, err := keyText(it.Keys[0])
		if err != nil {
			return err
		}
		switch {
		case field == "policy":
			access, err = p.level(it.Val, word+" "+strconv.Quote(seg)+" policy", res == ResKey)
			if err != nil {
				return err
			}
			seen = true
		case field == "intentions" && res == ResService:
			// Intentions are Connect's; Meridian has none to guard, but
			// a service policy that sets them must still be valid.
			if _, err := p.level(it.Val, word+" "+strconv.Quote(seg)+" intentions", false); err != nil {
				return err
			}
		default:
			return ruleErr(it.Keys[0], "%s %q: unknown field %q (want policy)", word, seg, field)
		}
	}
	if !seen {
		return ruleErr(obj, "%s %q has no policy: write { policy = \"read\" }", word, seg)
	}
	p.rules = append(p.rules, Rule{Resource: res, Segment: seg, Prefix: prefix, Access: access})
	return nil
}

// level reads "read", "write", "deny" (and "list" where allowList).
func (p *ruleParser) level(val ast.Node, what string, allowList bool) (Access, error) {
	lit, ok := val.(*ast.LiteralType)
	if !ok || lit.Token.Type != token.STRING {
		return 0, ruleErr(val, "%s wants a string: \"read\", \"write\" or \"deny\"", what)
	}
	s, err := tokenString(lit.Token)
	if err != nil {
		return 0, err
	}
	switch strings.TrimSpace(s) {
	case "read":
		return AccessRead, nil
	case "write":
		return AccessWrite, nil
	case "deny":
		return AccessDeny, nil
	case "list":
		if allowList {
			return AccessList, nil
		}
	}
	want := `"read", "write" or "deny"`
	if allowList {
		want = `"read", "list", "write" or "deny"`
	}
	return 0, ruleErr(val, "%s %q is not a level (want %s)", what, s, want)
}

// keyText is an object key's text: an identifier, or a quoted string
// unquoted.
func keyText(k *ast.ObjectKey) (string, error) {
	switch k.Token.Type {
	case token.IDENT:
		return k.Token.Text, nil
	case token.STRING:
		return tokenString(k.Token)
	}
	return "", ruleErr(k, "unexpected %s %q", k.Token.Type, k.Token.Text)
}

// tokenString unquotes a string token without the panics of
// token.Value on malformed text.
func tokenString(t token.Token) (string, error) {
	at := &ast.LiteralType{Token: t}
	switch t.Type {
	case token.STRING:
		if t.Text == "" {
			return "", nil // JSON null
		}
		unquote := hclstrconv.Unquote
		if t.JSON {
			unquote = strconv.Unquote
		}
		s, err := unquote(t.Text)
		if err != nil {
			return "", ruleErr(at, "malformed string %s: %v", t.Text, err)
		}
		return s, nil
	}
	return "", ruleErr(at, "want a string, got %s", t.Type)
}
