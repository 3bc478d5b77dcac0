package agent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/meridian/meridian/httpapi"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

var _ httpapi.Snapshotter = (*Agent)(nil)

// errNotServer answers snapshot requests made to a client agent.
var errNotServer = fmt.Errorf("%w: snapshots are saved and restored by servers: send it to a server agent's HTTP API", rpc.ErrBadRequest)

// SaveSnapshot streams an archive of the datacenter's state from this
// server (/v1/snapshot); the server checks token ("": the agent's default
// token).
func (a *Agent) SaveSnapshot(ctx context.Context, token string, stale bool) (io.ReadCloser, uint64, error) {
	if a.server == nil {
		return nil, 0, errNotServer
	}
	rc, meta, err := a.server.SaveSnapshot(ctx, a.requestToken(token), stale)
	if err != nil {
		return nil, 0, err
	}
	return rc, meta.Index, nil
}

// RestoreSnapshot restores an archive into the datacenter through this
// server, which checks token as SaveSnapshot does; an archive it refuses
// is the caller's mistake (400).
func (a *Agent) RestoreSnapshot(ctx context.Context, token string, archive io.Reader) error {
	if a.server == nil {
		return errNotServer
	}
	meta, err := a.server.RestoreSnapshot(ctx, a.requestToken(token), archive)
	if errors.Is(err, server.ErrBadArchive) {
		return fmt.Errorf("%w: %w", rpc.ErrBadRequest, err)
	}
	if err != nil {
		return err
	}
	a.logger.Info("snapshot restored", "index", meta.Index, "from", meta.Datacenter)
	return nil
}
