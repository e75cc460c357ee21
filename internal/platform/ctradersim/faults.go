package ctradersim

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// The endpoints faults can be injected into. "*" in FaultConfig.Endpoints is
// the rule for every endpoint that has no rule of its own.
const (
	EndpointToken          = "token"            // POST /v2/webserv/managers/token
	EndpointTraderCreate   = "trader.create"    // POST /v2/webserv/traders
	EndpointTraderRead     = "trader.read"      // GET /v2/webserv/traders/{login}
	EndpointTraderList     = "trader.list"      // GET /v2/webserv/traders
	EndpointTraderUpdate   = "trader.update"    // PATCH /v2/webserv/traders/{login}
	EndpointChangeBalance  = "changebalance"    // POST /v2/webserv/traders/{login}/changebalance
	EndpointBalanceHistory = "balancehistory"   // GET /v2/webserv/traders/{login}/balancehistory (extension)
	EndpointCTIDCreate     = "ctid.create"      // POST /cid/oauth2/ctid/create
	EndpointCTIDLink       = "ctid.link"        // POST /cid/ctid/link
	EndpointCTIDEmail      = "ctid.changeEmail" // PUT /cid/oauth2/ctid/changeEmail
	EndpointRedeem         = "redeem"           // POST /ctid2/inAppToken/redeem
	EndpointCallback       = "callback"         // POST /ctrader/callback/balance-update
)

// Endpoints lists every endpoint name faults accept.
var Endpoints = []string{
	EndpointToken, EndpointTraderCreate, EndpointTraderRead, EndpointTraderList, EndpointTraderUpdate,
	EndpointChangeBalance, EndpointBalanceHistory, EndpointCTIDCreate, EndpointCTIDLink, EndpointCTIDEmail,
	EndpointRedeem, EndpointCallback,
}

// FaultKind names what an injected fault does to one request.
type FaultKind string

// The fault kinds. At most one of them hits a request; latency can come on
// top of any of them.
const (
	// FaultError answers with an error status and a WebServices code before
	// the request is applied.
	FaultError FaultKind = "error"
	// FaultDrop closes the connection without an answer before the request
	// is applied.
	FaultDrop FaultKind = "drop"
	// FaultApplyTimeout applies the request, then holds the answer for Hold
	// (or, with Hold 0, until the client gives up) and closes the connection
	// without answering.
	FaultApplyTimeout FaultKind = "apply-timeout"
	// FaultApplyReset applies the request, then closes the connection
	// without answering.
	FaultApplyReset FaultKind = "apply-reset"
	// FaultDuplicate applies the request, then processes the same request a
	// second time as a duplicate delivery would (its answer is discarded),
	// then sends the first answer. By the time the client reads the answer,
	// both have been applied.
	FaultDuplicate FaultKind = "duplicate"
)

// Duration is a time.Duration written in JSON as a string such as "250ms".
type Duration time.Duration

// MarshalText writes the duration as "1.5s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a duration such as "250ms" or "2s". It returns an error
// for anything time.ParseDuration rejects and for negative durations.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %s is negative", v)
	}
	*d = Duration(v)
	return nil
}

// Rule is the faults of one endpoint. Probabilities are in [0, 1]; the
// probabilities of the exclusive kinds (error, drop, apply-timeout,
// apply-reset, duplicate) add up to at most 1.
type Rule struct {
	// Latency is added before the request is handled, with probability
	// LatencyP (1 when LatencyP is 0). The wait ends early, and the request
	// is then not applied, when the client goes away.
	Latency  Duration `json:"latency,omitempty"`
	LatencyP float64  `json:"latencyP,omitempty"`

	ErrorP      float64 `json:"errorP,omitempty"`
	ErrorStatus int     `json:"errorStatus,omitempty"` // default 503
	ErrorCode   string  `json:"errorCode,omitempty"`   // default UNKNOWN_ERROR

	DropP float64 `json:"dropP,omitempty"`

	ApplyTimeoutP float64  `json:"applyTimeoutP,omitempty"`
	Hold          Duration `json:"hold,omitempty"` // 0: until the client gives up (at most 10 minutes)

	ApplyResetP float64 `json:"applyResetP,omitempty"`
	DuplicateP  float64 `json:"duplicateP,omitempty"`
}

// FaultConfig sets the injected faults. Decisions are deterministic: the
// decision for a request depends only on Seed, the endpoint, the request's
// key (the externalId of a changebalance, the transactionId of a callback,
// empty for other endpoints) and how many requests with that endpoint and key
// came before. The same seed and the same sequence of calls therefore give the
// same faults, and for keyed endpoints concurrency does not change which
// change gets which fault.
type FaultConfig struct {
	Seed      uint64          `json:"seed"`
	Endpoints map[string]Rule `json:"endpoints,omitempty"`
}

// maxHold bounds a hold of 0 ("until the client gives up").
const maxHold = 10 * time.Minute

// Validate checks the configuration. It returns an errs.Invalid error naming
// the first problem: an unknown endpoint, a probability outside [0, 1], kinds
// that add up to more than 1, or an error status outside 400..599.
func (c FaultConfig) Validate() error {
	const op = "ctradersim.FaultConfig"
	for name, r := range c.Endpoints {
		if name != "*" && !slices.Contains(Endpoints, name) {
			return errs.Ef(errs.Invalid, op, "unknown endpoint %q; endpoints are %s and *", name, strings.Join(Endpoints, ", "))
		}
		ps := []float64{r.LatencyP, r.ErrorP, r.DropP, r.ApplyTimeoutP, r.ApplyResetP, r.DuplicateP}
		for _, p := range ps {
			if p < 0 || p > 1 {
				return errs.Ef(errs.Invalid, op, "%s: probability %v is outside [0, 1]", name, p)
			}
		}
		if sum := r.ErrorP + r.DropP + r.ApplyTimeoutP + r.ApplyResetP + r.DuplicateP; sum > 1+1e-9 {
			return errs.Ef(errs.Invalid, op, "%s: error, drop, apply-timeout, apply-reset and duplicate add up to %v, more than 1", name, sum)
		}
		if r.ErrorStatus != 0 && (r.ErrorStatus < 400 || r.ErrorStatus > 599) {
			return errs.Ef(errs.Invalid, op, "%s: error status %d is not 4xx or 5xx", name, r.ErrorStatus)
		}
	}
	return nil
}

// ParseFaultSpec adds one -fault flag value to c. The form is
//
//	ENDPOINT:KIND=VALUE[,KIND=VALUE...]
//
// with the kinds
//
//	latency=DURATION[@P]        e.g. latency=2s or latency=2s@0.25
//	error=P[@STATUS[/CODE]]     e.g. error=0.1@503/UNKNOWN_ERROR, error=0.05@429/REQUEST_FREQUENCY_EXCEEDED
//	drop=P
//	apply-timeout=P[@HOLD]      e.g. apply-timeout=0.02@30s (no HOLD: until the client gives up)
//	apply-reset=P
//	duplicate=P
//
// ENDPOINT is one of Endpoints or "*". It returns an errs.Invalid error for a
// malformed spec; the result is checked with Validate.
func ParseFaultSpec(spec string, c *FaultConfig) error {
	const op = "ctradersim.ParseFaultSpec"
	name, list, ok := strings.Cut(spec, ":")
	if !ok || name == "" || list == "" {
		return errs.Ef(errs.Invalid, op, "fault %q is not ENDPOINT:KIND=VALUE[,...]", spec)
	}
	if c.Endpoints == nil {
		c.Endpoints = map[string]Rule{}
	}
	r := c.Endpoints[name]
	for item := range strings.SplitSeq(list, ",") {
		kind, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return errs.Ef(errs.Invalid, op, "fault %q: %q is not KIND=VALUE", spec, item)
		}
		first, extra, hasExtra := strings.Cut(val, "@")
		var err error
		switch kind {
		case "latency":
			var d time.Duration
			if d, err = time.ParseDuration(first); err == nil {
				r.Latency = Duration(d)
				r.LatencyP = 0
				if hasExtra {
					r.LatencyP, err = strconv.ParseFloat(extra, 64)
				}
			}
		case "error":
			if r.ErrorP, err = strconv.ParseFloat(first, 64); err == nil && hasExtra {
				status, code, _ := strings.Cut(extra, "/")
				if r.ErrorStatus, err = strconv.Atoi(status); err == nil {
					r.ErrorCode = code
				}
			}
		case "drop":
			r.DropP, err = strconv.ParseFloat(val, 64)
		case "apply-timeout":
			if r.ApplyTimeoutP, err = strconv.ParseFloat(first, 64); err == nil && hasExtra {
				var d time.Duration
				d, err = time.ParseDuration(extra)
				r.Hold = Duration(d)
			}
		case "apply-reset":
			r.ApplyResetP, err = strconv.ParseFloat(val, 64)
		case "duplicate":
			r.DuplicateP, err = strconv.ParseFloat(val, 64)
		default:
			return errs.Ef(errs.Invalid, op, "fault %q: unknown kind %q (latency, error, drop, apply-timeout, apply-reset, duplicate)", spec, kind)
		}
		if err != nil {
			return errs.Ef(errs.Invalid, op, "fault %q: %s: %v", spec, item, err)
		}
	}
	c.Endpoints[name] = r
	return c.Validate()
}

// ParseFaultConfig reads a FaultConfig from JSON (the -faults FILE format).
// It returns an errs.Invalid error for malformed JSON, unknown fields and
// anything Validate rejects.
func ParseFaultConfig(data []byte) (FaultConfig, error) {
	var c FaultConfig
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return FaultConfig{}, errs.Ef(errs.Invalid, "ctradersim.ParseFaultConfig", "fault config: %v", err)
	}
	return c, c.Validate()
}

// EndpointStats counts the requests of one endpoint and the faults injected
// into them.
type EndpointStats struct {
	Calls        uint64 `json:"calls"`
	Latency      uint64 `json:"latency"`
	Error        uint64 `json:"error"`
	Drop         uint64 `json:"drop"`
	ApplyTimeout uint64 `json:"applyTimeout"`
	ApplyReset   uint64 `json:"applyReset"`
	Duplicate    uint64 `json:"duplicate"`
}

// decision is what happens to one request.
type decision struct {
	latency time.Duration
	kind    FaultKind // "" for none
	status  int
	code    string
	hold    time.Duration
}

// injector decides faults. It is safe for concurrent use.
type injector struct {
	mu    sync.Mutex
	cfg   FaultConfig
	seen  map[string]uint64 // endpoint + key → requests so far
	stats map[string]*EndpointStats
}

func newInjector(cfg FaultConfig) *injector {
	in := &injector{}
	in.set(cfg)
	return in
}

// set replaces the configuration and restarts the decision streams and the
// counters, so a new configuration replays from its seed.
func (in *injector) set(cfg FaultConfig) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cfg = cfg
	in.seen = map[string]uint64{}
	in.stats = map[string]*EndpointStats{}
}

func (in *injector) config() FaultConfig {
	in.mu.Lock()
	defer in.mu.Unlock()
	c := FaultConfig{Seed: in.cfg.Seed, Endpoints: map[string]Rule{}}
	for k, v := range in.cfg.Endpoints {
		c.Endpoints[k] = v
	}
	return c
}

func (in *injector) snapshot() map[string]EndpointStats {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]EndpointStats, len(in.stats))
	for k, v := range in.stats {
		out[k] = *v
	}
	return out
}

// decide draws the fate of the next request to endpoint with the given key.
// Exactly two numbers are drawn per request from a PCG stream seeded with
// the configured seed and a hash of (endpoint, key, sequence number).
func (in *injector) decide(endpoint, key string) decision {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := in.stats[endpoint]
	if st == nil {
		st = &EndpointStats{}
		in.stats[endpoint] = st
	}
	st.Calls++
	r, ok := in.cfg.Endpoints[endpoint]
	if !ok {
		r, ok = in.cfg.Endpoints["*"]
	}
	if !ok {
		return decision{}
	}
	stream := endpoint + "\x00" + key
	n := in.seen[stream]
	in.seen[stream] = n + 1
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d", stream, n)
	rng := rand.New(rand.NewPCG(in.cfg.Seed, h.Sum64()))
	uLatency, uKind := rng.Float64(), rng.Float64()

	var d decision
	if p := r.LatencyP; r.Latency > 0 && (p == 0 || uLatency < p) {
		d.latency = time.Duration(r.Latency)
		st.Latency++
	}
	acc := 0.0
	for _, k := range []struct {
		p    float64
		kind FaultKind
		n    *uint64
	}{
		{r.ErrorP, FaultError, &st.Error},
		{r.DropP, FaultDrop, &st.Drop},
		{r.ApplyTimeoutP, FaultApplyTimeout, &st.ApplyTimeout},
		{r.ApplyResetP, FaultApplyReset, &st.ApplyReset},
		{r.DuplicateP, FaultDuplicate, &st.Duplicate},
	} {
		acc += k.p
		if uKind < acc {
			d.kind = k.kind
			*k.n++
			break
		}
	}
	switch d.kind {
	case FaultError:
		d.status, d.code = r.ErrorStatus, r.ErrorCode
		if d.status == 0 {
			d.status = 503
		}
		if d.code == "" {
			d.code = codeUnknown
		}
	case FaultApplyTimeout:
		d.hold = time.Duration(r.Hold)
		if d.hold == 0 {
			d.hold = maxHold
		}
	}
	return d
}
