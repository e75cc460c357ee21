package sandbox

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/psp"
)

// FuzzParseWebhook signs arbitrary bodies correctly and parses them: the
// parser must not panic, must refuse what is not a sandbox event with
// errs.Invalid, and must hand back what it accepts with the body intact.
func FuzzParseWebhook(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1","type":"payment.succeeded","created":1772445600,"data":{"id":"sbp_1","object":"payment","reference":"pay_1","method":"card","status":"succeeded","amount":"10.00","currency":"USD","receivedAmount":"10.00","seq":3,"created":"2026-03-02T10:00:00Z","updated":"2026-03-02T10:00:00Z"}}`))
	f.Add([]byte(`{"id":"evt_2","data":{"object":"payout","status":"paid","amount":"1","currency":"JPY"}}`))
	f.Add([]byte(`{"id":"evt_3","data":{"object":"payment","status":"awaiting_funds","amount":"1.0001","currency":"KWD","nextAction":{"type":"instructions"},"crypto":{"address":"x"}}}`))
	f.Add([]byte(`[]`))
	clk := clock.NewFake(time.Unix(1772445600, 0))
	c, err := NewClient(ClientOptions{BaseURL: "http://127.0.0.1:1/sandbox", APIKey: "k", WebhookSecret: "s", Clock: clk})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{SignatureHeader: {psp.Sign([]byte("s"), clk.Now(), body)}}
		ev, err := c.ParseWebhook(h, body)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("ParseWebhook(%q) = %v, want EINVALID", body, err)
			}
			return
		}
		if ev.ID == "" || !bytes.Equal(ev.Raw, body) || (ev.Payment == nil) == (ev.Payout == nil) {
			t.Fatalf("accepted event %+v", ev)
		}
		if ev.Payment != nil && (ev.Payment.Amount.Currency().Code == "" || !ev.Payment.Status.Valid()) {
			t.Fatalf("accepted payment %+v", ev.Payment)
		}
	})
}
