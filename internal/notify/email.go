package notify

import (
	"context"
	"embed"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The e-mails' message files, one per language ("notify.<lang>.json"), in
// go-i18n's format like the screens' (internal/web).
//
//go:embed i18n/*.json
var messageFS embed.FS

var (
	bundle    = i18n.NewBundle(language.English)
	languages []string // two-letter codes with messages, sorted
)

func init() {
	entries, err := messageFS.ReadDir("i18n")
	if err != nil {
		panic("notify: message files: " + err.Error())
	}
	for _, e := range entries {
		data, err := messageFS.ReadFile(path.Join("i18n", e.Name()))
		if err != nil {
			panic("notify: message files: " + err.Error())
		}
		mf, err := bundle.ParseMessageFileBytes(data, e.Name())
		if err != nil {
			panic("notify: message file " + e.Name() + ": " + err.Error())
		}
		base, _ := mf.Tag.Base()
		languages = append(languages, base.String())
	}
	slices.Sort(languages)
}

// Languages returns the two-letter codes of the languages the e-mails are
// written in.
func Languages() []string { return slices.Clone(languages) }

// resolveLang picks the e-mail's language for a trader's language tag
// ("de", "de-AT", "pt_BR"): its base language if the e-mails are written
// in it, otherwise fallback's, otherwise English. It also returns the tag
// to format amounts with: the trader's own tag when its language was
// chosen (so "es-MX" formats money the Mexican way), else the chosen
// language.
func resolveLang(requested, fallback string) (lang, display string) {
	for _, l := range []string{requested, fallback} {
		code := strings.ToLower(strings.TrimSpace(l))
		full := strings.ReplaceAll(code, "_", "-")
		if i := strings.IndexAny(code, "-_"); i > 0 {
			code = code[:i]
		}
		if code == "" || !slices.Contains(languages, code) {
			continue
		}
		if tag, err := language.Parse(full); err == nil {
			return code, tag.String()
		}
		return code, code
	}
	return DefaultLang, DefaultLang
}

// The e-mail templates: a message "<template>.subject" and
// "<template>.text" in every language.
const (
	tmplDepositCompleted    = "deposit.completed"
	tmplDepositRejected     = "deposit.rejected"
	tmplWithdrawalApproved  = "withdrawal.approved"
	tmplWithdrawalRejected  = "withdrawal.rejected"
	tmplWithdrawalCompleted = "withdrawal.completed"
	tmplWithdrawalFailed    = "withdrawal.failed"
	tmplWithdrawalReturned  = "withdrawal.returned"
)

// emailTemplate decides whether the trader is e-mailed about a change, and
// with which template ("" for no e-mail). Traders are told what they wait
// for and cannot see on the screen they left: a deposit credited, or
// rejected by an operator after a compliance hold (to be refunded); a
// withdrawal approved (by an operator or automatically), rejected, paid,
// failed after the money left the trading account (its payout failed, so
// the money is on its way back), and returned. Steps the trader takes on
// the screen (a deposit declined or expired while paying, a withdrawal's
// code, a request the platform refused at once) and changes that keep the
// status (a flag) are not e-mailed, nor are cases an operator settles with
// the trader in person (a deposit the platform refused).
func emailTemplate(e funding.Event) string {
	if e.From == e.To {
		return ""
	}
	switch e.Kind {
	case funding.KindDeposit:
		switch e.To {
		case string(funding.DepositCompleted):
			return tmplDepositCompleted
		case string(funding.DepositRejected):
			return tmplDepositRejected
		}
	case funding.KindWithdrawal:
		switch e.To {
		case string(funding.WithdrawalApproved):
			return tmplWithdrawalApproved
		case string(funding.WithdrawalRejected):
			return tmplWithdrawalRejected
		case string(funding.WithdrawalCompleted):
			return tmplWithdrawalCompleted
		case string(funding.WithdrawalFailed):
			// Only a failed payout takes money that left the trading
			// account; it is returned. A withdrawal that failed earlier
			// (code, platform refusal) never took any.
			if e.From == string(funding.WithdrawalApproved) || e.From == string(funding.WithdrawalPayoutSent) {
				return tmplWithdrawalFailed
			}
		case string(funding.WithdrawalReturned):
			return tmplWithdrawalReturned
		}
	}
	return ""
}

// email is a rendered e-mail.
type email struct {
	Lang    string
	Subject string
	Text    string
}

// renderEmail writes the e-mail of template tmpl about e in the trader's
// language: subject, what happened, the facts (amount, trading account,
// destination, reference), a security or support line, and the brand.
// The operator's note on a rejection is not in it: like the status screen,
// the e-mail tells the trader neutrally.
func (s *Service) renderEmail(tmpl string, e funding.Event) email {
	lang, display := resolveLang(e.Lang, s.cfg.DefaultLang)
	loc := i18n.NewLocalizer(bundle, lang, DefaultLang)
	t := func(id string, data map[string]any) string {
		msg, err := loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
		if err != nil && msg == "" {
			// Every message exists in English (the tests check it); this
			// only happens if a message file is broken.
			s.log.Error("notify: message missing", "id", id, "lang", lang, "err", err)
			return id
		}
		return msg
	}

	amount := e.Amount // a rejected deposit's refund is the payment
	if tmpl == tmplDepositCompleted && !e.Credit.IsZero() {
		amount = e.Credit // what reached the trading account
	}
	login := strconv.FormatInt(e.Login, 10)
	data := map[string]any{"Brand": s.cfg.BrandName, "Amount": amount.Display(display), "Login": login}

	var facts [][2]string
	facts = append(facts, [2]string{t("email.label.amount", nil), amount.Display(display)})
	if e.Kind == funding.KindDeposit && amount != e.Amount {
		facts = append(facts, [2]string{t("email.label.payment", nil), e.Amount.Display(display)})
	}
	facts = append(facts, [2]string{t("email.label.account", nil), login})
	switch tmpl {
	case tmplWithdrawalApproved, tmplWithdrawalCompleted, tmplWithdrawalFailed:
		if e.Destination != "" {
			facts = append(facts, [2]string{t("email.label.destination", nil), e.Destination})
		}
	}
	facts = append(facts, [2]string{t("email.label.reference", nil), e.ID})

	var b strings.Builder
	b.WriteString(t("email.greeting", nil))
	b.WriteString("\n\n")
	b.WriteString(t(tmpl+".text", data))
	b.WriteString("\n\n")
	for _, f := range facts {
		fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
	}
	switch tmpl {
	case tmplWithdrawalApproved, tmplWithdrawalCompleted:
		b.WriteString("\n" + t("email.not_you", data) + "\n")
	case tmplDepositRejected, tmplWithdrawalRejected, tmplWithdrawalFailed, tmplWithdrawalReturned:
		b.WriteString("\n" + t("email.questions", data) + "\n")
	}
	b.WriteString("\n" + t("email.signoff", data) + "\n")
	b.WriteString("\n-- \n" + t("email.automatic", data) + "\n")
	return email{Lang: lang, Subject: t(tmpl+".subject", data), Text: b.String()}
}

// addEmail records the trader's e-mail about e and enqueues it.
func (s *Service) addEmail(ctx context.Context, tx *sqlstore.Tx, e funding.Event, tmpl, key string) (bool, error) {
	m := s.renderEmail(tmpl, e)
	return s.add(ctx, tx, Delivery{
		ID: deliveryID(ChannelEmail, key), Channel: ChannelEmail, Type: tmpl, Kind: e.Kind, SubjectID: e.ID, UserID: e.UserID,
		From: e.From, To: e.To, Recipient: strings.TrimSpace(e.Email), Lang: m.Lang, Subject: m.Subject, Body: m.Text,
	}, JobEmail, EmailMaxAttempts)
}

// sendEmail is the JobEmail handler: it hands the recorded e-mail to the
// mailer. An address or message the mailer refuses (errs.Invalid) kills
// the delivery at once; other failures are retried.
func (s *Service) sendEmail(ctx context.Context, j jobs.Job) error {
	d, err := s.loadForJob(ctx, j)
	if err != nil {
		return err
	}
	if d.State == Delivered {
		return nil
	}
	err = s.mailer.Send(ctx, mail.Message{To: d.Recipient, Subject: d.Subject, Text: d.Body})
	if err == nil {
		// The mail is gone: a failure to record it must not send it again.
		_ = s.recordAttempt(ctx, d, d.Recipient, 0, nil, false)
		return nil
	}
	if ctx.Err() != nil {
		return err // shutting down: the runner releases the job uncounted
	}
	permanent := errs.Is(err, errs.Invalid)
	// A failure to record is logged; the job's own state still tells.
	_ = s.recordAttempt(ctx, d, d.Recipient, 0, err, permanent || j.Attempt >= j.MaxAttempts)
	if permanent {
		return jobs.Permanent(err)
	}
	return err
}
