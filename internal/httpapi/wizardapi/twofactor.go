package wizardapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/twofactor"
)

// The second-factor enrolment routes, as Go ServeMux patterns.
const (
	RouteTwoFactor      = "GET /api/v2/my/2fa"
	RouteTwoFactorEnrol = "POST /api/v2/my/2fa"
	RouteTOTPBegin      = "POST /api/v2/my/2fa/totp"
	RouteTOTPConfirm    = "POST /api/v2/my/2fa/totp/confirm"
)

const (
	// PurposeTwoFactorChange is the purpose of the challenges that confirm
	// a change of the second factor.
	PurposeTwoFactorChange = "2fa_change"
	// TemplateTwoFactorChange names the message with the code that
	// confirms a change of the second factor.
	TemplateTwoFactorChange = "2FA_Change"
)

// TwoFactorRoutes lists the enrolment routes TwoFactorRoutes registers.
var TwoFactorRoutes = []string{RouteTwoFactor, RouteTwoFactorEnrol, RouteTOTPBegin, RouteTOTPConfirm}

// Profile is what the enrolment endpoints need to know of a user: the
// e-mail address codes go to with the e-mail method (and the account name
// authenticator apps show) and the name messages are addressed to.
type Profile struct {
	Email string
	Name  string
}

// Profiles returns a user's profile. It returns errs.NotFound for an
// unknown user.
type Profiles func(ctx context.Context, userID string) (Profile, error)

// TwoFactorRoutes registers the enrolment endpoints on mux, each answering
// with Cache-Control: no-store. It registers nothing unless
// Options.TwoFactor and Options.Profiles are set.
func (h *Handler) TwoFactorRoutes(mux *http.ServeMux) {
	if h.o.TwoFactor == nil || h.o.Profiles == nil {
		return
	}
	mux.Handle(RouteTwoFactor, httpx.NoStore(http.HandlerFunc(h.factor)))
	mux.Handle(RouteTwoFactorEnrol, httpx.NoStore(http.HandlerFunc(h.enrol)))
	mux.Handle(RouteTOTPBegin, httpx.NoStore(http.HandlerFunc(h.beginTOTP)))
	mux.Handle(RouteTOTPConfirm, httpx.NoStore(http.HandlerFunc(h.confirmTOTP)))
}

// factorAnswer is the user's second factor: method is "none" when none is
// enrolled.
type factorAnswer struct {
	Method   string `json:"method"`
	Enrolled bool   `json:"enrolled"`
}

func answerOf(e twofactor.Enrolment, ok bool) factorAnswer {
	if !ok {
		return factorAnswer{Method: "none"}
	}
	return factorAnswer{Method: string(e.Method), Enrolled: true}
}

func (h *Handler) factor(w http.ResponseWriter, r *http.Request) {
	userID, ok := h.user(w, r)
	if !ok {
		return
	}
	e, enrolled, err := h.o.TwoFactor.Enrolment(r.Context(), userID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, answerOf(e, enrolled))
}

// enrolBody is POST /api/v2/my/2fa.
type enrolBody struct {
	Method      string `json:"method"`
	Phone       string `json:"phone"`
	CurrentCode string `json:"currentCode"`
}

func (h *Handler) enrol(w http.ResponseWriter, r *http.Request) {
	const op = "wizardapi.enrol"
	userID, ok := h.user(w, r)
	if !ok {
		return
	}
	var b enrolBody
	if err := httpx.DecodeJSON(w, r, &b, httpx.DecodeOptions{MaxBytes: h.o.MaxBody}); err != nil {
		writeError(w, r, err)
		return
	}
	p, err := h.o.Profiles(r.Context(), userID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	rcp := twofactor.Recipient{Method: twofactor.Method(b.Method), Name: p.Name}
	switch rcp.Method {
	case twofactor.Email:
		if b.Phone != "" {
			writeError(w, r, errs.E(errs.Invalid, op, "phone: only with method sms"))
			return
		}
		rcp.Email = p.Email
	case twofactor.SMS:
		rcp.Phone = b.Phone
		if !validPhone(b.Phone) {
			writeError(w, r, errs.E(errs.Invalid, op, "phone: a number in international format (+ and 8 to 15 digits) is required"))
			return
		}
	case twofactor.Google:
		writeError(w, r, errs.E(errs.Invalid, op, "method: google is enrolled with POST /api/v2/my/2fa/totp and /api/v2/my/2fa/totp/confirm"))
		return
	default:
		writeError(w, r, errs.E(errs.Invalid, op, "method: must be email or sms"))
		return
	}
	if !h.currentFactor(w, r, userID, b.CurrentCode) {
		return
	}
	e, err := h.o.TwoFactor.Enrol(r.Context(), userID, rcp)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, answerOf(e, true))
}

// validPhone is twofactor's rule, checked before any code is used up.
func validPhone(p string) bool {
	if len(p) < 9 || len(p) > 16 || p[0] != '+' {
		return false
	}
	return strings.Trim(p[1:], "0123456789") == ""
}

// totpBeginBody is POST /api/v2/my/2fa/totp; the body may be empty.
type totpBeginBody struct {
	CurrentCode string `json:"currentCode"`
}

type totpSetup struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauthUrl"`
	QRPNG      string `json:"qrPng"`
}

func (h *Handler) beginTOTP(w http.ResponseWriter, r *http.Request) {
	userID, ok := h.user(w, r)
	if !ok {
		return
	}
	var b totpBeginBody
	if err := httpx.DecodeJSON(w, r, &b, httpx.DecodeOptions{MaxBytes: h.o.MaxBody, AllowEmpty: true}); err != nil {
		writeError(w, r, err)
		return
	}
	p, err := h.o.Profiles(r.Context(), userID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if !h.currentFactor(w, r, userID, b.CurrentCode) {
		return
	}
	s, err := h.o.TwoFactor.BeginTOTP(r.Context(), userID, p.Email)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, totpSetup{Secret: s.Secret, OTPAuthURL: s.URL, QRPNG: base64.StdEncoding.EncodeToString(s.QRCode)})
}

// totpConfirmBody is POST /api/v2/my/2fa/totp/confirm.
type totpConfirmBody struct {
	Code string `json:"code"`
}

func (h *Handler) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	userID, ok := h.user(w, r)
	if !ok {
		return
	}
	var b totpConfirmBody
	if err := httpx.DecodeJSON(w, r, &b, httpx.DecodeOptions{MaxBytes: h.o.MaxBody}); err != nil {
		writeError(w, r, err)
		return
	}
	if strings.TrimSpace(b.Code) == "" {
		writeError(w, r, errs.E(errs.Invalid, "wizardapi.confirmTOTP", "code: is required"))
		return
	}
	e, err := h.o.TwoFactor.ConfirmTOTP(r.Context(), userID, b.Code)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, answerOf(e, true))
}

// currentFactor enforces the rule that a user with a second factor must
// prove it to change it (or to see a new TOTP secret). It reports whether
// the request may go on; otherwise it has answered: 202 with the
// code-delivery object when no code was given (a code went out for e-mail
// and SMS), the problem of twofactor.Verify for a wrong one.
//
// Challenges are bound to purpose "2fa_change" and a ref made of the
// enrolment's last change and the current CodeTTL-long window: a change (or
// a new TOTP secret) always needs a new code, and a used-up challenge
// blocks changes until the next window.
func (h *Handler) currentFactor(w http.ResponseWriter, r *http.Request, userID, code string) bool {
	const op = "wizardapi.currentFactor"
	ctx := r.Context()
	tf := h.o.TwoFactor
	e, enrolled, err := tf.Enrolment(ctx, userID)
	if err != nil {
		writeError(w, r, err)
		return false
	}
	if !enrolled {
		return true
	}
	p, err := h.o.Profiles(ctx, userID)
	if err != nil {
		writeError(w, r, err)
		return false
	}
	ttl := tf.Config().CodeTTL
	window := h.o.clock().Now().UnixMicro() / ttl.Microseconds()
	ref := func(win int64) string { return fmt.Sprintf("%d/%d", e.UpdatedAt.UnixMicro(), win) }

	// The challenge in force: this window's, or the last window's while
	// it is pending (a code sent just before the window turned).
	c, err := tf.Challenge(ctx, userID, PurposeTwoFactorChange, ref(window))
	if errs.CodeOf(err) == errs.NotFound {
		c, err = tf.Challenge(ctx, userID, PurposeTwoFactorChange, ref(window-1))
		if err == nil && c.State != twofactor.StatePending {
			err = errs.E(errs.NotFound, op, "no pending challenge")
		}
	}
	switch {
	case errs.CodeOf(err) == errs.NotFound:
		c, err = tf.Start(ctx, twofactor.ChallengeRequest{UserID: userID, Purpose: PurposeTwoFactorChange, Ref: ref(window),
			Template: TemplateTwoFactorChange})
		if err != nil {
			writeError(w, r, err)
			return false
		}
		if code == "" || c.Recipient.Method != twofactor.Google {
			// A code went out now: the one given (if any) cannot be it.
			writeDelivery(w, c, p.Name)
			return false
		}
	case err != nil:
		writeError(w, r, err)
		return false
	case c.State == twofactor.StateExhausted:
		writeError(w, r, errs.E(errs.RateLimited, op, "too many wrong codes; try again later"))
		return false
	case c.State != twofactor.StatePending:
		writeError(w, r, errs.Ef(errs.Conflict, op, "the code was already %s; ask for a new one later", c.State))
		return false
	case code == "":
		if c.Recipient.Method != twofactor.Google && !c.Sent {
			// The last delivery failed: try again (no cool-down applies).
			if again, err := tf.Resend(ctx, userID, PurposeTwoFactorChange, c.Ref, TemplateTwoFactorChange); err == nil {
				c = again
			}
		}
		c.Template = TemplateTwoFactorChange
		writeDelivery(w, c, p.Name)
		return false
	}
	if _, err := tf.Verify(ctx, userID, PurposeTwoFactorChange, c.Ref, code); err != nil {
		writeError(w, r, err)
		return false
	}
	return true
}

func writeDelivery(w http.ResponseWriter, c twofactor.Challenge, name string) {
	d := deliveryOf(c)
	if d.Recipient.Name == "" {
		d.Recipient.Name = name
	}
	httpx.WriteJSON(w, http.StatusAccepted, d)
}
