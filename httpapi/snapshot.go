package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// Snapshotter is what an agent offers for /v1/snapshot; the agent answers
// with an error on a client agent, which has no state to save.
type Snapshotter interface {
	// SaveSnapshot opens an archive of the datacenter's state (any server's
	// view with stale, else everything committed before the call) and its
	// Raft index; the caller closes it. token is the request's (""
	// for none), which the server checks too.
	SaveSnapshot(ctx context.Context, token string, stale bool) (io.ReadCloser, uint64, error)
	// RestoreSnapshot replaces the datacenter's state with the archive's,
	// or refuses it whole; token as for SaveSnapshot.
	RestoreSnapshot(ctx context.Context, token string, archive io.Reader) error
}

func (s *Server) snapshotRoutes() {
	s.handle("GET /v1/snapshot", s.snapshotSave)
	s.handle("PUT /v1/snapshot", s.snapshotRestore)
}

func (s *Server) snapshotter() (Snapshotter, error) {
	snap, ok := s.agent.(Snapshotter)
	if !ok {
		return nil, errors.New("this agent cannot take snapshots")
	}
	return snap, nil
}

// snapshotHere refuses a ?dc= that names another datacenter: an agent
// saves and restores the snapshots of its own datacenter only (they are
// not forwarded), so the request must go to an agent of that one.
func (s *Server) snapshotHere(r *http.Request) error {
	if dc := r.URL.Query().Get("dc"); dc != "" && dc != s.agent.Datacenter() {
		return badf("snapshot of datacenter %q: this agent is in %q and snapshots are not forwarded; send it to an agent of %q", dc, s.agent.Datacenter(), dc)
	}
	return nil
}

// snapshotSave is GET /v1/snapshot[?stale]: the archive streams as the body,
// its Raft index in X-Consul-Index.
func (s *Server) snapshotSave(w http.ResponseWriter, r *http.Request) (any, error) {
	opts, err := parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	if err := s.snapshotHere(r); err != nil {
		return nil, err
	}
	snap, err := s.snapshotter()
	if err != nil {
		return nil, err
	}
	rc, index, err := snap.SaveSnapshot(r.Context(), requestToken(r), opts.AllowStale)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	w.Header().Set("X-Consul-Index", strconv.FormatUint(index, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := io.Copy(w, rc); err != nil {
		// The status is out: the client sees a cut-short archive, which
		// its checksum refuses.
		s.log.Warn("snapshot save cut short", "error", err)
	}
	return nil, errAnswered
}

// snapshotRestore is PUT /v1/snapshot with an archive as the body.
func (s *Server) snapshotRestore(_ http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.snapshotHere(r); err != nil {
		return nil, err
	}
	snap, err := s.snapshotter()
	if err != nil {
		return nil, err
	}
	if err := snap.RestoreSnapshot(r.Context(), requestToken(r), r.Body); err != nil {
		return nil, err
	}
	return nil, nil
}
