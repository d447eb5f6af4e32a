package loadgen

import (
	"math/bits"
	"time"
)

// Histogram records durations in microseconds in log-linear buckets (32
// per power of two, so a quantile is within about 3% of the true value).
// It is not safe for concurrent use: keep one per goroutine and Merge.
type Histogram struct {
	counts [64 * subBuckets]int64
	n      int64
}

const subBits = 5
const subBuckets = 1 << subBits

// Record adds one observation; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	h.counts[bucket(uint64(us))]++
	h.n++
}

// Count is the number of observations.
func (h *Histogram) Count() int64 { return h.n }

// Merge adds o's observations to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// Quantile returns the q-quantile (0 < q <= 1), or 0 without observations.
// The value is the upper bound of the bucket holding it.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(upper(i)) * time.Microsecond
		}
	}
	return time.Duration(upper(len(h.counts)-1)) * time.Microsecond
}

// bucket maps v to its index: values below 32 exactly, above that 32 steps
// per power of two.
func bucket(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - subBits // >= 1
	return e*subBuckets + int(v>>(e-1)) - subBuckets
}

// upper is the largest value of bucket i.
func upper(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	e := i / subBuckets
	m := uint64(i%subBuckets + subBuckets)
	return (m+1)<<(e-1) - 1
}
