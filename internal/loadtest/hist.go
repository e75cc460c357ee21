package loadtest

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Histogram records durations and answers exact percentiles: it keeps
// every recorded duration (8 bytes each; a million operations cost 8 MB)
// and sorts them when asked. It is safe for concurrent use.
type Histogram struct {
	mu sync.Mutex
	d  []time.Duration
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	h.mu.Lock()
	h.d = append(h.d, d)
	h.mu.Unlock()
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.d)
}

// Summary returns the count, mean and the exact percentiles of what was
// recorded so far. The zero Summary means nothing was recorded.
func (h *Histogram) Summary() Summary {
	h.mu.Lock()
	d := slices.Clone(h.d)
	h.mu.Unlock()
	return Summarize(d)
}

// Summary describes a set of durations.
type Summary struct {
	Count                         int
	Min, Mean, P50, P90, P99, Max time.Duration
}

// Summarize sorts d in place and describes it. Percentiles are exact, by
// the nearest-rank method: the p-th percentile is the smallest recorded
// duration that at least p percent of the durations do not exceed.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return Summary{Count: len(d), Min: d[0], Mean: sum / time.Duration(len(d)),
		P50: Percentile(d, 50), P90: Percentile(d, 90), P99: Percentile(d, 99), Max: d[len(d)-1]}
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted durations
// by the nearest-rank method, or 0 for an empty slice. p outside (0, 100]
// is clamped.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}
