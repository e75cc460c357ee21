package funding

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// PaymentObserver is the payments.Observer that cmd/cashier gives the
// payments service, which is built before funding: it forwards to the
// funding service it is bound to (Deps.Observer binds it in New). Until
// then it refuses changes with errs.Unavailable, so they are retried.
type PaymentObserver struct {
	svc atomic.Pointer[Service]
}

var _ payments.Observer = (*PaymentObserver)(nil)

// Bind makes o forward to s.
func (o *PaymentObserver) Bind(s *Service) { o.svc.Store(s) }

// PaymentChanged implements payments.Observer. It returns errs.Unavailable
// before Bind, and the errors of Service.PaymentChanged.
func (o *PaymentObserver) PaymentChanged(ctx context.Context, tx *sqlstore.Tx, c payments.Change) error {
	s := o.svc.Load()
	if s == nil {
		return errs.E(errs.Unavailable, "funding.PaymentObserver", "funding is not running yet")
	}
	return s.PaymentChanged(ctx, tx, c)
}

// PaymentChanged implements payments.Observer: it moves the deposit or
// withdrawal whose payment changed, with its bookings, inside the
// transaction that records the payment's new status. A payment that belongs
// to neither is ignored. An error rolls the payment's change back (the
// provider's webhook or the poll is retried).
func (s *Service) PaymentChanged(ctx context.Context, tx *sqlstore.Tx, c payments.Change) error {
	p := c.Payment
	if p.Direction == payments.Deposit {
		d, err := loadDeposit(ctx, tx, true, "payment_id = ?", p.ID)
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.depositPaymentChanged(ctx, tx, d, p)
	}
	w, err := loadWithdrawal(ctx, tx, true, "payment_id = ?", p.ID)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.withdrawalPaymentChanged(ctx, tx, w, p)
}

// The job kinds funding enqueues; RegisterJobs handles them.
const (
	JobDepositExpiry = "funding.deposit_expiry" // a deposit's payment did not come in time
	JobPayout        = "funding.payout"         // send an approved withdrawal's payout
	JobCodeExpiry    = "funding.code_expiry"    // a withdrawal's code expired unused
)

type idPayload struct {
	ID string `json:"id"`
}

// JobHandlers returns funding's job handlers by kind, for cmd/cashier's
// runner. The push and payments services bring their own.
func (s *Service) JobHandlers() map[string]jobs.Handler {
	handle := func(fn func(ctx context.Context, id string) error) jobs.Handler {
		return func(ctx context.Context, j jobs.Job) error {
			var pl idPayload
			if err := json.Unmarshal(j.Payload, &pl); err != nil || pl.ID == "" {
				return jobs.Permanent(fmt.Errorf("%s: malformed payload %s", j.Kind, j.Payload))
			}
			return fn(ctx, pl.ID)
		}
	}
	return map[string]jobs.Handler{
		JobDepositExpiry: handle(s.expireDeposit),
		JobPayout:        handle(s.sendPayout),
		JobCodeExpiry:    handle(s.expireCode),
	}
}

// RegisterJobs registers JobHandlers with a runner.
func (s *Service) RegisterJobs(r *jobs.Runner) {
	for kind, h := range s.JobHandlers() {
		r.Handle(kind, h)
	}
}

// newCode returns a six-digit code from crypto/rand.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", errs.Wrap("funding.newCode", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// hashCode is how a code is stored: SHA-256 of the withdrawal id and the
// code, so the same code of two withdrawals looks different. (Six digits
// are guessable offline from a stolen hash; the code lives minutes and the
// attempts are counted here, so the hash only keeps it out of plain sight.)
func hashCode(withdrawalID, code string) string {
	sum := sha256.Sum256([]byte(withdrawalID + ":" + code))
	return hex.EncodeToString(sum[:])
}

func codeMatches(withdrawalID, code, stored string) bool {
	if stored == "" || len(code) != 6 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hashCode(withdrawalID, code)), []byte(stored)) == 1
}

func codeMessage(w Withdrawal, code string, ttl time.Duration) mail.Message {
	return mail.Message{
		To:      w.customer.Email,
		Subject: "Your withdrawal confirmation code",
		Text: fmt.Sprintf("Your code to confirm the withdrawal of %s from trading account %s to %s is:\n\n    %s\n\n"+
			"It is valid for %d minutes. If you did not ask for this withdrawal, do not share the code and contact support.\n",
			w.Amount, strconv.FormatInt(w.Login, 10), w.Destination, code, int(ttl.Minutes())),
	}
}
