package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"maps"

	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpapi/adminapi"
	"github.com/opencashier/cashier/internal/httpapi/kycapi"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/notify"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/reconcile"
	"github.com/opencashier/cashier/internal/reports"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/web/backoffice"
)

// The back office's parts that funding consults and tells are built before
// funding: compliance (KYC gating, limits and fraud rules: the Screener,
// and a hook that keeps the rules' activity) and notify (trader e-mails and
// CRM webhooks). Both, and the audit trail, see every status change in its
// transaction.

// buildFundingHooks builds compliance and notify and returns the hooks and
// the screener funding takes. It returns an errs.Invalid error for settings
// they refuse.
func buildFundingHooks(w wiring, a *app, catalog *payments.Catalog, mailer mail.Mailer) ([]funding.Hook, funding.Screener, error) {
	cfg := w.cfg
	comp, err := compliance.New(w.db, compliance.Options{Clock: w.clock, Audit: a.audit, Methods: catalog,
		DefaultKYCLevel: cfg.Screens.DefaultKYCLevel, DefaultCountry: cfg.Screens.DefaultCountry,
		VerifiedLevel: cfg.BackOffice.KYCVerifiedLevel, UnverifiedDepositAllowance: cfg.BackOffice.KYCUnverifiedAllowance,
		WithdrawalKYCLevel: cfg.BackOffice.KYCWithdrawalLevel})
	if err != nil {
		return nil, nil, err
	}
	a.compliance = comp
	kyc, err := kycapi.New(comp, kycapi.Options{APIKey: cfg.BackOffice.KYCAPIKey, Users: a.identity, Logger: w.log})
	if err != nil {
		return nil, nil, err
	}
	a.mount("/api/kyc/v1/", kyc)
	if cfg.BackOffice.KYCAPIKey == "" {
		a.off["kyc api"] = "CASHIER_KYC_API_KEY is not set: the broker's KYC system cannot set levels (staff can, in the back office)"
	}

	note, err := notify.New(notify.Deps{DB: w.db, Clock: w.clock, Mailer: mailer, Notify: a.notify.Notify, Logger: w.log, Audit: a.audit},
		notify.Config{CRMWebhookURL: cfg.BackOffice.CRMWebhookURL, CRMWebhookSecret: cfg.BackOffice.CRMWebhookSecret,
			BrandName: cfg.Screens.BrandName, DefaultLang: cfg.Identity.DefaultLanguage})
	if err != nil {
		return nil, nil, err
	}
	a.notifications = note
	maps.Copy(a.jobs, note.JobHandlers())
	if cfg.BackOffice.CRMWebhookURL == "" {
		a.off["crm webhooks"] = "CASHIER_CRM_WEBHOOK_URL is not set: the broker's CRM is not told of status changes"
	}
	hooks := []funding.Hook{fundingTrail(a.audit), comp.OnFundingEvent, withCustomer(a.identity, note.Hook())}
	return hooks, comp, nil
}

// buildReconcile builds the reconciliation of the ledger against the
// platform and the provider and, with CASHIER_RECONCILE_EVERY, schedules its
// first run (each run enqueues the next).
func buildReconcile(ctx context.Context, w wiring, a *app) error {
	d := reconcile.Deps{DB: w.db, Clock: w.clock, Ledger: ledger.New(w.db, w.clock), Pushes: a.push, Platform: a.connector,
		Payments: a.payments, Providers: []psp.Provider{a.provider}, Audit: a.audit, Logger: w.log}
	if a.ctrader != nil {
		d.History = reconcileHistory(a.ctrader)
	}
	rec, err := reconcile.New(d, reconcile.Config{Interval: w.cfg.BackOffice.ReconcileEvery})
	if err != nil {
		return err
	}
	a.reconcile = rec
	maps.Copy(a.jobs, rec.JobHandlers())
	if w.cfg.BackOffice.ReconcileEvery == 0 {
		a.off["scheduled reconciliation"] = "CASHIER_RECONCILE_EVERY is 0: reconciliation runs only on demand (cashier reconcile, the back office)"
		return nil
	}
	if _, err := rec.Schedule(ctx); err != nil {
		return errs.Wrap("cashier: schedule reconciliation", err)
	}
	return nil
}

// buildBackOffice mounts the back-office screens under /backoffice/ and the
// admin JSON API under /api/admin/v1/, over the services that are on: the
// queues need funding, the rest needs only the database.
func buildBackOffice(w wiring, a *app) error {
	d := backoffice.Deps{Staff: staffPort(a.staff), Renderer: a.renderer, Users: a.identity, Audit: auditPort(a.audit)}
	if a.funding != nil {
		d.Funding = backoffice.FundingOf(a.funding)
	}
	if a.push != nil {
		d.Pushes = a.push
	}
	if a.payments != nil {
		d.Payments = a.payments
	}
	if a.compliance != nil {
		d.Compliance = compliancePort(a.compliance)
	}
	if a.reconcile != nil {
		d.Reconcile = reconcilePort(a.reconcile)
	}
	rep, err := reports.New(w.db)
	if err != nil {
		return err
	}
	d.Reports = reportsPort(rep)
	screens, err := backoffice.New(d, backoffice.Options{Key: derivedKey(w.cfg.Screens.SessionKey, "backoffice login forms"),
		HSTS: w.cfg.HSTS, Clock: w.clock, Logger: w.log})
	if err != nil {
		return err
	}
	a.mount("/backoffice/", screens)
	api, err := adminapi.New(d, adminapi.Options{Clock: w.clock, Logger: w.log})
	if err != nil {
		return err
	}
	a.mount(adminapi.Prefix+"/", api)
	return nil
}

// derivedKey derives a 32-byte key for one purpose from the configured
// session key (HMAC-SHA256), so every replica derives the same; without a
// configured key it returns nil (a random key per process).
func derivedKey(key []byte, purpose string) []byte {
	if len(key) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// withCustomer fills an event's e-mail address and language from the user's
// record when funding does not know them (a bank-rail credit), so the trader
// is written to in their language.
func withCustomer(ids *identity.Service, next funding.Hook) funding.Hook {
	return func(ctx context.Context, tx *sqlstore.Tx, e funding.Event) error {
		if e.Email == "" || e.Lang == "" {
			u, err := ids.UserByID(ctx, e.UserID)
			switch {
			case errs.Is(err, errs.NotFound):
			case err != nil:
				return errs.Wrap("cashier: notification recipient", err)
			default:
				if e.Email == "" {
					e.Email = u.Email
				}
				if e.Lang == "" {
					e.Lang = u.Language
				}
			}
		}
		return next(ctx, tx, e)
	}
}
