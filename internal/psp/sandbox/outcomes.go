package sandbox

import (
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
)

// Each outcome checks that the object is in a state it applies to and
// returns an errs.Conflict error otherwise, so buttons pressed twice and
// timers that fire late change nothing.

func conflict(c *change, what string) error {
	return errs.Ef(errs.Conflict, "sandbox", "cannot %s a %s %s that is %s", what, c.obj.Method, c.obj.Object, c.obj.Status)
}

var declineMessages = map[string]string{
	psp.DeclineInsufficientFunds:    "Insufficient funds.",
	psp.DeclineDoNotHonour:          "Do not honour.",
	psp.DeclineExpiredCard:          "Expired card.",
	psp.DeclineProviderError:        "Processing error.",
	psp.DeclineAuthenticationFailed: "3-D Secure authentication failed.",
	psp.DeclineCancelled:            "Cancelled by the customer.",
	psp.DeclineAccountClosed:        "The receiving account is closed.",
}

// succeedCard authorises and captures a card payment (two events) and
// mints a token for payouts to the card.
func (s *Server) succeedCard(c *change, card TestCard) error {
	token, err := newID("ctok_")
	if err != nil {
		return err
	}
	c.obj.CardToken = token
	c.cards = append(c.cards, savedCard{Token: token, Brand: c.obj.CardBrand, Last4: c.obj.CardLast4, Payout: card.Payout})
	c.to(StatusAuthorised)
	c.obj.Received = c.obj.Amount
	c.to(StatusSucceeded)
	return nil
}

// cardOf finds the test card a payment was made with from what the
// sandbox keeps: its behaviour and last four digits.
func cardOf(o object) TestCard {
	for _, card := range TestCards {
		if string(card.Behaviour) == o.Scenario && strings.HasSuffix(card.Number, o.CardLast4) {
			return card
		}
	}
	return TestCard{Payout: PayoutPaid}
}

// succeedWallet approves an e-wallet payment.
func (s *Server) succeedWallet(c *change) {
	c.to(StatusAuthorised)
	c.obj.Received = c.obj.Amount
	c.to(StatusSucceeded)
}

func (s *Server) decline(c *change, code string) {
	c.obj.DeclineCode, c.obj.Message = code, declineMessages[code]
	if code == psp.DeclineProviderError {
		c.to(StatusFailed)
		return
	}
	c.to(StatusDeclined)
}

// cardSubmitted applies a test card to a payment waiting on its hosted
// page.
func (s *Server) cardSubmitted(c *change, card TestCard) error {
	if c.obj.Method != psp.Card || c.obj.Status != StatusRequiresAction {
		return conflict(c, "pay by card")
	}
	c.obj.CardBrand, c.obj.CardLast4, c.obj.CardCountry = card.Brand, card.Number[len(card.Number)-4:], card.Country
	c.obj.Scenario = string(card.Behaviour)
	switch card.Behaviour {
	case CardSucceeds:
		return s.succeedCard(c, card)
	case CardThreeDS:
		// Waits on the one-time-code page; no event until it is answered.
		return nil
	case CardDelayed:
		c.to(StatusProcessing)
		c.after(s.opts.DelayedOutcome, timerComplete)
		return nil
	default:
		s.decline(c, card.Behaviour.DeclineFor())
		return nil
	}
}

// threeDSAnswered applies a one-time code (or a cancellation).
func (s *Server) threeDSAnswered(c *change, code string, cancel bool) error {
	if c.obj.Status != StatusRequiresAction || c.obj.Scenario != string(CardThreeDS) || c.obj.CardLast4 == "" {
		return conflict(c, "authenticate")
	}
	switch {
	case cancel:
		s.decline(c, psp.DeclineAuthenticationFailed)
	case code == ThreeDSCode:
		return s.succeedCard(c, cardOf(c.obj))
	default:
		c.obj.OTPAttempts++
		if c.obj.OTPAttempts >= MaxOTPAttempts {
			s.decline(c, psp.DeclineAuthenticationFailed)
		}
	}
	return nil
}

// walletAnswered applies the customer's approval or cancellation.
func (s *Server) walletAnswered(c *change, approve bool) error {
	if c.obj.Method != psp.EWallet || c.obj.Status != StatusRequiresAction {
		return conflict(c, "answer")
	}
	if approve {
		s.succeedWallet(c)
	} else {
		s.decline(c, psp.DeclineCancelled)
	}
	return nil
}

// arrive records money arriving for a bank transfer (final at once) or a
// crypto transaction (processing until confirmed).
func (s *Server) arrive(c *change, amount money.Amount) error {
	if c.obj.Status != StatusAwaitingFunds {
		return conflict(c, "receive money for")
	}
	if amount.Sign() <= 0 || amount.Currency() != c.obj.Amount.Currency() {
		return errs.Ef(errs.Invalid, "sandbox.arrive", "the amount received must be positive and in %s", c.obj.Amount.Currency().Code)
	}
	c.obj.Received = amount
	if c.obj.Method == psp.Crypto && c.obj.RequiredConfs > 0 {
		c.obj.Confirmations = 0
		c.to(StatusProcessing)
		return nil
	}
	c.to(StatusSucceeded)
	return nil
}

// confirm adds one blockchain confirmation; the last one makes the
// payment succeed.
func (s *Server) confirm(c *change) error {
	if c.obj.Method != psp.Crypto || c.obj.Status != StatusProcessing {
		return conflict(c, "confirm")
	}
	c.obj.Confirmations++
	if c.obj.Confirmations >= c.obj.RequiredConfs {
		c.to(StatusSucceeded)
		return nil
	}
	c.to(StatusProcessing)
	return nil
}

// complete finishes a delayed card payment, a delayed payout, or a crypto
// payment still short of confirmations.
func (s *Server) complete(c *change) error {
	if c.obj.Status != StatusProcessing {
		return conflict(c, "complete")
	}
	switch {
	case c.obj.Object == "payout":
		c.to(StatusPaid)
		return nil
	case c.obj.Method == psp.Crypto:
		c.obj.Confirmations = c.obj.RequiredConfs
		c.to(StatusSucceeded)
		return nil
	case c.obj.Method == psp.Card:
		return s.succeedCard(c, cardOf(c.obj))
	}
	return conflict(c, "complete")
}

// rejectPayout rejects a payout still processing.
func (s *Server) rejectPayout(c *change) error {
	if c.obj.Object != "payout" || c.obj.Status != StatusProcessing {
		return conflict(c, "reject")
	}
	c.obj.DeclineCode, c.obj.Message = psp.DeclineAccountClosed, declineMessages[psp.DeclineAccountClosed]
	c.to(StatusRejected)
	return nil
}

// expire ends a payment nobody finished.
func (s *Server) expire(c *change) error {
	if c.obj.Status != StatusRequiresAction && c.obj.Status != StatusAwaitingFunds {
		return conflict(c, "expire")
	}
	c.to(StatusExpired)
	return nil
}
