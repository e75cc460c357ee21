package payments

import (
	"errors"
	"io"
	"net/http"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
)

// MaxWebhookBody bounds a webhook's body; larger ones are refused with 413.
const MaxWebhookBody = 1 << 20

// WebhookPattern is the route of the webhook intake.
const WebhookPattern = "POST /psp/{provider}/webhook"

// Routes registers the webhook intake, WebhookPattern, with mount: pass
// the server's Mount, or an http.ServeMux's Handle.
func (s *Service) Routes(mount func(pattern string, h http.Handler)) {
	mount(WebhookPattern, s.WebhookHandler())
}

// WebhookHandler is the intake of provider webhooks at
// /psp/{provider}/webhook. The provider's adapter verifies the signature and
// timestamp; a webhook that fails is logged and answered 401 (bad or
// missing signature) or 400 (stale timestamp, malformed body) and changes
// nothing. A verified event is applied with ApplyEvent and answered 200
// {"received":true,"outcome":"..."}, also when it is a duplicate, stale or
// for an unknown payment, so the provider stops delivering it. A failure to
// record it is answered 500 so the provider delivers it again. Errors are
// problem+json.
func (s *Service) WebhookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const op = "payments.webhook"
		name := r.PathValue("provider")
		prov, err := s.providers.Get(name)
		if err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				err = &errs.Error{Code: errs.Invalid, Op: op, Message: "webhook body is too large", Err: tooLarge}
			} else {
				err = &errs.Error{Code: errs.Invalid, Op: op, Message: "webhook body could not be read", Err: err}
			}
			httpx.WriteProblem(w, r, err)
			return
		}
		ev, err := prov.ParseWebhook(r.Header, body)
		if err != nil {
			s.log.WarnContext(r.Context(), "webhook rejected", "provider", name, "remote", httpx.ClientIP(r),
				"reason", errs.MessageOf(err), "code", errs.CodeOf(err), "bytes", len(body))
			if errs.Is(err, errs.Expired) {
				// A stale webhook is a bad request, not a gone resource.
				err = &errs.Error{Code: errs.Invalid, Op: op, Message: errs.MessageOf(err), Err: err}
			}
			if errs.Is(err, errs.Internal) {
				err = &errs.Error{Code: errs.Invalid, Op: op, Message: "webhook could not be parsed", Err: err}
			}
			httpx.WriteProblem(w, r, err)
			return
		}
		outcome, err := s.ApplyEvent(r.Context(), name, ev)
		if err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"received": true, "outcome": outcome})
	})
}
