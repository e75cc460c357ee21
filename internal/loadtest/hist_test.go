package loadtest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentileIsNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{7}, 99, 7},
		{"median of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p90 of 1..100", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the maximum", hundred, 100, 100 * time.Millisecond},
		{"p99 of four values is the largest", []time.Duration{1, 2, 3, 4}, 99, 4},
		{"p50 of four values is the second", []time.Duration{1, 2, 3, 4}, 50, 2},
		{"p below zero is the minimum", []time.Duration{1, 2, 3}, -5, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestHistogramSummary(t *testing.T) {
	var h Histogram
	if got := h.Summary(); got != (Summary{}) {
		t.Errorf("empty summary = %+v", got)
	}
	for _, ms := range []int{5, 1, 4, 2, 3} { // recorded out of order
		h.Record(time.Duration(ms) * time.Millisecond)
	}
	want := Summary{Count: 5, Min: time.Millisecond, Mean: 3 * time.Millisecond, P50: 3 * time.Millisecond,
		P90: 5 * time.Millisecond, P99: 5 * time.Millisecond, Max: 5 * time.Millisecond}
	if diff := cmp.Diff(want, h.Summary()); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}
