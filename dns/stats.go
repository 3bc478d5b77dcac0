package dns

import (
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// latencyBounds are the upper bounds of Stats.LatencyBuckets, for a
// Prometheus histogram; the last bucket counts everything slower.
var latencyBounds = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	500 * time.Microsecond, time.Millisecond, 5 * time.Millisecond,
	25 * time.Millisecond, 100 * time.Millisecond, time.Second,
}

// Stats is a snapshot of a Server's counters since it was created.
type Stats struct {
	// Queries is the number of queries answered (or dropped by the handler).
	Queries uint64
	// Rcodes counts answers by response code name ("NOERROR",
	// "NXDOMAIN", ...); codes never answered are absent.
	Rcodes map[string]uint64
	// Forwarded counts queries sent to recursors.
	Forwarded uint64
	// LatencySum is the total time spent answering.
	LatencySum time.Duration
	// LatencyBounds are the inclusive upper bounds of LatencyBuckets but
	// the last, which counts the slower ones (cumulative = false).
	LatencyBounds []time.Duration
	// LatencyBuckets counts queries by latency, one more than bounds.
	LatencyBuckets []uint64
	// Views is the number of (dc, service) entries in the local view.
	Views int
}

type stats struct {
	queries   atomic.Uint64
	forwarded atomic.Uint64
	latency   atomic.Int64
	rcodes    [24]atomic.Uint64 // index 23 counts codes above 22
	buckets   [len(latencyBounds) + 1]atomic.Uint64
}

func (st *stats) record(rcode int, d time.Duration) {
	st.queries.Add(1)
	st.latency.Add(int64(d))
	if rcode < 0 || rcode >= len(st.rcodes) {
		rcode = len(st.rcodes) - 1
	}
	st.rcodes[rcode].Add(1)
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	st.buckets[i].Add(1)
}

// Stats returns a snapshot of the counters, for the agent's metrics.
func (s *Server) Stats() Stats {
	out := Stats{
		Queries:        s.stats.queries.Load(),
		Forwarded:      s.stats.forwarded.Load(),
		LatencySum:     time.Duration(s.stats.latency.Load()),
		Rcodes:         make(map[string]uint64),
		LatencyBounds:  latencyBounds[:],
		LatencyBuckets: make([]uint64, len(s.stats.buckets)),
		Views:          s.views.len(),
	}
	for i := range s.stats.rcodes {
		if n := s.stats.rcodes[i].Load(); n > 0 {
			name, ok := dns.RcodeToString[i]
			if !ok || i == len(s.stats.rcodes)-1 {
				name = "OTHER"
			}
			out.Rcodes[name] += n
		}
	}
	for i := range s.stats.buckets {
		out.LatencyBuckets[i] = s.stats.buckets[i].Load()
	}
	out.LatencyBounds = append([]time.Duration(nil), out.LatencyBounds...)
	return out
}
