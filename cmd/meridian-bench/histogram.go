package main

import (
	"fmt"
	"io"
	"math/bits"
	"time"
)

// Layout of the latency histogram. Latencies are kept in microseconds.
// Below linearLimit every microsecond has its own bucket; above it each
// power-of-two range [2^k, 2^(k+1)) is cut into subBuckets equal buckets, so
// a bucket is at most 1/subBuckets (0.2%) of its value wide: 1 µs up to 1 ms,
// under 0.1 ms up to 50 ms. Buckets are allocated as they are reached, so a
// histogram of sub-millisecond latencies costs about 8 KB.
const (
	subBits     = 9
	subBuckets  = 1 << subBits    // buckets per power of two above linearLimit
	linearLimit = 2 * subBuckets  // µs; below this, one bucket per µs
	maxMicros   = uint64(1) << 40 // about 12.7 days; larger values are clamped
)

// histogram records latencies in bucketed form with a bounded relative error,
// plus the exact count, sum, minimum and maximum. The zero value is empty and
// ready to use. A histogram is not safe for concurrent use: each worker keeps
// its own and they are merged at the end.
type histogram struct {
	counts []uint64
	total  uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

// bucketOf returns the bucket index of a latency of us microseconds.
func bucketOf(us uint64) int {
	if us < linearLimit {
		return int(us)
	}
	if us >= maxMicros {
		us = maxMicros - 1
	}
	shift := bits.Len64(us) - (subBits + 1) // us>>shift is in [subBuckets, 2*subBuckets)
	return linearLimit + (shift-1)*subBuckets + int(us>>shift) - subBuckets
}

// bucketMid returns the middle of bucket i, in microseconds.
func bucketMid(i int) float64 {
	if i < linearLimit {
		return float64(i) + 0.5
	}
	j := i - linearLimit
	shift := j/subBuckets + 1
	low := uint64(j%subBuckets+subBuckets) << shift
	return float64(low) + float64(uint64(1)<<shift)/2
}

// record adds one latency. Negative latencies count as zero.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := bucketOf(uint64(d / time.Microsecond))
	if i >= len(h.counts) {
		grown := make([]uint64, i+1, max(i+1, 2*len(h.counts)))
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	if h.total == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.total++
	h.sum += d
}

// merge adds every latency recorded in o to h.
func (h *histogram) merge(o *histogram) {
	if o.total == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// quantile returns the latency below which a fraction q (0 < q <= 1) of the
// recorded latencies fall, as the middle of its bucket clamped to the exact
// minimum and maximum. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.9999999)
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			d := time.Duration(bucketMid(i) * float64(time.Microsecond))
			return min(max(d, h.min), h.max)
		}
	}
	return h.max
}

// mean returns the exact mean latency, or 0 for an empty histogram.
func (h *histogram) mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return h.sum / time.Duration(h.total)
}

// ms formats a duration as milliseconds with microsecond resolution.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond))
}

// output collects what a mode reports and prints it in the common format.
type output struct {
	mode   string
	stdout io.Writer
	stderr io.Writer
	errors int64 // errors of the last report, for the exit status
}

// report prints the human line (prefixed by what, e.g. "GET http://..."),
// the first error if there were any, and the RESULT line, which ends with
// the mode's own fields ("key=value") when it has any.
func (o *output) report(mode, what string, n, errs int64, elapsed time.Duration, h *histogram, firstErr error, fields ...string) {
	o.errors = errs
	rps := 0.0
	if elapsed > 0 {
		rps = float64(n) / elapsed.Seconds()
	}
	p50, p90, p99 := h.quantile(0.50), h.quantile(0.90), h.quantile(0.99)
	fmt.Fprintf(o.stdout, "%s: %d in %.2fs, %.1f/s, %d errors; latency ms min %s mean %s p50 %s p90 %s p99 %s max %s\n",
		what, n, elapsed.Seconds(), rps, errs, ms(h.min), ms(h.mean()), ms(p50), ms(p90), ms(p99), ms(h.max))
	if firstErr != nil {
		fmt.Fprintf(o.stderr, "meridian-bench %s: %d errors, first: %v\n", o.mode, errs, firstErr)
	}
	fmt.Fprintf(o.stdout, "RESULT mode=%s rps=%.1f p50_ms=%s p90_ms=%s p99_ms=%s errors=%d n=%d",
		mode, rps, ms(p50), ms(p90), ms(p99), errs, n)
	for _, f := range fields {
		fmt.Fprintf(o.stdout, " %s", f)
	}
	fmt.Fprintln(o.stdout)
}
