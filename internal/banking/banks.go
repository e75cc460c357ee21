package banking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Bank is a linked bank account. The micro-deposit amounts are not part of
// it; support staff read them with MicroDepositAmounts.
type Bank struct {
	ID           string
	UserID       string
	BankName     string
	HolderName   string
	IBAN         string
	BIC          string
	Status       BankStatus
	AttemptsLeft int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// MaskedIBAN shows the country code and the last four characters only.
func (b Bank) MaskedIBAN() string {
	if len(b.IBAN) <= 6 {
		return b.IBAN
	}
	return b.IBAN[:2] + strings.Repeat("*", len(b.IBAN)-6) + b.IBAN[len(b.IBAN)-4:]
}

// NewBank is what a user gives to link a bank account.
type NewBank struct {
	BankName   string
	HolderName string
	IBAN       string
	BIC        string // optional
}

const bankColumns = `id, user_id, bank_name, holder_name, iban, bic, status, attempts_left, created_at, updated_at`

func scanBank(row interface{ Scan(...any) error }) (Bank, error) {
	var b Bank
	var status string
	var created, updated int64
	err := row.Scan(&b.ID, &b.UserID, &b.BankName, &b.HolderName, &b.IBAN, &b.BIC, &status, &b.AttemptsLeft, &created, &updated)
	b.Status, b.CreatedAt, b.UpdatedAt = BankStatus(status), sqlstore.FromMicros(created), sqlstore.FromMicros(updated)
	return b, err
}

// LinkBank records a bank account for the user and sends it two
// micro-deposits. The bank is PENDING_VERIFICATION once both went out; if
// the rail fails it stays PENDING (SendPendingMicroDeposits retries) and
// LinkBank still returns it. It returns errs.Invalid for a missing name or
// holder or an invalid IBAN, and errs.Conflict when the user already has
// this IBAN linked (and neither rejected nor being unlinked).
func (s *Service) LinkBank(ctx context.Context, userID string, n NewBank) (Bank, error) {
	const op = "banking.LinkBank"
	n.BankName, n.HolderName = strings.TrimSpace(n.BankName), strings.TrimSpace(n.HolderName)
	n.IBAN, n.BIC = psp.NormalizeIBAN(n.IBAN), strings.ToUpper(strings.TrimSpace(n.BIC))
	switch {
	case userID == "":
		return Bank{}, errs.E(errs.Unauthorized, op, "a user is required")
	case n.BankName == "" || len(n.BankName) > 100:
		return Bank{}, errs.E(errs.Invalid, op, "bankName is required (at most 100 characters)")
	case n.HolderName == "" || len(n.HolderName) > 100:
		return Bank{}, errs.E(errs.Invalid, op, "accountHolderName is required (at most 100 characters)")
	case !psp.ValidIBAN(n.IBAN):
		return Bank{}, errs.E(errs.Invalid, op, "iban is not a valid IBAN")
	case n.BIC != "" && len(n.BIC) != 8 && len(n.BIC) != 11:
		return Bank{}, errs.E(errs.Invalid, op, "bic must have 8 or 11 characters")
	}
	var dup int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM banking_banks WHERE user_id = ? AND iban = ? AND status NOT IN (?, ?)`,
		userID, n.IBAN, string(BankRejected), string(BankPendingDelete)).Scan(&dup); err != nil {
		return Bank{}, errs.Wrap(op, err)
	}
	if dup > 0 {
		return Bank{}, errs.E(errs.Conflict, op, "this bank account is already linked")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Bank{}, errs.Wrap(op, err)
	}
	m1, err := microCents()
	if err != nil {
		return Bank{}, errs.Wrap(op, err)
	}
	m2, err := microCents()
	if err != nil {
		return Bank{}, errs.Wrap(op, err)
	}
	now := sqlstore.Micros(s.now())
	b := Bank{ID: "bank_" + id.String(), UserID: userID, BankName: n.BankName, HolderName: n.HolderName, IBAN: n.IBAN, BIC: n.BIC,
		Status: BankPending, AttemptsLeft: s.attempts, CreatedAt: sqlstore.FromMicros(now), UpdatedAt: sqlstore.FromMicros(now)}
	if _, err := s.db.Exec(ctx, `INSERT INTO banking_banks (`+bankColumns+`, micro1_minor, micro2_minor, currency)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, b.ID, userID, b.BankName, b.HolderName, b.IBAN, b.BIC, string(b.Status),
		b.AttemptsLeft, now, now, m1, m2, s.currency.Code); err != nil {
		return Bank{}, errs.Wrap(op, err)
	}
	if err := s.sendMicroDeposits(ctx, b, m1, m2); err != nil {
		s.log.WarnContext(ctx, "micro-deposits not sent; the bank stays PENDING", "bank", b.ID, "err", err)
		return b, nil
	}
	return s.Bank(ctx, userID, b.ID)
}

func (s *Service) sendMicroDeposits(ctx context.Context, b Bank, m1, m2 int64) error {
	for i, minor := range []int64{m1, m2} {
		if err := s.rail.SendMicroDeposit(ctx, MicroDeposit{ID: fmt.Sprintf("%s:%d", b.ID, i+1), Bank: b, Amount: money.New(minor, s.currency)}); err != nil {
			return err
		}
	}
	_, err := s.db.Exec(ctx, `UPDATE banking_banks SET status = ?, updated_at = ? WHERE id = ? AND status = ?`,
		string(BankPendingVerification), sqlstore.Micros(s.now()), b.ID, string(BankPending))
	return err
}

// SendPendingMicroDeposits retries the micro-deposits of banks still
// PENDING (run it from a periodic job). It returns how many banks moved to
// PENDING_VERIFICATION, and a database error if the banks cannot be read.
func (s *Service) SendPendingMicroDeposits(ctx context.Context) (int, error) {
	rows, err := s.db.Query(ctx, `SELECT `+bankColumns+`, micro1_minor, micro2_minor FROM banking_banks WHERE status = ?`, string(BankPending))
	if err != nil {
		return 0, errs.Wrap("banking.SendPendingMicroDeposits", err)
	}
	type pending struct {
		b      Bank
		m1, m2 int64
	}
	var list []pending
	for rows.Next() {
		var p pending
		var status string
		var created, updated int64
		if err := rows.Scan(&p.b.ID, &p.b.UserID, &p.b.BankName, &p.b.HolderName, &p.b.IBAN, &p.b.BIC, &status, &p.b.AttemptsLeft,
			&created, &updated, &p.m1, &p.m2); err != nil {
			_ = rows.Close()
			return 0, errs.Wrap("banking.SendPendingMicroDeposits", err)
		}
		list = append(list, p)
	}
	if err := rows.Err(); err != nil {
		_ = rows.Close()
		return 0, errs.Wrap("banking.SendPendingMicroDeposits", err)
	}
	if err := rows.Close(); err != nil {
		return 0, errs.Wrap("banking.SendPendingMicroDeposits", err)
	}
	sent := 0
	for _, p := range list {
		if err := s.sendMicroDeposits(ctx, p.b, p.m1, p.m2); err != nil {
			s.log.WarnContext(ctx, "micro-deposits not sent", "bank", p.b.ID, "err", err)
			continue
		}
		sent++
	}
	return sent, nil
}

// Banks lists the user's linked banks, oldest first. It returns only
// database errors.
func (s *Service) Banks(ctx context.Context, userID string) ([]Bank, error) {
	rows, err := s.db.Query(ctx, `SELECT `+bankColumns+` FROM banking_banks WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, errs.Wrap("banking.Banks", err)
	}
	defer rows.Close()
	out := []Bank{}
	for rows.Next() {
		b, err := scanBank(rows)
		if err != nil {
			return nil, errs.Wrap("banking.Banks", err)
		}
		out = append(out, b)
	}
	return out, errs.Wrap("banking.Banks", rows.Err())
}

// Bank returns one of the user's banks. It returns errs.NotFound with
// MsgBankNotFound when the bank does not exist or belongs to someone else.
func (s *Service) Bank(ctx context.Context, userID, bankID string) (Bank, error) {
	b, err := scanBank(s.db.QueryRow(ctx, `SELECT `+bankColumns+` FROM banking_banks WHERE id = ? AND user_id = ?`, bankID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return Bank{}, errs.E(errs.NotFound, "banking.Bank", MsgBankNotFound)
	}
	if err != nil {
		return Bank{}, errs.Wrap("banking.Bank", err)
	}
	return b, nil
}

// MicroDepositAmounts returns the two micro-deposits sent to a bank, for
// support staff helping a user (no owner check: do not expose it to
// clients). It returns errs.NotFound for an unknown bank.
func (s *Service) MicroDepositAmounts(ctx context.Context, bankID string) ([2]money.Amount, error) {
	var m1, m2 int64
	var cur string
	err := s.db.QueryRow(ctx, `SELECT micro1_minor, micro2_minor, currency FROM banking_banks WHERE id = ?`, bankID).Scan(&m1, &m2, &cur)
	if errors.Is(err, sql.ErrNoRows) {
		return [2]money.Amount{}, errs.E(errs.NotFound, "banking.MicroDepositAmounts", MsgBankNotFound)
	}
	if err != nil {
		return [2]money.Amount{}, errs.Wrap("banking.MicroDepositAmounts", err)
	}
	c, err := money.LookupCurrency(cur)
	if err != nil {
		return [2]money.Amount{}, errs.Wrap("banking.MicroDepositAmounts", err)
	}
	return [2]money.Amount{money.New(m1, c), money.New(m2, c)}, nil
}

// VerifyBank checks the two micro-deposit amounts the user read on the
// bank statement (in either order). Right amounts make the bank PROCESSED
// and its SCHEDULED deposits PENDING. A wrong pair uses an attempt; the last
// one rejects the bank and fails its SCHEDULED deposits. It returns
// errs.NotFound (MsgBankNotFound) for a bank of someone else, errs.Conflict
// when the bank is not awaiting verification, errs.Invalid for amounts in
// the wrong currency precision, and errs.Forbidden for a wrong pair (its
// message says how many attempts are left, or that the bank is rejected).
func (s *Service) VerifyBank(ctx context.Context, userID, bankID string, amounts [2]string) (Bank, error) {
	const op = "banking.VerifyBank"
	var given [2]int64
	for i, a := range amounts {
		v, err := money.ParsePositive(a, s.currency)
		if err != nil {
			return Bank{}, errs.Wrap(op, err)
		}
		given[i] = v.Minor()
	}
	var verdict error
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		verdict = nil
		var m1, m2 int64
		var status string
		var left int
		err := tx.QueryRow(ctx, `SELECT micro1_minor, micro2_minor, status, attempts_left FROM banking_banks WHERE id = ? AND user_id = ?`+tx.ForUpdate(),
			bankID, userID).Scan(&m1, &m2, &status, &left)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.NotFound, op, MsgBankNotFound)
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		if BankStatus(status) != BankPendingVerification {
			return errs.Ef(errs.Conflict, op, "the bank account is %s, not awaiting micro-deposit confirmation", status)
		}
		now := sqlstore.Micros(s.now())
		if (given[0] == m1 && given[1] == m2) || (given[0] == m2 && given[1] == m1) {
			if _, err := tx.Exec(ctx, `UPDATE banking_banks SET status = ?, updated_at = ? WHERE id = ?`, string(BankProcessed), now, bankID); err != nil {
				return errs.Wrap(op, err)
			}
			_, err := tx.Exec(ctx, `UPDATE banking_transfers SET status = ?, updated_at = ? WHERE bank_id = ? AND status = ?`,
				string(Pending), now, bankID, string(Scheduled))
			return errs.Wrap(op, err)
		}
		left--
		if left > 0 {
			verdict = errs.Ef(errs.Forbidden, op, "The amounts do not match. %d attempt(s) left.", left)
			_, err := tx.Exec(ctx, `UPDATE banking_banks SET attempts_left = ?, updated_at = ? WHERE id = ?`, left, now, bankID)
			return errs.Wrap(op, err)
		}
		verdict = errs.E(errs.Forbidden, op, "The amounts do not match. The bank account is rejected; link it again to retry.")
		if _, err := tx.Exec(ctx, `UPDATE banking_banks SET attempts_left = 0, status = ?, updated_at = ? WHERE id = ?`, string(BankRejected), now, bankID); err != nil {
			return errs.Wrap(op, err)
		}
		_, err = tx.Exec(ctx, `UPDATE banking_transfers SET status = ?, failure_reason = ?, updated_at = ? WHERE bank_id = ? AND status = ?`,
			string(Failed), "bank account verification failed", now, bankID, string(Scheduled))
		return errs.Wrap(op, err)
	})
	if err != nil {
		return Bank{}, err
	}
	if verdict != nil {
		return Bank{}, verdict
	}
	return s.Bank(ctx, userID, bankID)
}

// RemoveBank unlinks a bank: it becomes PENDING_DELETE, accepts no new
// transfers, and its SCHEDULED deposits fail; transfers already PENDING
// finish. A bank with no transfers at all is deleted outright. It returns
// errs.NotFound (MsgBankNotFound) for a bank of someone else.
func (s *Service) RemoveBank(ctx context.Context, userID, bankID string) error {
	const op = "banking.RemoveBank"
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM banking_banks WHERE id = ? AND user_id = ?`+tx.ForUpdate(), bankID, userID).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.NotFound, op, MsgBankNotFound)
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM banking_transfers WHERE bank_id = ?`, bankID).Scan(&n); err != nil {
			return errs.Wrap(op, err)
		}
		if n == 0 {
			_, err := tx.Exec(ctx, `DELETE FROM banking_banks WHERE id = ?`, bankID)
			return errs.Wrap(op, err)
		}
		now := sqlstore.Micros(s.now())
		if _, err := tx.Exec(ctx, `UPDATE banking_banks SET status = ?, updated_at = ? WHERE id = ?`, string(BankPendingDelete), now, bankID); err != nil {
			return errs.Wrap(op, err)
		}
		_, err = tx.Exec(ctx, `UPDATE banking_transfers SET status = ?, failure_reason = ?, updated_at = ? WHERE bank_id = ? AND status = ?`,
			string(Failed), "bank account unlinked", now, bankID, string(Scheduled))
		return errs.Wrap(op, err)
	})
}
