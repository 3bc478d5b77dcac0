package httpapi

import (
	"net/http"
	"time"

	"github.com/meridian/meridian/rpc"
)

// replicationRoutes mounts the status of built-in KV replication.
func (s *Server) replicationRoutes() {
	s.handle("GET /v1/operator/replication", s.replicationStatus)
}

// replicationRuleJSON is one rule's status as /v1/operator/replication
// answers it: Lag as a duration string ("12ms"), times in RFC 3339.
type replicationRuleJSON struct {
	Prefix           string
	SourceDatacenter string
	Writes           string
	Running          bool
	ReplicatedIndex  uint64
	LastSuccess      time.Time
	LastError        time.Time
	LastErrorMessage string
	Lag              readableDuration
	KeysApplied      uint64
	Applies          uint64
}

// replicationStatus is GET /v1/operator/replication: every KV replication
// rule of this datacenter (or ?dc=), as its leader runs it.
func (s *Server) replicationStatus(w http.ResponseWriter, r *http.Request) (any, error) {
	list, err := query[struct{}, []rpc.KVReplicationStatus](s, w, r, rpc.MethodKVReplicationStatus, struct{}{})
	if err != nil {
		return nil, err
	}
	out := make([]replicationRuleJSON, 0, len(list))
	for _, st := range list {
		out = append(out, replicationRuleJSON{
			Prefix: st.Prefix, SourceDatacenter: st.SourceDatacenter, Writes: st.Writes, Running: st.Running,
			ReplicatedIndex: st.ReplicatedIndex, LastSuccess: st.LastSuccess, LastError: st.LastError,
			LastErrorMessage: st.LastErrorMessage, Lag: readableDuration(st.Lag),
			KeysApplied: st.KeysApplied, Applies: st.Applies,
		})
	}
	return uncached{out}, nil
}
