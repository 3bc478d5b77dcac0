package server

import (
	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// aclPerm is one permission a write needs.
type aclPerm struct {
	res    acl.Resource
	seg    string
	want   acl.Access
	prefix bool // write on everything under seg
}

// authorizeWrite checks, with ACLs on, that the token a write carries may
// make it. Every endpoint runs it (register), so a write sent straight to
// the server port is held to the rules of the HTTP API, and an agent's own
// writes (anti-entropy, coordinates) need its agent token. Writes of
// other kinds, and the ACL endpoints, which check themselves, pass. Every
// error denies.
func (s *Server) authorizeWrite(args any) error {
	if !s.cfg.ACL.Enabled {
		return nil
	}
	var token string
	var perms []aclPerm
	switch a := args.(type) {
	case *registerWrite:
		token, perms = a.Token, registerPerms(&a.Args)
	case *deregisterWrite:
		token, perms = a.Token, s.deregisterPerms(&a.Args)
	case *kvWrite:
		p := aclPerm{res: acl.ResKey, seg: a.Args.Key, want: acl.AccessWrite}
		p.prefix = a.Args.Op == kvstore.VerbDeleteTree
		token, perms = a.Token, []aclPerm{p}
	case *txnWrite:
		token, perms = a.Token, s.txnPerms(a.Args.Ops)
	case *sessionWrite:
		token, perms = a.Token, []aclPerm{{res: acl.ResSession, seg: s.sessionNode(&a.Args), want: acl.AccessWrite}}
	case *rpc.Write[kvstore.SessionQuery]: // a renew
		node := ""
		tx, _ := s.state.read()
		if _, sess, err := kvstore.SessionGet(tx, nil, a.Args.ID); err == nil && sess != nil {
			node = sess.Node
		}
		tx.Abort()
		token, perms = a.Token, []aclPerm{{res: acl.ResSession, seg: node, want: acl.AccessWrite}}
	case *queryApplyWrite:
		token, perms = a.Token, s.queryPerms(&a.Args)
	case *rpc.Write[rpc.AutopilotSetRequest]:
		token, perms = a.Token, []aclPerm{{res: acl.ResOperator, want: acl.AccessWrite}}
	case *coordinateWrite:
		token, perms = a.Token, []aclPerm{{res: acl.ResNode, seg: a.Args.Node, want: acl.AccessWrite}}
	default:
		return nil
	}
	auth, err := s.ResolveToken(token)
	if err != nil {
		return err
	}
	for _, p := range perms {
		if p.prefix {
			if !auth.AllowedWritePrefix(p.res, p.seg) {
				return aclError(&acl.PermissionDeniedError{AccessorID: auth.AccessorID(), Resource: p.res, Segment: p.seg, Access: acl.AccessWrite})
			}
			continue
		}
		if err := auth.Check(p.res, p.seg, p.want); err != nil {
			return aclError(err)
		}
	}
	return nil
}

// registerPerms: service:write for a service registered, node:write for a
// node registered alone; service:write for a service check, node:write for
// a node check.
func registerPerms(req *catalog.RegisterRequest) []aclPerm {
	var perms []aclPerm
	names := map[string]string{}
	if req.Service != nil {
		perms = append(perms, aclPerm{res: acl.ResService, seg: req.Service.Service, want: acl.AccessWrite})
		names[req.Service.ID] = req.Service.Service
	} else {
		perms = append(perms, aclPerm{res: acl.ResNode, seg: req.Node, want: acl.AccessWrite})
	}
	checks := req.Checks
	if req.Check != nil {
		checks = append(checks[:len(checks):len(checks)], req.Check)
	}
	for _, c := range checks {
		if c == nil {
			continue
		}
		if c.ServiceID == "" {
			perms = append(perms, aclPerm{res: acl.ResNode, seg: req.Node, want: acl.AccessWrite})
			continue
		}
		name := c.ServiceName
		if n, ok := names[c.ServiceID]; ok {
			name = n
		}
		if name == "" {
			name = c.ServiceID
		}
		perms = append(perms, aclPerm{res: acl.ResService, seg: name, want: acl.AccessWrite})
	}
	return perms
}

// deregisterPerms: service:write on the service removed (named from the
// catalog), node:write for a node or a node check.
func (s *Server) deregisterPerms(req *catalog.DeregisterRequest) []aclPerm {
	if req.ServiceID == "" {
		return []aclPerm{{res: acl.ResNode, seg: req.Node, want: acl.AccessWrite}}
	}
	name := req.ServiceID
	tx, _ := s.state.read()
	_, ns, err := catalog.GetNodeServices(tx, nil, req.Node)
	tx.Abort()
	if err == nil && ns != nil {
		if svc, ok := ns.Services[req.ServiceID]; ok {
			name = svc.Service
		}
	}
	return []aclPerm{{res: acl.ResService, seg: name, want: acl.AccessWrite}}
}

func txnPerm(op *kvstore.TxnOp) aclPerm {
	p := aclPerm{res: acl.ResKey, seg: op.Key, want: acl.AccessWrite}
	switch op.Verb {
	case kvstore.VerbGet, kvstore.VerbGetOrEmpty, kvstore.VerbGetTree, kvstore.VerbCheckIndex, kvstore.VerbCheckSession, kvstore.VerbCheckNotExists:
		p.want = acl.AccessRead
	case kvstore.VerbDeleteTree:
		p.prefix = true
	}
	return p
}

// sessionNode is the node a session write is about: the new session's,
// or the stored session's for a destroy ("" when there is none).
func (s *Server) sessionNode(req *kvstore.SessionRequest) string {
	if req.Op != kvstore.SessionOpDestroy {
		return req.Session.Node
	}
	tx, _ := s.state.read()
	defer tx.Abort()
	_, sess, err := kvstore.SessionGet(tx, nil, req.Session.ID)
	if err != nil || sess == nil {
		return ""
	}
	return sess.Node
}

// queryPerms: query:write on the name a create or update gives, and on
// the stored query's name for an update or delete.
func (s *Server) queryPerms(req *catalog.QueryApplyRequest) []aclPerm {
	var perms []aclPerm
	if req.Op != catalog.QueryOpDelete {
		perms = append(perms, aclPerm{res: acl.ResQuery, seg: req.Query.Name, want: acl.AccessWrite})
	}
	if req.Op == catalog.QueryOpCreate {
		return perms
	}
	tx, _ := s.state.read()
	defer tx.Abort()
	name := ""
	if _, q, err := catalog.QueryGet(tx, nil, req.Query.ID); err == nil && q != nil {
		name = q.Name
	}
	return append(perms, aclPerm{res: acl.ResQuery, seg: name, want: acl.AccessWrite})
}
