package notify_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/notify"
)

// A broker's CRM checks each webhook before it trusts it: the signature
// over the raw body, and the time, so an old request cannot be replayed.
func ExampleVerifySignature() {
	const secret = "whsec_0123456789abcdef" // CASHIER_CRM_WEBHOOK_SECRET
	crm := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read", http.StatusBadRequest)
			return
		}
		if err := notify.VerifySignature(secret, r.Header.Get("OpenCashier-Signature"), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		// Take the event once per OpenCashier-Event-Id, then answer 2xx.
		w.WriteHeader(http.StatusNoContent)
	})

	body := `{"id":"evt_1","type":"deposit.status_changed"}`
	for _, sig := range []string{notify.Sign(secret, time.Now(), []byte(body)), notify.Sign("a-guess-of-the-secret", time.Now(), []byte(body))} {
		req := httptest.NewRequest(http.MethodPost, "/hooks/cashier", strings.NewReader(body))
		req.Header.Set("OpenCashier-Signature", sig)
		rec := httptest.NewRecorder()
		crm.ServeHTTP(rec, req)
		fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Body.String())))
	}
	// Output:
	// 204
	// 401 webhook signature does not match the body
}
