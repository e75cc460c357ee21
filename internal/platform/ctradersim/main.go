package ctradersim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

const usageHead = `Usage: cashier sim [flags]

Runs the cTrader simulator: the WebServices manager API (/v2/webserv/...),
the cTID endpoints (/cid/...), the handoff redeem (/ctid2/inAppToken/redeem),
seed 000's balance callback, a fake cTrader app at /app/ and an admin API at
/_sim/. It speaks JSON only (no XML). State is in memory unless -state is given.
Secrets can also come from the environment: CASHIER_SIM_CRM_PASSWORD,
CASHIER_SIM_CALLBACK_TOKEN, CASHIER_SIM_ADMIN_TOKEN.

Flags:
`

const usageFaults = `
Faults (-fault, repeatable; -faults FILE takes the same as JSON; PUT /_sim/faults at run time):

  -fault ENDPOINT:KIND=VALUE[,KIND=VALUE...]

  ENDPOINT  token, trader.create, trader.read, trader.list, trader.update,
            changebalance, balancehistory, ctid.create, ctid.link,
            ctid.changeEmail, redeem, callback, or * for every endpoint
            without its own rule.
  KIND      latency=DURATION[@P]     wait before handling (P defaults to 1); the
                                     request is not applied if the client leaves
            error=P[@STATUS[/CODE]]  answer STATUS with a WebServices CODE before
                                     applying (default 503/UNKNOWN_ERROR)
            drop=P                   close the connection before applying
            apply-timeout=P[@HOLD]   apply, hold the answer for HOLD (default:
                                     until the client gives up), then close
            apply-reset=P            apply, then close the connection unanswered
            duplicate=P              apply, process the same request again as a
                                     duplicate delivery would, then answer
  error, drop, apply-timeout, apply-reset and duplicate exclude each other;
  their probabilities add up to at most 1 per endpoint.

  Decisions are drawn from PCG(seed, hash(endpoint, key, n)): the key is the
  changebalance externalId / callback transactionId (empty elsewhere) and n
  counts earlier requests with that endpoint and key. Same -seed and same
  calls give the same faults.

Examples:
  cashier sim -seed 7 -fault 'changebalance:apply-timeout=0.05,drop=0.05,error=0.1@503/UNKNOWN_ERROR'
  cashier sim -fault 'changebalance:error=0.2@429/REQUEST_FREQUENCY_EXCEEDED' -fault '*:latency=300ms@0.5'
  cashier sim -faults faults.json   # {"seed":7,"endpoints":{"changebalance":{"dropP":0.05,"latency":"2s","latencyP":0.1}}}
`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Main runs `cashier sim` with its own flags until ctx is cancelled, then
// stops the server and, with -state, saves the state. -h prints the flags
// and the fault knobs to stdout and returns nil. It returns flag, config,
// state-file and listen errors.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cashier sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen      = fs.String("listen", "127.0.0.1:8081", "address to listen on")
		configFile  = fs.String("config", "", "JSON seed with managers, traders and users (default: the built-in demo seed)")
		stateFile   = fs.String("state", "", "load state from FILE at start if it exists, save it there on stop")
		brokerURL   = fs.String("broker-url", "", "broker CRM base URL for the fake app, e.g. http://127.0.0.1:8080")
		successURL  = fs.String("success-url", "", "success URL the broker redirects to (default: /app/success on this simulator)")
		crmPassword = fs.String("crm-password", os.Getenv("CASHIER_SIM_CRM_PASSWORD"), "password shared with the broker for /oauth2/crmApiToken")
		handoff     = fs.Bool("handoff", false, "fake app uses the one-time-token handoff instead of SSO")
		cbToken     = fs.String("callback-token", os.Getenv("CASHIER_SIM_CALLBACK_TOKEN"), "Bearer token of POST /ctrader/callback/balance-update (empty: endpoint off)")
		adminToken  = fs.String("admin-token", os.Getenv("CASHIER_SIM_ADMIN_TOKEN"), "Bearer token required by /_sim/ (empty: open)")
		noExt       = fs.Bool("no-history-extension", false, "switch off the simulator-only GET /v2/webserv/traders/{login}/balancehistory (answers 404)")
		handoffTTL  = fs.Duration("handoff-ttl", 60*time.Second, "lifetime of in-app handoff tokens")
		writeLimit  = fs.Int("write-limit", 0, "non-GET WebServices requests per manager per hour before REQUEST_FREQUENCY_EXCEEDED (0: unlimited)")
		brokerName  = fs.String("broker-name", "demo_broker", "brokerName of this plant")
		crmName     = fs.String("broker-crm-name", "demo_crm", "brokerCrmName cTID calls must carry")
		environment = fs.String("environment", "demo", "environmentName link calls must carry")
		groups      = fs.String("groups", "", "comma-separated trader groups (empty: any group name)")
		seed        = fs.Uint64("seed", 1, "seed of the fault decisions")
		faultsFile  = fs.String("faults", "", "JSON fault configuration (see below)")
		verbose     = fs.Bool("v", false, "log every injected fault")
		faultSpecs  multiFlag
	)
	fs.Var(&faultSpecs, "fault", "inject faults: ENDPOINT:KIND=VALUE[,...] (repeatable; see below)")
	usage := func(w io.Writer) {
		fmt.Fprint(w, usageHead)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
		fmt.Fprint(w, usageFaults)
	}
	fs.Usage = func() {} // Parse reports the error; the full text is for -h
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return nil
		}
		fmt.Fprintln(stderr, "Run 'cashier sim -h' for the flags.")
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cashier sim: unexpected arguments %q", fs.Args())
	}

	cfg := Config{
		Addr: *listen, Seed: DemoSeed(), BrokerName: *brokerName, BrokerCrmName: *crmName, Environment: *environment,
		DisableHistoryExtension: *noExt, HandoffTTL: *handoffTTL, CallbackToken: *cbToken, WriteLimitPerHour: *writeLimit,
		AdminToken: *adminToken,
		App:        AppConfig{BrokerURL: *brokerURL, SuccessURL: *successURL, CRMPassword: *crmPassword, Handoff: *handoff},
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *groups != "" {
		cfg.Groups = strings.Split(*groups, ",")
	}
	if *configFile != "" {
		data, err := os.ReadFile(*configFile)
		if err != nil {
			return fmt.Errorf("cashier sim: %w", err)
		}
		var seedCfg Seed
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&seedCfg); err != nil {
			return fmt.Errorf("cashier sim: -config %s: %w", *configFile, err)
		}
		cfg.Seed = seedCfg
	}
	if *faultsFile != "" {
		data, err := os.ReadFile(*faultsFile)
		if err != nil {
			return fmt.Errorf("cashier sim: %w", err)
		}
		if cfg.Faults, err = ParseFaultConfig(data); err != nil {
			return fmt.Errorf("cashier sim: -faults %s: %w", *faultsFile, err)
		}
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if seedSet || *faultsFile == "" { // an explicit -seed beats the file's seed
		cfg.Faults.Seed = *seed
	}
	for _, spec := range faultSpecs {
		if err := ParseFaultSpec(spec, &cfg.Faults); err != nil {
			return fmt.Errorf("cashier sim: -fault: %w", err)
		}
	}

	// Main stops the server itself when ctx ends, so that it can save the
	// state after the last request.
	srv, err := Start(context.Background(), cfg)
	if err != nil {
		return fmt.Errorf("cashier sim: %w", err)
	}
	if *stateFile != "" {
		if err := loadStateFile(srv.Sim(), *stateFile); err != nil {
			_ = srv.Close()
			return fmt.Errorf("cashier sim: %w", err)
		}
	}
	fmt.Fprintf(stdout, "cTrader simulator listening on %s (fake app: %s/app/, admin: %s/_sim/)\n", srv.URL(), srv.URL(), srv.URL())
	<-ctx.Done()
	err = srv.Close()
	if *stateFile != "" {
		if serr := saveStateFile(srv.Sim(), *stateFile); serr != nil {
			return fmt.Errorf("cashier sim: %w", serr)
		}
	}
	return err
}

func loadStateFile(s *Sim, path string) error {
	f, err := os.Open(path) // #nosec G304 -- the state file the operator names
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errs.Wrap("ctradersim.loadStateFile", err)
	}
	defer f.Close()
	return s.LoadState(f)
}

// saveStateFile writes the state next to path and renames it into place, so
// a crash never leaves half a file.
func saveStateFile(s *Sim, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return errs.Wrap("ctradersim.saveStateFile", err)
	}
	defer os.Remove(tmp.Name())
	if err := s.SaveState(tmp); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return errs.Wrap("ctradersim.saveStateFile", err)
	}
	return errs.Wrap("ctradersim.saveStateFile", os.Rename(tmp.Name(), path))
}
