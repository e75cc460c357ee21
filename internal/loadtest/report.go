package loadtest

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// ms renders a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// WriteResult prints a run's result: per scenario the successes,
// failures, throughput and latency percentiles (in milliseconds, of
// successful operations), then the errors by kind.
func WriteResult(w io.Writer, r Result) {
	names := make([]string, 0, len(r.Scenarios))
	for n := range r.Scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tok\tfailed\tper s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tmean ms\t\n")
	for _, n := range names {
		s := r.Scenarios[n]
		rate := 0.0
		if r.Elapsed > 0 {
			rate = float64(s.OK) / r.Elapsed.Seconds()
		}
		l := s.Latency
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", n, s.OK, s.Failed, rate, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), ms(l.Mean))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "throughput: %.1f successful operations/s (%d ok, %d failed in %.1f s)\n", r.Throughput(), r.OK(), r.Failed(), r.Elapsed.Seconds())
	if r.MaxLag > 0 {
		fmt.Fprintf(w, "schedule: the longest wait for a free slot was %s ms (latencies count from the scheduled start)\n", ms(r.MaxLag))
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "errors by kind:\n")
		for _, k := range r.ErrorKinds() {
			fmt.Fprintf(w, "  %6d  %s\n", r.Errors[k], k)
		}
	}
}

// MiB renders bytes in mebibytes.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// WriteSteps prints the latency of each step's HTTP exchanges (status
// polls included), in milliseconds.
func WriteSteps(w io.Writer, steps map[string]Summary) {
	names := make([]string, 0, len(steps))
	for n := range steps {
		names = append(names, n)
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "step (one exchange)\tcount\tp50 ms\tp90 ms\tp99 ms\tmax ms\t\n")
	for _, n := range names {
		l := steps[n]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", n, l.Count, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
	}
	_ = tw.Flush()
}
