package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// sessionCreated is the answer to /v1/session/create.
type sessionCreated struct {
	ID string
}

// decodeSession reads a session create body with Consul's defaults: the
// agent's node, LockDelay 15s, Behavior release, and NodeChecks
// [serfHealth] unless the body names node checks of its own
// (ServiceChecks alone keep it, as in Consul).
func decodeSession(r *http.Request, node string) (kvstore.Session, error) {
	sess := kvstore.Session{
		Node:      node,
		LockDelay: kvstore.DefaultLockDelay,
		Behavior:  kvstore.BehaviorRelease,
	}
	body, err := readBody(r, maxBodyBytes)
	if err != nil {
		return sess, err
	}
	var fields map[string]json.RawMessage
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &fields); err != nil {
			return sess, badf("request body: %s", jsonError(err))
		}
		if err := json.Unmarshal(body, &sess); err != nil {
			return sess, badf("request body: %s", jsonError(err))
		}
	}
	named := false
	for k := range fields {
		switch strings.ToLower(k) {
		case "checks", "nodechecks", "node_checks": // ServiceChecks keep the default, as Consul's
			named = true
		}
	}
	if !named {
		sess.NodeChecks = []string{catalog.SerfCheckID}
	}
	if sess.Node == "" {
		sess.Node = node
	}
	return sess, nil
}

// sessionApply sends a Session.Apply write.
func (s *Server) sessionApply(r *http.Request, op kvstore.SessionOp, sess kvstore.Session) (kvstore.SessionResult, error) {
	return writeReply[kvstore.SessionRequest, kvstore.SessionResult](s, r, rpc.MethodSessionApply,
		kvstore.SessionRequest{Op: op, Session: sess})
}

func (s *Server) sessionCreate(_ http.ResponseWriter, r *http.Request) (any, error) {
	sess, err := decodeSession(r, s.agent.NodeName())
	if err != nil {
		return nil, err
	}
	if err := kvstore.ValidateSession(&kvstore.Session{ID: "new", Node: sess.Node, Behavior: sess.Behavior, TTL: sess.TTL, LockDelay: sess.LockDelay}); err != nil {
		return nil, badf("%s", strings.TrimPrefix(err.Error(), `session "new": `))
	}
	res, err := s.sessionApply(r, kvstore.SessionOpCreate, sess)
	if err != nil {
		return nil, err
	}
	return sessionCreated{ID: res.ID}, nil
}

func (s *Server) sessionDestroy(_ http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := s.sessionApply(r, kvstore.SessionOpDestroy, kvstore.Session{ID: r.PathValue("id")}); err != nil {
		return nil, err
	}
	return true, nil
}

// sessionRenew answers the renewed session in a list, or 404 when it no
// longer exists (the Go client's RenewPeriodic stops then).
func (s *Server) sessionRenew(w http.ResponseWriter, r *http.Request) (any, error) {
	reply, err := writeReply[kvstore.SessionQuery, rpc.Answer[*kvstore.Session]](s, r, rpc.MethodSessionRenew, kvstore.SessionQuery{ID: r.PathValue("id")})
	if err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	return []*kvstore.Session{reply.Value}, nil
}

// sessionInfo answers the session in a list, or an empty list when there
// is none, as Consul does.
func (s *Server) sessionInfo(w http.ResponseWriter, r *http.Request) (any, error) {
	sess, err := kvQuery[kvstore.SessionQuery, *kvstore.Session](s, w, r, rpc.MethodSessionGet, kvstore.SessionQuery{ID: r.PathValue("id")})
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return []*kvstore.Session{}, nil
	}
	return []*kvstore.Session{sess}, nil
}

func (s *Server) sessionNode(w http.ResponseWriter, r *http.Request) (any, error) {
	list, err := kvQuery[kvstore.SessionQuery, []*kvstore.Session](s, w, r, rpc.MethodSessionNodeSessions, kvstore.SessionQuery{Node: r.PathValue("node")})
	return emptyIfNil(list), err
}

func (s *Server) sessionList(w http.ResponseWriter, r *http.Request) (any, error) {
	list, err := kvQuery[kvstore.SessionQuery, []*kvstore.Session](s, w, r, rpc.MethodSessionList, kvstore.SessionQuery{})
	return emptyIfNil(list), err
}
