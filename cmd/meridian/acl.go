package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meridian/meridian/acl"
)

const aclUsage = `Usage: meridian acl bootstrap
       meridian acl token create|list|read|update|delete|clone [options]
       meridian acl policy create|list|read|update|delete [options]
       meridian acl role create|list|read|update|delete [options]
       meridian acl set-agent-token TYPE TOKEN

Every command takes -token, -token-file (or $MERIDIAN_HTTP_TOKEN,
$CONSUL_HTTP_TOKEN, $CONSUL_HTTP_TOKEN_FILE) and -format json.`

func runACL(args []string, stdout, stderr io.Writer) int {
	return runSubcommand("acl", aclUsage, []subcommand{
		{[]string{"bootstrap"}, aclBootstrap},
		{[]string{"token"}, func(args []string, stdout, stderr io.Writer) int {
			return runSubcommand("acl token", aclUsage, []subcommand{
				{[]string{"create"}, aclTokenCreate},
				{[]string{"list"}, aclTokenList},
				{[]string{"read"}, aclTokenRead},
				{[]string{"update"}, aclTokenUpdate},
				{[]string{"delete"}, aclTokenDelete},
				{[]string{"clone"}, aclTokenClone},
			}, args, stdout, stderr)
		}},
		{[]string{"policy"}, func(args []string, stdout, stderr io.Writer) int {
			return runSubcommand("acl policy", aclUsage, []subcommand{
				{[]string{"create"}, aclPolicyCreate},
				{[]string{"list"}, aclPolicyList},
				{[]string{"read"}, policyKind.read},
				{[]string{"update"}, aclPolicyUpdate},
				{[]string{"delete"}, policyKind.delete},
			}, args, stdout, stderr)
		}},
		{[]string{"role"}, func(args []string, stdout, stderr io.Writer) int {
			return runSubcommand("acl role", aclUsage, []subcommand{
				{[]string{"create"}, aclRoleCreate},
				{[]string{"list"}, aclRoleList},
				{[]string{"read"}, roleKind.read},
				{[]string{"update"}, aclRoleUpdate},
				{[]string{"delete"}, roleKind.delete},
			}, args, stdout, stderr)
		}},
		{[]string{"set-agent-token"}, aclSetAgentToken},
	}, args, stdout, stderr)
}

// aclFlags are a command's client flags plus -format, -datacenter and
// -stale.
func aclFlags(name, synopsis string, stderr io.Writer) (*flag.FlagSet, func() *httpClient, *string) {
	fs, client := clientFlags(name, synopsis, stderr)
	format := fs.String("format", "pretty", "output format: pretty or json")
	return fs, serverFlags(fs, client, staleRead), format
}

// printACL prints v as JSON or through pretty.
func printACL(w io.Writer, format string, v any, pretty func(tw *tabwriter.Writer)) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "pretty":
		tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
		pretty(tw)
		return tw.Flush()
	}
	return fmt.Errorf("-format %q: want pretty or json", format)
}

func printToken(tw *tabwriter.Writer, t *acl.Token) {
	fmt.Fprintf(tw, "AccessorID:\t%s\n", t.AccessorID)
	fmt.Fprintf(tw, "SecretID:\t%s\n", t.SecretID)
	fmt.Fprintf(tw, "Description:\t%s\n", t.Description)
	fmt.Fprintf(tw, "Local:\t%t\n", t.Local)
	fmt.Fprintf(tw, "Create Time:\t%s\n", t.CreateTime.Format(time.RFC3339))
	if t.ExpirationTime != nil {
		fmt.Fprintf(tw, "Expiration Time:\t%s\n", t.ExpirationTime.Format(time.RFC3339))
	}
	printLinks(tw, t.Policies, t.ServiceIdentities, t.NodeIdentities)
	if len(t.Roles) > 0 {
		fmt.Fprintln(tw, "Roles:")
		for _, r := range t.Roles {
			fmt.Fprintf(tw, "   %s - %s\n", r.ID, r.Name)
		}
	}
}

func printLinks(tw *tabwriter.Writer, ps []acl.PolicyLink, svcs []*acl.ServiceIdentity, nodes []*acl.NodeIdentity) {
	if len(ps) > 0 {
		fmt.Fprintln(tw, "Policies:")
		for _, p := range ps {
			fmt.Fprintf(tw, "   %s - %s\n", p.ID, p.Name)
		}
	}
	if len(svcs) > 0 {
		fmt.Fprintln(tw, "Service Identities:")
		for _, s := range svcs {
			dcs := "all"
			if len(s.Datacenters) > 0 {
				dcs = strings.Join(s.Datacenters, ", ")
			}
			fmt.Fprintf(tw, "   %s (Datacenters: %s)\n", s.ServiceName, dcs)
		}
	}
	if len(nodes) > 0 {
		fmt.Fprintln(tw, "Node Identities:")
		for _, n := range nodes {
			fmt.Fprintf(tw, "   %s (Datacenter: %s)\n", n.NodeName, n.Datacenter)
		}
	}
}

func printPolicy(tw *tabwriter.Writer, p *acl.Policy) {
	fmt.Fprintf(tw, "ID:\t%s\n", p.ID)
	fmt.Fprintf(tw, "Name:\t%s\n", p.Name)
	fmt.Fprintf(tw, "Description:\t%s\n", p.Description)
	fmt.Fprintf(tw, "Datacenters:\t%s\n", strings.Join(p.Datacenters, ", "))
	fmt.Fprintf(tw, "Rules:\n%s\n", p.Rules)
}

func printRole(tw *tabwriter.Writer, r *acl.Role) {
	fmt.Fprintf(tw, "ID:\t%s\n", r.ID)
	fmt.Fprintf(tw, "Name:\t%s\n", r.Name)
	fmt.Fprintf(tw, "Description:\t%s\n", r.Description)
	printLinks(tw, r.Policies, r.ServiceIdentities, r.NodeIdentities)
}

func aclBootstrap(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl bootstrap", "Creates the first management token; works once per cluster.", stderr)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	var tok acl.Token
	if err := client().sendJSONReply("PUT", "/v1/acl/bootstrap", nil, &tok); err != nil {
		return fail(stderr, "acl bootstrap", err)
	}
	if err := printACL(stdout, *format, &tok, func(tw *tabwriter.Writer) { printToken(tw, &tok) }); err != nil {
		return fail(stderr, "acl bootstrap", err)
	}
	return 0
}

// linkFlags are the flags that name policies, roles and identities.
type linkFlags struct {
	policyIDs, policyNames, roleIDs, roleNames, services, nodes stringList
}

func (l *linkFlags) add(fs *flag.FlagSet, roles bool) {
	fs.Var(&l.policyIDs, "policy-id", "ID of a policy to link (repeatable)")
	fs.Var(&l.policyNames, "policy-name", "name of a policy to link (repeatable)")
	if roles {
		fs.Var(&l.roleIDs, "role-id", "ID of a role to link (repeatable)")
		fs.Var(&l.roleNames, "role-name", "name of a role to link (repeatable)")
	}
	fs.Var(&l.services, "service-identity", "service identity NAME[:DC1,DC2] (repeatable)")
	fs.Var(&l.nodes, "node-identity", "node identity NODE:DC (repeatable)")
}

func (l *linkFlags) given() bool {
	return len(l.policyIDs)+len(l.policyNames)+len(l.roleIDs)+len(l.roleNames)+len(l.services)+len(l.nodes) > 0
}

func (l *linkFlags) policies() []acl.PolicyLink {
	var out []acl.PolicyLink
	for _, id := range l.policyIDs {
		out = append(out, acl.PolicyLink{ID: id})
	}
	for _, n := range l.policyNames {
		out = append(out, acl.PolicyLink{Name: n})
	}
	return out
}

func (l *linkFlags) roles() []acl.RoleLink {
	var out []acl.RoleLink
	for _, id := range l.roleIDs {
		out = append(out, acl.RoleLink{ID: id})
	}
	for _, n := range l.roleNames {
		out = append(out, acl.RoleLink{Name: n})
	}
	return out
}

func (l *linkFlags) identities() ([]*acl.ServiceIdentity, []*acl.NodeIdentity, error) {
	var svcs []*acl.ServiceIdentity
	for _, s := range l.services {
		name, dcs, _ := strings.Cut(s, ":")
		si := &acl.ServiceIdentity{ServiceName: name}
		if dcs != "" {
			si.Datacenters = strings.Split(dcs, ",")
		}
		svcs = append(svcs, si)
	}
	var nodes []*acl.NodeIdentity
	for _, n := range l.nodes {
		name, dc, ok := strings.Cut(n, ":")
		if !ok || name == "" || dc == "" {
			return nil, nil, fmt.Errorf("-node-identity %q: want NODE:DATACENTER", n)
		}
		nodes = append(nodes, &acl.NodeIdentity{NodeName: name, Datacenter: dc})
	}
	return svcs, nodes, nil
}

func aclTokenCreate(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl token create", "Creates a token.", stderr)
	desc := fs.String("description", "", "what the token is for")
	local := fs.Bool("local", false, "a token of this datacenter only")
	ttl := fs.Duration("expires-ttl", 0, "the token stops working after this long (e.g. 1h)")
	secret := fs.String("secret", "", "the SecretID to use (a UUID; default: a new one)")
	accessor := fs.String("accessor", "", "the AccessorID to use (a UUID; default: a new one)")
	var links linkFlags
	links.add(fs, true)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	svcs, nodes, err := links.identities()
	if err != nil {
		return fail(stderr, "acl token create", err)
	}
	in := acl.Token{AccessorID: *accessor, SecretID: *secret, Description: *desc, Local: *local, ExpirationTTL: *ttl,
		Policies: links.policies(), Roles: links.roles(), ServiceIdentities: svcs, NodeIdentities: nodes}
	var tok acl.Token
	if err := client().sendJSONReply("PUT", "/v1/acl/token", &in, &tok); err != nil {
		return fail(stderr, "acl token create", err)
	}
	if err := printACL(stdout, *format, &tok, func(tw *tabwriter.Writer) { printToken(tw, &tok) }); err != nil {
		return fail(stderr, "acl token create", err)
	}
	return 0
}

func aclTokenList(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl token list", "Lists the tokens.", stderr)
	policy := fs.String("policy-id", "", "only tokens linking this policy")
	role := fs.String("role-id", "", "only tokens linking this role")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	q := url.Values{}
	if *policy != "" {
		q.Set("policy", *policy)
	}
	if *role != "" {
		q.Set("role", *role)
	}
	path := "/v1/acl/tokens"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var toks []*acl.Token
	if err := client().do("GET", path, &toks); err != nil {
		return fail(stderr, "acl token list", err)
	}
	err := printACL(stdout, *format, toks, func(tw *tabwriter.Writer) {
		for i, t := range toks {
			if i > 0 {
				fmt.Fprintln(tw)
			}
			printToken(tw, t)
		}
	})
	if err != nil {
		return fail(stderr, "acl token list", err)
	}
	return 0
}

func aclTokenRead(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl token read", "Reads a token by -id, or the one in use with -self.", stderr)
	id := fs.String("id", "", "AccessorID of the token")
	self := fs.Bool("self", false, "read the token the command runs with")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	path := "/v1/acl/token/self"
	switch {
	case *self && *id != "":
		return fail(stderr, "acl token read", fmt.Errorf("give -id or -self, not both"))
	case *id != "":
		path = "/v1/acl/token/" + url.PathEscape(*id)
	case !*self:
		return fail(stderr, "acl token read", fmt.Errorf("missing -id (or -self)"))
	}
	var tok acl.Token
	if err := client().do("GET", path, &tok); err != nil {
		return fail(stderr, "acl token read", err)
	}
	if err := printACL(stdout, *format, &tok, func(tw *tabwriter.Writer) { printToken(tw, &tok) }); err != nil {
		return fail(stderr, "acl token read", err)
	}
	return 0
}

func aclTokenUpdate(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl token update", "Updates a token: the links given replace the token's.", stderr)
	id := fs.String("id", "", "AccessorID of the token")
	desc := fs.String("description", "", "new description (default: kept)")
	var links linkFlags
	links.add(fs, true)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if *id == "" {
		return fail(stderr, "acl token update", fmt.Errorf("missing -id"))
	}
	c := client()
	var tok acl.Token
	path := "/v1/acl/token/" + url.PathEscape(*id)
	if err := c.do("GET", path, &tok); err != nil {
		return fail(stderr, "acl token update", err)
	}
	if *desc != "" {
		tok.Description = *desc
	}
	if links.given() {
		svcs, nodes, err := links.identities()
		if err != nil {
			return fail(stderr, "acl token update", err)
		}
		tok.Policies, tok.Roles, tok.ServiceIdentities, tok.NodeIdentities = links.policies(), links.roles(), svcs, nodes
	}
	tok.SecretID = "" // kept by the server; a reader may have seen it hidden
	var out acl.Token
	if err := c.sendJSONReply("PUT", path, &tok, &out); err != nil {
		return fail(stderr, "acl token update", err)
	}
	if err := printACL(stdout, *format, &out, func(tw *tabwriter.Writer) { printToken(tw, &out) }); err != nil {
		return fail(stderr, "acl token update", err)
	}
	return 0
}

func aclTokenDelete(args []string, stdout, stderr io.Writer) int {
	fs, client, _ := aclFlags("acl token delete", "Deletes a token.", stderr)
	id := fs.String("id", "", "AccessorID of the token")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if *id == "" {
		return fail(stderr, "acl token delete", fmt.Errorf("missing -id"))
	}
	if err := client().do("DELETE", "/v1/acl/token/"+url.PathEscape(*id), nil); err != nil {
		return fail(stderr, "acl token delete", err)
	}
	fmt.Fprintf(stdout, "Token %q deleted successfully\n", *id)
	return 0
}

func aclTokenClone(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl token clone", "Copies a token under a new AccessorID and SecretID.", stderr)
	id := fs.String("id", "", "AccessorID of the token to copy")
	desc := fs.String("description", "", "the copy's description (default: the original's)")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if *id == "" {
		return fail(stderr, "acl token clone", fmt.Errorf("missing -id"))
	}
	var tok acl.Token
	if err := client().sendJSONReply("PUT", "/v1/acl/token/"+url.PathEscape(*id)+"/clone", struct{ Description string }{*desc}, &tok); err != nil {
		return fail(stderr, "acl token clone", err)
	}
	if err := printACL(stdout, *format, &tok, func(tw *tabwriter.Writer) { printToken(tw, &tok) }); err != nil {
		return fail(stderr, "acl token clone", err)
	}
	return 0
}

// policyFlags are the fields of a policy create or update.
type policyFlags struct {
	name, desc, rules *string
	dcs               stringList
}

func (p *policyFlags) add(fs *flag.FlagSet) {
	p.name = fs.String("name", "", "the policy's name")
	p.desc = fs.String("description", "", "what the policy is for")
	p.rules = fs.String("rules", "", "the rules: text, @file.hcl or - (stdin)")
	fs.Var(&p.dcs, "valid-datacenter", "a datacenter the policy applies in (repeatable; default all)")
}

// readRules reads -rules and checks them here first, so a mistake is
// reported with its line and column before anything is sent.
func (p *policyFlags) readRules() (string, error) {
	if *p.rules == "" {
		return "", nil
	}
	b, err := readData(*p.rules, os.Stdin)
	if err != nil {
		return "", err
	}
	if _, err := acl.ParseRules(string(b)); err != nil {
		return "", err
	}
	return string(b), nil
}

func aclPolicyCreate(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl policy create", "Creates a policy: -name NAME -rules @file.hcl.", stderr)
	var pf policyFlags
	pf.add(fs)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if *pf.name == "" {
		return fail(stderr, "acl policy create", fmt.Errorf("missing -name"))
	}
	rules, err := pf.readRules()
	if err != nil {
		return fail(stderr, "acl policy create", err)
	}
	in := acl.Policy{Name: *pf.name, Description: *pf.desc, Rules: rules, Datacenters: pf.dcs}
	var p acl.Policy
	if err := client().sendJSONReply("PUT", "/v1/acl/policy", &in, &p); err != nil {
		return fail(stderr, "acl policy create", err)
	}
	if err := printACL(stdout, *format, &p, func(tw *tabwriter.Writer) { printPolicy(tw, &p) }); err != nil {
		return fail(stderr, "acl policy create", err)
	}
	return 0
}

func aclPolicyList(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl policy list", "Lists the policies.", stderr)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	var ps []*acl.Policy
	if err := client().do("GET", "/v1/acl/policies", &ps); err != nil {
		return fail(stderr, "acl policy list", err)
	}
	err := printACL(stdout, *format, ps, func(tw *tabwriter.Writer) {
		for _, p := range ps {
			fmt.Fprintf(tw, "%s:\n   ID:\t%s\n   Description:\t%s\n", p.Name, p.ID, p.Description)
		}
	})
	if err != nil {
		return fail(stderr, "acl policy list", err)
	}
	return 0
}

func aclPolicyUpdate(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl policy update", "Updates a policy: the fields given replace the policy's.", stderr)
	id := fs.String("id", "", "ID of the policy")
	var pf policyFlags
	pf.add(fs)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if *id == "" {
		return fail(stderr, "acl policy update", fmt.Errorf("missing -id"))
	}
	c := client()
	path := "/v1/acl/policy/" + url.PathEscape(*id)
	var p acl.Policy
	if err := c.do("GET", path, &p); err != nil {
		return fail(stderr, "acl policy update", err)
	}
	rules, err := pf.readRules()
	if err != nil {
		return fail(stderr, "acl policy update", err)
	}
	if *pf.rules != "" {
		p.Rules = rules
	}
	if *pf.name != "" {
		p.Name = *pf.name
	}
	if *pf.desc != "" {
		p.Description = *pf.desc
	}
	if len(pf.dcs) > 0 {
		p.Datacenters = pf.dcs
	}
	var out acl.Policy
	if err := c.sendJSONReply("PUT", path, &p, &out); err != nil {
		return fail(stderr, "acl policy update", err)
	}
	if err := printACL(stdout, *format, &out, func(tw *tabwriter.Writer) { printPolicy(tw, &out) }); err != nil {
		return fail(stderr, "acl policy update", err)
	}
	return 0
}

func aclRoleCreate(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl role create", "Creates a role: -name NAME and the policies and identities it grants.", stderr)
	name := fs.String("name", "", "the role's name")
	desc := fs.String("description", "", "what the role is for")
	var links linkFlags
	links.add(fs, false)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if *name == "" {
		return fail(stderr, "acl role create", fmt.Errorf("missing -name"))
	}
	svcs, nodes, err := links.identities()
	if err != nil {
		return fail(stderr, "acl role create", err)
	}
	in := acl.Role{Name: *name, Description: *desc, Policies: links.policies(), ServiceIdentities: svcs, NodeIdentities: nodes}
	var r acl.Role
	if err := client().sendJSONReply("PUT", "/v1/acl/role", &in, &r); err != nil {
		return fail(stderr, "acl role create", err)
	}
	if err := printACL(stdout, *format, &r, func(tw *tabwriter.Writer) { printRole(tw, &r) }); err != nil {
		return fail(stderr, "acl role create", err)
	}
	return 0
}

func aclRoleList(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl role list", "Lists the roles.", stderr)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	var rs []*acl.Role
	if err := client().do("GET", "/v1/acl/roles", &rs); err != nil {
		return fail(stderr, "acl role list", err)
	}
	err := printACL(stdout, *format, rs, func(tw *tabwriter.Writer) {
		for i, r := range rs {
			if i > 0 {
				fmt.Fprintln(tw)
			}
			printRole(tw, r)
		}
	})
	if err != nil {
		return fail(stderr, "acl role list", err)
	}
	return 0
}

func aclRoleUpdate(args []string, stdout, stderr io.Writer) int {
	fs, client, format := aclFlags("acl role update", "Updates a role: the links given replace the role's.", stderr)
	id := fs.String("id", "", "ID of the role")
	name := fs.String("name", "", "new name (default: kept)")
	desc := fs.String("description", "", "new description (default: kept)")
	var links linkFlags
	links.add(fs, false)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if *id == "" {
		return fail(stderr, "acl role update", fmt.Errorf("missing -id"))
	}
	c := client()
	path := "/v1/acl/role/" + url.PathEscape(*id)
	var r acl.Role
	if err := c.do("GET", path, &r); err != nil {
		return fail(stderr, "acl role update", err)
	}
	if *name != "" {
		r.Name = *name
	}
	if *desc != "" {
		r.Description = *desc
	}
	if links.given() {
		svcs, nodes, err := links.identities()
		if err != nil {
			return fail(stderr, "acl role update", err)
		}
		r.Policies, r.ServiceIdentities, r.NodeIdentities = links.policies(), svcs, nodes
	}
	var out acl.Role
	if err := c.sendJSONReply("PUT", path, &r, &out); err != nil {
		return fail(stderr, "acl role update", err)
	}
	if err := printACL(stdout, *format, &out, func(tw *tabwriter.Writer) { printRole(tw, &out) }); err != nil {
		return fail(stderr, "acl role update", err)
	}
	return 0
}

// aclKind is what the read and delete commands of policies and roles
// share: the object's noun in paths and messages, its ID and its printer.
type aclKind[T any] struct {
	noun  string // "policy": /v1/acl/policy/ID and /v1/acl/policy/name/NAME
	title string // "Policy", in "Policy "ID" deleted successfully"
	id    func(*T) string
	print func(*tabwriter.Writer, *T)
}

var (
	policyKind = aclKind[acl.Policy]{"policy", "Policy", func(p *acl.Policy) string { return p.ID }, printPolicy}
	roleKind   = aclKind[acl.Role]{"role", "Role", func(r *acl.Role) string { return r.ID }, printRole}
)

// path is the path of the object named by -id or -name.
func (k aclKind[T]) path(id, name string) (string, error) {
	switch {
	case id != "" && name != "":
		return "", fmt.Errorf("give -id or -name, not both")
	case id != "":
		return "/v1/acl/" + k.noun + "/" + url.PathEscape(id), nil
	case name != "":
		return "/v1/acl/" + k.noun + "/name/" + url.PathEscape(name), nil
	}
	return "", fmt.Errorf("missing -id or -name")
}

// fetch parses the -id/-name command line of cmd and reads the object.
func (k aclKind[T]) fetch(cmd, synopsis string, args []string, stderr io.Writer) (v *T, c *httpClient, format string, code int) {
	fs, client, formatFlag := aclFlags(cmd, synopsis, stderr)
	id := fs.String("id", "", "ID of the "+k.noun)
	name := fs.String("name", "", "name of the "+k.noun)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return nil, nil, "", code
	}
	path, err := k.path(*id, *name)
	if err != nil {
		return nil, nil, "", fail(stderr, cmd, err)
	}
	c = client()
	v = new(T)
	if err := c.do("GET", path, v); err != nil {
		return nil, nil, "", fail(stderr, cmd, err)
	}
	return v, c, *formatFlag, 0
}

func (k aclKind[T]) read(args []string, stdout, stderr io.Writer) int {
	cmd := "acl " + k.noun + " read"
	v, _, format, code := k.fetch(cmd, "Reads a "+k.noun+" by -id or -name.", args, stderr)
	if v == nil {
		return code
	}
	if err := printACL(stdout, format, v, func(tw *tabwriter.Writer) { k.print(tw, v) }); err != nil {
		return fail(stderr, cmd, err)
	}
	return 0
}

func (k aclKind[T]) delete(args []string, stdout, stderr io.Writer) int {
	cmd := "acl " + k.noun + " delete"
	v, c, _, code := k.fetch(cmd, "Deletes a "+k.noun+" by -id or -name.", args, stderr)
	if v == nil {
		return code
	}
	if err := c.do("DELETE", "/v1/acl/"+k.noun+"/"+url.PathEscape(k.id(v)), nil); err != nil {
		return fail(stderr, cmd, err)
	}
	fmt.Fprintf(stdout, "%s %q deleted successfully\n", k.title, k.id(v))
	return 0
}

func aclSetAgentToken(args []string, stdout, stderr io.Writer) int {
	fs, client, _ := aclFlags("acl set-agent-token [options] TYPE TOKEN", "Sets one of the agent's tokens: default, agent, agent_recovery or replication.", stderr)
	if ok, code := parseArgs(fs, args, 2, "TYPE TOKEN"); !ok {
		return code
	}
	kind, secret := fs.Arg(0), fs.Arg(1)
	if err := client().sendJSON("PUT", "/v1/agent/token/"+url.PathEscape(kind), struct{ Token string }{secret}); err != nil {
		return fail(stderr, "acl set-agent-token", err)
	}
	fmt.Fprintf(stdout, "ACL token %q set successfully\n", kind)
	return 0
}
