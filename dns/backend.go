package dns

import (
	"context"
	"errors"
	"time"

	"github.com/meridian/meridian/catalog"
)

// Backend is how the DNS server reads the catalog. The agent implements it;
// every method is called from many goroutines at once.
type Backend interface {
	// ServiceNodes answers every instance of service in dc with its node and
	// all its checks, node-level checks included, like /v1/health/service
	// with ?stale (the DNS server filters health itself). service is
	// lowercase and must be matched case-insensitively. minIndex and wait
	// make it a blocking query: minIndex 0 answers at once, otherwise it
	// returns when the index moves past minIndex or wait expires, whichever
	// is first, or when ctx is done (returning ctx.Err()). It returns the
	// answer's index. Errors wrap ErrNoSuchDatacenter or ErrUnreachable when
	// those apply.
	ServiceNodes(ctx context.Context, dc, service string, minIndex uint64, wait time.Duration) (uint64, []*catalog.CheckServiceNode, error)
	// Node answers the node called name in dc (case-insensitive), or nil
	// and no error when there is none.
	Node(ctx context.Context, dc, name string) (*catalog.Node, error)
	// KnownDatacenter reports whether dc exists. It is asked for every name
	// that carries a datacenter other than the local one, so it must be
	// cheap (a map lookup, no RPC).
	KnownDatacenter(dc string) bool
}

// Errors a Backend wraps so that the server picks the right response code.
var (
	// ErrNoSuchDatacenter means the datacenter does not exist: NXDOMAIN.
	ErrNoSuchDatacenter = errors.New("no such datacenter")
	// ErrUnreachable means the datacenter exists but cannot be reached now:
	// SERVFAIL. Any other error is answered SERVFAIL too.
	ErrUnreachable = errors.New("datacenter unreachable")
)
