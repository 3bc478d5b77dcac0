package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketsCoverValuesWithBoundedError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	prev := -1
	for us := uint64(0); us < 1<<16; us++ { // monotonic and contiguous over the first 65 ms
		b := bucketOf(us)
		if b != prev && b != prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d: buckets skip", us, b, prev)
		}
		prev = b
	}
	for range 10000 {
		us := rng.Uint64N(1 << 38)
		mid := bucketMid(bucketOf(us))
		// Half a bucket: 0.5 µs in the linear range, 1/(2*subBuckets) relative above it.
		limit := math.Max(0.5, float64(us)/(2*subBuckets)) + 0.5
		if math.Abs(mid-float64(us)) > limit {
			t.Fatalf("bucketMid(bucketOf(%d)) = %.1f, off by more than %.1f", us, mid, limit)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var a, b histogram
	for us := 1; us <= 10000; us++ { // 1 µs .. 10 ms, split over two histograms
		d := time.Duration(us) * time.Microsecond
		if us%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 5 * time.Millisecond},
		{0.90, 9 * time.Millisecond},
		{0.99, 9900 * time.Microsecond},
		{1, 10 * time.Millisecond},
	}
	for _, tc := range tests {
		got := a.quantile(tc.q)
		if diff := got - tc.want; diff < -20*time.Microsecond || diff > 20*time.Microsecond {
			t.Errorf("quantile(%v) = %v, want %v within 20µs", tc.q, got, tc.want)
		}
	}
	if a.total != 10000 || a.min != time.Microsecond || a.max != 10*time.Millisecond {
		t.Errorf("total, min, max = %d, %v, %v; want 10000, 1µs, 10ms", a.total, a.min, a.max)
	}
	if m := a.mean(); m != 5000500*time.Nanosecond {
		t.Errorf("mean = %v, want 5.0005ms", m)
	}
	var empty histogram
	if q := empty.quantile(0.5); q != 0 {
		t.Errorf("empty quantile = %v, want 0", q)
	}
}

func TestQuantileOfOneSlowValueIsExact(t *testing.T) {
	var h histogram
	h.record(1234567 * time.Microsecond)
	if got := h.quantile(0.99); got != 1234567*time.Microsecond {
		t.Errorf("quantile(0.99) of one value = %v, want it exactly (clamped to min/max)", got)
	}
}
