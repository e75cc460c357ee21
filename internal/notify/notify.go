// Package notify tells people outside the cashier what happened to a
// deposit or a withdrawal: the trader by e-mail, in their language, when
// something they wait for happens (deposit credited or rejected after a
// review; withdrawal approved, rejected, paid, failed, returned), and the
// broker's own CRM by a signed webhook for every status change.
//
// OnFundingEvent is a funding.Hook. Inside the transaction of the status
// change it writes one row per notification to notify_deliveries (the
// e-mail's subject and text, or the webhook's JSON body, exactly as they
// will be sent) and enqueues a job that sends it, so a notification exists
// exactly when the change commits. Delivery ids are derived from the event
// (deposit or withdrawal id and status), so a repeated hook call adds
// nothing. The jobs (kinds JobEmail and JobWebhook, see JobHandlers) send
// what the row holds: a webhook's body is byte-identical on every attempt,
// signed afresh with the time of the attempt (see Sign and VerifySignature).
//
// Webhooks are retried on every answer but a 2xx, on timeouts and on
// connection errors, with growing delays (30 s doubling to 6 h, up to 20 %
// later, or later when the CRM sends Retry-After), for Config.MaxAttempts
// attempts (default 25, about four days); then the delivery is dead. E-mails
// get jobs.DefaultMaxAttempts attempts with the runner's backoff; an address
// the mailer refuses kills the delivery at once. Deliveries lists them for
// operators; Redeliver gives a dead one a fresh set of attempts.
// docs/notifications.md describes it all for brokers and operators.
package notify

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the notify part of the database: the notify_deliveries table
// (versions 00640–00649). It needs the jobs schema beside it.
var Schema = sqlstore.Schema{Name: "notify", FS: mustSub(migrations, "migrations")}

func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic("notify: embedded migrations: " + err.Error())
	}
	return sub
}

// The job kinds notify enqueues; JobHandlers handles them.
const (
	JobEmail   = "notify.email"       // send one trader e-mail
	JobWebhook = "notify.crm_webhook" // POST one event to the broker's CRM
)

// Defaults of Config.
const (
	DefaultBrandName      = "OpenCashier"
	DefaultLang           = "en"
	DefaultMaxAttempts    = 25 // webhook attempts: about four days of retries
	DefaultWebhookTimeout = 10 * time.Second
	// MinSecretLen is the shortest CRM webhook secret New accepts.
	MinSecretLen = 16
	// EmailMaxAttempts is how many attempts an e-mail gets.
	EmailMaxAttempts = jobs.DefaultMaxAttempts
)

// Deps are the services notify uses.
type Deps struct {
	DB     *sqlstore.DB
	Clock  clock.Clock // default clock.System
	Mailer mail.Mailer
	// Notify wakes the local job runner after a commit that enqueued
	// notifications (jobs.Runner.Notify); nil: the runner finds them at its
	// next poll.
	Notify func()
	Logger *slog.Logger   // default slog.Default()
	Audit  audit.Recorder // records Redeliver; default audit.Discard
	// HTTPClient posts the webhooks; default a client with
	// Config.WebhookTimeout. Redirects are never followed: a 3xx answer is
	// a failed attempt.
	HTTPClient *http.Client
}

// Config is what a broker sets.
type Config struct {
	// CRMWebhookURL receives a POST for every status change
	// (CASHIER_CRM_WEBHOOK_URL); empty sends no webhooks. http or https.
	CRMWebhookURL string
	// CRMWebhookSecret signs the webhooks (CASHIER_CRM_WEBHOOK_SECRET), at
	// least MinSecretLen characters; required with a URL.
	CRMWebhookSecret string
	// BrandName signs the e-mails (default DefaultBrandName).
	BrandName string
	// DefaultLang is the e-mail language for a trader whose language has no
	// messages (default "en").
	DefaultLang string
	// MaxAttempts bounds a webhook's attempts (default DefaultMaxAttempts).
	MaxAttempts int
	// WebhookTimeout bounds one webhook attempt (default
	// DefaultWebhookTimeout).
	WebhookTimeout time.Duration
}

// Service turns funding events into e-mails and webhooks and sends them.
type Service struct {
	db     *sqlstore.DB
	clock  clock.Clock
	mailer mail.Mailer
	notify func()
	log    *slog.Logger
	audit  audit.Recorder
	http   *http.Client
	cfg    Config
	// hookURL is the parsed webhook URL (nil: webhooks off); shownURL is
	// it without credentials, for the deliveries log.
	hookURL  *url.URL
	shownURL string
}

// New returns the service. It returns errs.Invalid for a missing database
// or mailer, a webhook URL that is not an absolute http(s) URL, a URL
// without a secret or with one shorter than MinSecretLen, and a negative
// MaxAttempts or WebhookTimeout.
func New(d Deps, c Config) (*Service, error) {
	const op = "notify.New"
	switch {
	case d.DB == nil:
		return nil, errs.E(errs.Invalid, op, "a database is required")
	case d.Mailer == nil:
		return nil, errs.E(errs.Invalid, op, "a mailer is required")
	case c.MaxAttempts < 0:
		return nil, errs.E(errs.Invalid, op, "the webhook's max attempts must not be negative")
	case c.WebhookTimeout < 0:
		return nil, errs.E(errs.Invalid, op, "the webhook timeout must not be negative")
	}
	s := &Service{db: d.DB, clock: d.Clock, mailer: d.Mailer, notify: d.Notify, log: d.Logger, audit: d.Audit, cfg: c}
	if s.clock == nil {
		s.clock = clock.System{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.audit == nil {
		s.audit = audit.Discard
	}
	s.cfg.BrandName = strings.TrimSpace(c.BrandName)
	if s.cfg.BrandName == "" {
		s.cfg.BrandName = DefaultBrandName
	}
	s.cfg.DefaultLang, _ = resolveLang(c.DefaultLang, DefaultLang)
	if s.cfg.MaxAttempts == 0 {
		s.cfg.MaxAttempts = DefaultMaxAttempts
	}
	if s.cfg.WebhookTimeout == 0 {
		s.cfg.WebhookTimeout = DefaultWebhookTimeout
	}
	if raw := strings.TrimSpace(c.CRMWebhookURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errs.Ef(errs.Invalid, op, "the CRM webhook URL %q is not an absolute http(s) URL", redact(raw))
		}
		if len(c.CRMWebhookSecret) < MinSecretLen {
			return nil, errs.Ef(errs.Invalid, op, "the CRM webhook secret must have at least %d characters", MinSecretLen)
		}
		s.hookURL, s.shownURL = u, u.Redacted()
	}
	client := &http.Client{Timeout: s.cfg.WebhookTimeout}
	if d.HTTPClient != nil {
		clone := *d.HTTPClient
		client = &clone
		if client.Timeout == 0 {
			client.Timeout = s.cfg.WebhookTimeout
		}
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.http = client
	return s, nil
}

// redact hides the password of a URL that may not parse.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// webhooks reports whether CRM webhooks are on.
func (s *Service) webhooks() bool { return s.hookURL != nil }

// Hook returns OnFundingEvent as a funding.Hook, for funding.Deps.Hooks.
func (s *Service) Hook() funding.Hook { return s.OnFundingEvent }

// OnFundingEvent is a funding.Hook. Inside the caller's transaction it
// records and enqueues the trader's e-mail when the change is one the
// trader is told about (see emailTemplate; only with an e-mail address),
// and the CRM webhook when a webhook URL is configured. An event already
// recorded (the same deposit or withdrawal and status) adds nothing. It
// returns errs.Invalid for an event without an id or status or of an
// unknown kind, and a wrapped database error otherwise; either rolls the
// status change back.
func (s *Service) OnFundingEvent(ctx context.Context, tx *sqlstore.Tx, e funding.Event) error {
	const op = "notify.OnFundingEvent"
	if (e.Kind != funding.KindDeposit && e.Kind != funding.KindWithdrawal) || e.ID == "" || e.To == "" {
		return errs.Ef(errs.Invalid, op, "event %q of kind %q to status %q is not a deposit's or a withdrawal's status change", e.ID, e.Kind, e.To)
	}
	key := eventKey(e)
	if e.At.IsZero() {
		e.At = s.clock.Now()
	}
	var added bool
	if tmpl := emailTemplate(e); tmpl != "" {
		if strings.TrimSpace(e.Email) == "" {
			s.log.Info("notify: no e-mail address; the trader is not e-mailed", "id", e.ID, "status", e.To, "user", e.UserID)
		} else {
			ok, err := s.addEmail(ctx, tx, e, tmpl, key)
			if err != nil {
				return errs.Wrap(op, err)
			}
			added = added || ok
		}
	}
	if s.webhooks() {
		ok, err := s.addWebhook(ctx, tx, e, key)
		if err != nil {
			return errs.Wrap(op, err)
		}
		added = added || ok
	}
	if added && s.notify != nil {
		tx.AfterCommit(s.notify)
	}
	return nil
}

// JobHandlers returns notify's job handlers by kind, for cmd/cashier's
// runner.
func (s *Service) JobHandlers() map[string]jobs.Handler {
	return map[string]jobs.Handler{
		JobEmail:   s.sendEmail,
		JobWebhook: s.sendWebhook,
	}
}

// RegisterJobs registers JobHandlers with a runner.
func (s *Service) RegisterJobs(r *jobs.Runner) {
	for kind, h := range s.JobHandlers() {
		r.Handle(kind, h)
	}
}
