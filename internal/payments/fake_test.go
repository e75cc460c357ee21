package payments

import (
	"context"
	"net/http"
	"sync"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/psp"
)

// fakeProvider is an in-memory provider whose answers a test controls. It
// keeps one payment per id, like a real provider with idempotency keys.
type fakeProvider struct {
	name string
	caps psp.Capabilities

	mu        sync.Mutex
	payments  map[string]psp.Payment
	payouts   map[string]psp.Payout
	starts    int   // StartPayment and StartPayout calls
	startErr  error // returned (once) by the next start
	statusErr error // returned by status queries while set
	// lostAnswer makes the next start create the payment but return
	// errs.Unavailable, as when the answer is lost on the way back.
	lostAnswer bool
}

func newFakeProvider() *fakeProvider {
	return &fakeProvider{
		name: "fake",
		caps: psp.Capabilities{
			Methods:       []psp.MethodKind{psp.Card, psp.BankTransfer, psp.EWallet, psp.Crypto},
			PayoutMethods: []psp.MethodKind{psp.Card, psp.BankTransfer, psp.EWallet},
		},
		payments: map[string]psp.Payment{},
		payouts:  map[string]psp.Payout{},
	}
}

func (f *fakeProvider) Name() string                   { return f.name }
func (f *fakeProvider) Capabilities() psp.Capabilities { return f.caps }

func (f *fakeProvider) StartPayment(_ context.Context, req psp.PaymentRequest) (psp.Payment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	if err := f.startErr; err != nil {
		f.startErr = nil
		return psp.Payment{}, err
	}
	p, ok := f.payments[req.ID]
	if !ok {
		p = psp.Payment{
			ID: req.ID, ProviderRef: "fp_" + req.ID[len(req.ID)-12:], Status: psp.Pending, Amount: req.Amount,
			Next: psp.NextRedirect, RedirectURL: "https://fake.example/pay/" + req.ID, Seq: 1, Raw: []byte(`{"started":true}`),
		}
		f.payments[req.ID] = p
	}
	if f.lostAnswer {
		f.lostAnswer = false
		return psp.Payment{}, errs.E(errs.Unavailable, "fake.StartPayment", "answer lost")
	}
	return p, nil
}

func (f *fakeProvider) PaymentStatus(_ context.Context, id string) (psp.Payment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statusErr != nil {
		return psp.Payment{}, f.statusErr
	}
	p, ok := f.payments[id]
	if !ok {
		return psp.Payment{}, errs.Ef(errs.NotFound, "fake.PaymentStatus", "no payment %s", id)
	}
	p.Raw = []byte(`{"status":"` + string(p.Status) + `"}`)
	return p, nil
}

// set changes the provider's view of a payment and returns it, as a
// webhook would carry it.
func (f *fakeProvider) set(id string, change func(*psp.Payment)) psp.Payment {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.payments[id]
	change(&p)
	p.Seq++
	f.payments[id] = p
	return p
}

func (f *fakeProvider) ParseWebhook(http.Header, []byte) (psp.Event, error) {
	return psp.Event{}, errs.E(errs.Unauthorized, "fake.ParseWebhook", "the fake provider sends no webhooks")
}

func (f *fakeProvider) StartPayout(_ context.Context, req psp.PayoutRequest) (psp.Payout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	if err := f.startErr; err != nil {
		f.startErr = nil
		return psp.Payout{}, err
	}
	p, ok := f.payouts[req.ID]
	if !ok {
		p = psp.Payout{ID: req.ID, ProviderRef: "fo_" + req.ID[len(req.ID)-12:], Status: psp.Pending, Amount: req.Amount, Seq: 1}
		f.payouts[req.ID] = p
	}
	return p, nil
}

func (f *fakeProvider) PayoutStatus(_ context.Context, id string) (psp.Payout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payouts[id]
	if !ok {
		return psp.Payout{}, errs.Ef(errs.NotFound, "fake.PayoutStatus", "no payout %s", id)
	}
	return p, nil
}

func (f *fakeProvider) setPayout(id string, change func(*psp.Payout)) psp.Payout {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.payouts[id]
	change(&p)
	p.Seq++
	f.payouts[id] = p
	return p
}

func (f *fakeProvider) startCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts
}
