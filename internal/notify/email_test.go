package notify

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/web"
)

func TestEmailsAreInTheTradersLanguage(t *testing.T) {
	// An approved withdrawal of 1,234.50 USD, in each language.
	tests := []struct {
		name     string
		lang     string // Event.Lang
		display  string // the tag the amount is formatted with
		greeting string
		sentence string // part of what happened, in the language
	}{
		{"English", "en", "en", "Hello,", "has been approved"},
		{"German", "de", "de", "Guten Tag,", "wurde genehmigt"},
		{"Austrian German", "de-AT", "de-AT", "Guten Tag,", "wurde genehmigt"},
		{"Spanish", "es", "es", "Hola:", "Se ha aprobado su retiro"},
		{"Mexican Spanish", "es_MX", "es-MX", "Hola:", "Se ha aprobado su retiro"},
		{"Arabic", "ar", "ar", "مرحبًا،", "تمت الموافقة على طلب سحب"},
		{"a language without e-mails: the broker's default", "fr", "es", "Hola:", "Se ha aprobado su retiro"},
		{"no language: the broker's default", "", "es", "Hola:", "Se ha aprobado su retiro"},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		cfg := webhookConfig("")
		cfg.DefaultLang = "es"
		r := newRig(t, db, cfg)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				e := withdrawal("wd_"+strings.ReplaceAll(tc.name, " ", "_"), "awaiting_approval", "approved")
				e.Lang = tc.lang
				before := len(r.mailer.messages())
				r.fire(t, e)
				r.drain(t)
				sent := r.mailer.messages()[before:]
				if len(sent) != 1 {
					t.Fatalf("%d e-mails sent, want 1", len(sent))
				}
				m := sent[0]
				amount := money.New(123450, usd).Display(tc.display)
				if m.To != "trader@example.com" {
					t.Errorf("To = %q", m.To)
				}
				for _, want := range []string{"Acme Markets", amount} {
					if !strings.Contains(m.Subject, want) {
						t.Errorf("subject %q lacks %q", m.Subject, want)
					}
				}
				for _, want := range []string{tc.greeting, tc.sentence, amount, "12345678", "IBAN GB33 … 5555", e.ID, "Acme Markets"} {
					if !strings.Contains(m.Text, want) {
						t.Errorf("text lacks %q:\n%s", want, m.Text)
					}
				}
				if strings.Contains(m.Text, "{{") || strings.Contains(m.Text, "email.") || strings.Contains(m.Subject, "withdrawal.") {
					t.Errorf("a message id or template leaked:\n%s\n%s", m.Subject, m.Text)
				}
			})
		}
	}, Schema, jobs.Schema)
}

func TestDepositEmailShowsTheCreditAndThePayment(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, webhookConfig(""))
		converted := deposit("dep_fx", "crediting", "completed") // 100.00 EUR paid, 105.32 USD credited
		converted.Lang = "de"
		same := deposit("dep_usd", "crediting", "completed")
		same.Amount, same.Credit = money.New(5000, usd), money.New(5000, usd)
		r.fire(t, converted, same)
		r.drain(t)
		sent := r.mailer.messages()
		if len(sent) != 2 {
			t.Fatalf("%d e-mails, want 2", len(sent))
		}
		bySubject := map[string]string{}
		for _, m := range sent {
			bySubject[m.Subject] = m.Text
		}
		de := bySubject["Acme Markets: Ihre Einzahlung über 105,32\u00a0$ wurde gutgeschrieben"]
		for _, want := range []string{"Wir haben 105,32\u00a0$ Ihrem Handelskonto 12345678 gutgeschrieben.", "Betrag: 105,32\u00a0$", "Zahlung: 100,00\u00a0€", "Referenz: dep_fx"} {
			if !strings.Contains(de, want) {
				t.Errorf("German deposit e-mail lacks %q:\n%s", want, de)
			}
		}
		en, ok := bySubject["Acme Markets: your deposit of $50.00 has been credited"]
		if !ok {
			t.Fatalf("no English deposit e-mail among %q", slices.Collect(maps.Keys(bySubject)))
		}
		if strings.Contains(en, "Payment:") {
			t.Errorf("a deposit credited as paid repeats the payment:\n%s", en)
		}

		// A deposit rejected after a compliance hold is refunded as paid.
		rejected := flagged(deposit("dep_held", "paid", "rejected"), "refund_due")
		rejected.Reason = "rejected"
		r.fire(t, rejected)
		r.drain(t)
		m := r.mailer.messages()[2]
		if m.Subject != "Acme Markets: your deposit of €100.00 could not be accepted" {
			t.Errorf("rejected deposit's subject %q", m.Subject)
		}
		for _, want := range []string{"will be refunded to where it came from", "Amount: €100.00", "contact Acme Markets support"} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("rejected deposit's e-mail lacks %q:\n%s", want, m.Text)
			}
		}
		if strings.Contains(m.Text, "105.32") {
			t.Errorf("rejected deposit's e-mail shows the credit it never got:\n%s", m.Text)
		}
	}, Schema, jobs.Schema)
}

func TestRejectionEmailIsNeutralAndTheCRMGetsTheReason(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, webhookConfig("https://crm.broker.example/hooks"))
		e := withdrawal("wd_1", "awaiting_approval", "rejected")
		e.Reason = "source of funds unclear, see ticket 4411"
		e.Actor = "staff:stf_9"
		r.fire(t, e)
		email := r.deliveries(t, Filter{Channel: ChannelEmail})
		hook := r.deliveries(t, Filter{Channel: ChannelWebhook})
		if len(email) != 1 || len(hook) != 1 {
			t.Fatalf("%d e-mails and %d webhooks, want one each", len(email), len(hook))
		}
		for _, part := range []string{email[0].Subject, email[0].Body} {
			if strings.Contains(part, "ticket 4411") || strings.Contains(part, "stf_9") {
				t.Errorf("the trader's e-mail shows the operator's note or id:\n%s", part)
			}
		}
		for _, want := range []string{"was not approved", "goes back to your trading account", "contact Acme Markets support"} {
			if !strings.Contains(email[0].Body, want) {
				t.Errorf("rejection e-mail lacks %q:\n%s", want, email[0].Body)
			}
		}
		var body WebhookEvent
		if err := json.Unmarshal([]byte(hook[0].Body), &body); err != nil {
			t.Fatal(err)
		}
		if body.Data.Reason != e.Reason {
			t.Errorf("webhook reason = %q, want the event's %q", body.Data.Reason, e.Reason)
		}
	}, Schema, jobs.Schema)
}

func TestEmailIsRetriedWhenTheMailServerIsDown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, webhookConfig(""))
		r.mailer.failNext(errs.E(errs.Unavailable, "smtp", "mail server is not reachable"))
		r.fire(t, withdrawal("wd_1", "payout_sent", "completed"))
		if n := r.runDue(t); n != 1 {
			t.Fatalf("ran %d jobs, want 1", n)
		}
		d := r.deliveries(t, Filter{})[0]
		if d.State != Pending || d.Attempts != 1 || !strings.Contains(d.LastError, "not reachable") {
			t.Errorf("after a failed attempt: state %s, %d attempts, last error %q", d.State, d.Attempts, d.LastError)
		}
		if n := r.runDue(t); n != 0 {
			t.Errorf("ran %d jobs before the backoff passed", n)
		}
		r.clock.Advance(jobs.DefaultBackoffBase) // the first backoff is at most BackoffBase
		r.drain(t)
		if sent := r.mailer.messages(); len(sent) != 1 || sent[0].Subject != "Acme Markets: your withdrawal of $1,234.50 has been paid" {
			t.Errorf("sent %+v, want the paid e-mail once", sent)
		}
		d = r.delivery(t, d.ID)
		if d.State != Delivered || d.Attempts != 2 || !d.DeliveredAt.Equal(t0.Add(jobs.DefaultBackoffBase)) {
			t.Errorf("after the second attempt: state %s, %d attempts, delivered at %v", d.State, d.Attempts, d.DeliveredAt)
		}
	}, Schema, jobs.Schema)
}

func TestEmailToAnAddressTheMailerRefusesIsDeadAtOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, webhookConfig(""))
		r.mailer.failNext(errs.E(errs.Invalid, "smtp", `"trader@" is not an e-mail address`))
		r.fire(t, withdrawal("wd_1", "payout_sent", "completed"))
		r.drain(t)
		r.clock.Advance(24 * time.Hour)
		r.drain(t)
		d := r.deliveries(t, Filter{})[0]
		if d.State != Dead || d.Attempts != 1 {
			t.Errorf("state %s after %d attempts, want dead after 1", d.State, d.Attempts)
		}
		if j := r.job(t, d.JobID); j.State != jobs.Dead {
			t.Errorf("job is %s, want dead", j.State)
		}
		if n := r.mailer.sends(); n != 1 {
			t.Errorf("mailer called %d times, want 1", n)
		}
	}, Schema, jobs.Schema)
}

// TestEveryLanguageHasEveryMessage checks the message files against each
// other and against the screens: every language the screens speak has
// e-mails, and every e-mail renders in every language without a missing
// message.
func TestEveryLanguageHasEveryMessage(t *testing.T) {
	ids := func(lang string) []string {
		data, err := messageFS.ReadFile("i18n/notify." + lang + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return slices.Sorted(maps.Keys(m))
	}
	for _, lang := range web.Languages() {
		if !slices.Contains(Languages(), lang) {
			t.Errorf("the screens speak %q but the e-mails do not", lang)
		}
	}
	english := ids("en")
	for _, lang := range Languages() {
		if diff := cmp.Diff(english, ids(lang)); diff != "" {
			t.Errorf("messages of %s differ from English (-en +%s):\n%s", lang, lang, diff)
		}
	}
	svc, err := New(Deps{DB: &sqlstore.DB{}, Mailer: &fakeMailer{}, Logger: discard}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	templates := map[string]funding.Event{}
	for _, tc := range statusCases {
		if tc.email != "" {
			templates[tc.email] = tc.event
		}
	}
	for _, lang := range Languages() {
		for tmpl, e := range templates {
			e.Lang = lang
			m := svc.renderEmail(tmpl, e)
			if m.Lang != lang {
				t.Errorf("%s in %s rendered in %s", tmpl, lang, m.Lang)
			}
			for _, part := range []string{m.Subject, m.Text} {
				if strings.Contains(part, "{{") || strings.Contains(part, "<no value>") || strings.Contains(part, tmpl+".") {
					t.Errorf("%s in %s is not fully rendered:\n%s", tmpl, lang, part)
				}
			}
		}
	}
}
