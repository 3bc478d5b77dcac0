package httpapi

import (
	"net/http"

	"github.com/meridian/meridian/rpc"
)

// operatorRoutes mounts the operator's tools: Raft operations, the host
// facts and the log monitor.
func (s *Server) operatorRoutes() {
	s.handle("DELETE /v1/operator/raft/peer", s.raftRemovePeer)
	s.handle("POST /v1/operator/raft/transfer-leader", s.raftTransferLeader)
	s.handle("GET /v1/agent/host", s.agentHost)
	s.handle("GET /v1/agent/monitor", s.agentMonitor)
}

// raftRemovePeer is DELETE /v1/operator/raft/peer?id=|address=.
func (s *Server) raftRemovePeer(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	req := rpc.RaftPeerRequest{ID: q.Get("id"), Address: q.Get("address")}
	if (req.ID == "") == (req.Address == "") {
		return nil, badf("name the server to remove with exactly one of ?id= or ?address=")
	}
	if _, err := write(s, r, rpc.MethodRaftRemovePeer, req); err != nil {
		return nil, err
	}
	return nil, nil
}

// transferLeaderAnswer is Consul's answer to a leadership transfer.
type transferLeaderAnswer struct{ Success bool }

// raftTransferLeader is POST /v1/operator/raft/transfer-leader[?id=].
func (s *Server) raftTransferLeader(_ http.ResponseWriter, r *http.Request) (any, error) {
	req := rpc.RaftPeerRequest{ID: r.URL.Query().Get("id")}
	if _, err := write(s, r, rpc.MethodRaftTransferLeader, req); err != nil {
		return nil, err
	}
	return transferLeaderAnswer{Success: true}, nil
}
