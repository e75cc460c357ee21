package ctradersim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencashier/cashier/internal/errs"
)

func TestParseFaultSpec(t *testing.T) {
	tests := []struct {
		spec string
		want map[string]Rule // nil: an error is expected
	}{
		{"changebalance:drop=0.05", map[string]Rule{"changebalance": {DropP: 0.05}}},
		{"changebalance:error=0.1@429/REQUEST_FREQUENCY_EXCEEDED,latency=2s@0.25",
			map[string]Rule{"changebalance": {ErrorP: 0.1, ErrorStatus: 429, ErrorCode: "REQUEST_FREQUENCY_EXCEEDED", Latency: Duration(2 * time.Second), LatencyP: 0.25}}},
		{"*:latency=300ms", map[string]Rule{"*": {Latency: Duration(300 * time.Millisecond)}}},
		{"callback:apply-timeout=0.5@30s,apply-reset=0.2,duplicate=0.3",
			map[string]Rule{"callback": {ApplyTimeoutP: 0.5, Hold: Duration(30 * time.Second), ApplyResetP: 0.2, DuplicateP: 0.3}}},
		{"token:error=1", map[string]Rule{"token": {ErrorP: 1}}},
		{"nosuch:drop=0.1", nil},
		{"changebalance", nil},
		{"changebalance:drop", nil},
		{"changebalance:drop=1.5", nil},
		{"changebalance:drop=0.6,error=0.6", nil},
		{"changebalance:error=0.1@200", nil},
		{"changebalance:latency=soon", nil},
		{"changebalance:teleport=0.1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			var c FaultConfig
			err := ParseFaultSpec(tt.spec, &c)
			if tt.want == nil {
				if !errs.Is(err, errs.Invalid) {
					t.Fatalf("ParseFaultSpec(%q) = %v, want EINVALID", tt.spec, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Endpoints); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFaultConfigJSON(t *testing.T) {
	c, err := ParseFaultConfig([]byte(`{"seed":7,"endpoints":{"changebalance":{"dropP":0.05,"latency":"2s","latencyP":0.1,"applyTimeoutP":0.01,"hold":"30s"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := FaultConfig{Seed: 7, Endpoints: map[string]Rule{"changebalance": {DropP: 0.05, Latency: Duration(2 * time.Second), LatencyP: 0.1,
		ApplyTimeoutP: 0.01, Hold: Duration(30 * time.Second)}}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"seed":1,"endpoints":{"changebalance":{"dropProbability":0.1}}}`, `{"endpoints":{"x":{}}}`, `{"endpoints":{"redeem":{"hold":"-1s"}}}`} {
		if _, err := ParseFaultConfig([]byte(bad)); !errs.Is(err, errs.Invalid) {
			t.Errorf("ParseFaultConfig(%s) = %v, want EINVALID", bad, err)
		}
	}
}

// draws runs a sequence of (endpoint, key) decisions and describes each.
func draws(in *injector, calls [][2]string) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		d := in.decide(c[0], c[1])
		out[i] = fmt.Sprintf("%s/%s:%s+%s", c[0], c[1], d.kind, d.latency)
	}
	return out
}

func TestDecisionsAreDeterministic(t *testing.T) {
	cfg := FaultConfig{Seed: 42, Endpoints: map[string]Rule{
		"*":             {ErrorP: 0.2, DropP: 0.2, ApplyTimeoutP: 0.2, ApplyResetP: 0.1, DuplicateP: 0.1, Latency: Duration(time.Second), LatencyP: 0.5},
		"changebalance": {ErrorP: 0.5, ErrorStatus: 500},
	}}
	var calls [][2]string
	for i := range 50 {
		calls = append(calls, [2]string{"changebalance", fmt.Sprint("dep_", i%7)}, [2]string{"trader.read", ""})
	}
	first := draws(newInjector(cfg), calls)
	if diff := cmp.Diff(first, draws(newInjector(cfg), calls)); diff != "" {
		t.Errorf("same seed and calls, different decisions (-first +second):\n%s", diff)
	}
	cfg.Seed = 43
	if cmp.Equal(first, draws(newInjector(cfg), calls)) {
		t.Error("seeds 42 and 43 made the same decisions")
	}

	// A keyed endpoint's decisions depend on its key's own sequence, not on
	// how calls with other keys interleave (concurrent pushes).
	cfg.Seed = 42
	a := newInjector(cfg)
	b := newInjector(cfg)
	var forward, backward []string
	for i := range 10 {
		forward = append(forward, draws(a, [][2]string{{"changebalance", fmt.Sprint("k", i)}})...)
	}
	for i := 9; i >= 0; i-- {
		backward = append([]string{draws(b, [][2]string{{"changebalance", fmt.Sprint("k", i)}})[0]}, backward...)
	}
	if diff := cmp.Diff(forward, backward); diff != "" {
		t.Errorf("keyed decisions depend on the order of other keys (-forward +backward):\n%s", diff)
	}

	kinds := map[FaultKind]int{}
	for _, s := range draws(newInjector(FaultConfig{Seed: 1, Endpoints: map[string]Rule{"token": {ErrorP: 0.25, DropP: 0.25, DuplicateP: 0.25}}}),
		func() [][2]string {
			var c [][2]string
			for range 400 {
				c = append(c, [2]string{"token", ""})
			}
			return c
		}()) {
		var kind FaultKind
		switch {
		case strings.Contains(s, ":error"):
			kind = FaultError
		case strings.Contains(s, ":drop"):
			kind = FaultDrop
		case strings.Contains(s, ":duplicate"):
			kind = FaultDuplicate
		}
		kinds[kind]++
	}
	for _, k := range []FaultKind{"", FaultError, FaultDrop, FaultDuplicate} {
		if n := kinds[k]; n < 60 || n > 140 {
			t.Errorf("kind %q drawn %d times in 400 at p=0.25", k, n)
		}
	}
}
