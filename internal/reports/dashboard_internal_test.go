package reports

import (
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	mins := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Minute)
		}
		return out
	}
	for _, c := range []struct {
		name string
		in   []time.Duration
		p    int
		want time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", mins(7), 90, 7 * time.Minute},
		{"median of ten, unsorted", mins(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), 50, 5 * time.Minute},
		{"p90 of ten", mins(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), 90, 9 * time.Minute},
		{"p90 of eleven rounds the rank up", mins(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), 90, 10 * time.Minute},
		{"median of two is the lower", mins(30, 120), 50, 30 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := percentile(c.in, c.p); got != c.want {
				t.Errorf("percentile(%v, %d) = %v, want %v", c.in, c.p, got, c.want)
			}
		})
	}
}

func TestConversionsInBasisPoints(t *testing.T) {
	f := newFunnel([]string{"a", "b", "c", "d"}, []int64{3, 2, 0, 0})
	want := []FunnelStep{
		{Name: "a", Count: 3, FromPreviousBps: 10000, FromFirstBps: 10000},
		{Name: "b", Count: 2, FromPreviousBps: 6666, FromFirstBps: 6666},
		{Name: "c", Count: 0, FromPreviousBps: 0, FromFirstBps: 0},
		{Name: "d", Count: 0, FromPreviousBps: 0, FromFirstBps: 0},
	}
	for i, s := range f.Steps {
		if s != want[i] {
			t.Errorf("step %d: %+v, want %+v", i, s, want[i])
		}
	}
	for in, want := range map[int64]string{0: "0.00 %", 5: "0.05 %", 6666: "66.66 %", 10000: "100.00 %", 12345: "123.45 %", -250: "-2.50 %"} {
		if got := FormatBps(in); got != want {
			t.Errorf("FormatBps(%d) = %q, want %q", in, got, want)
		}
	}
}
