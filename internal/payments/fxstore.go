package payments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// RateStore keeps operator-set exchange rates in the fx_rates table. It is
// a RateSource; chain it before a static file with Sources so that rates an
// operator sets win.
type RateStore struct {
	db    *sqlstore.DB
	clock clock.Clock
	audit audit.Recorder
}

// Audit makes the store record every rate an operator sets or removes in
// the audit trail, in the same transaction, and returns the store. Call it
// before the store is used.
func (s *RateStore) Audit(r audit.Recorder) *RateStore {
	s.audit = r
	return s
}

// NewRateStore returns a store over db, stamping changes with clk
// (clock.System when nil).
func NewRateStore(db *sqlstore.DB, clk clock.Clock) *RateStore {
	if clk == nil {
		clk = clock.System{}
	}
	return &RateStore{db: db, clock: clk, audit: audit.Discard}
}

// StoredRate is one rate in the store.
type StoredRate struct {
	From, To  money.Currency
	Rate      money.Rate
	UpdatedAt time.Time
	UpdatedBy string
}

// Rate implements RateSource. It returns an errs.NotFound error when no rate
// is stored for the pair, and a wrapped database error otherwise.
func (s *RateStore) Rate(ctx context.Context, from, to money.Currency) (money.Rate, error) {
	const op = "payments.RateStore.Rate"
	var text string
	err := s.db.QueryRow(ctx, `SELECT rate FROM fx_rates WHERE base = ? AND quote = ?`, from.Code, to.Code).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return money.Rate{}, errs.Ef(errs.NotFound, op, "no stored rate for %s/%s", from.Code, to.Code)
	}
	if err != nil {
		return money.Rate{}, errs.Wrap(op, err)
	}
	r, err := money.ParseRate(text)
	return r, errs.Wrap(op, err)
}

// Set stores the rate of the pair from/to (one from buys rate to), replacing
// any earlier one, and records who set it. It returns an errs.Invalid error
// for a pair of a currency with itself or an unset rate, and a wrapped
// database error otherwise.
func (s *RateStore) Set(ctx context.Context, from, to money.Currency, rate money.Rate, by string) error {
	const op = "payments.RateStore.Set"
	if from == to {
		return errs.Ef(errs.Invalid, op, "cannot set a rate from %s to itself", from.Code)
	}
	if !rate.IsSet() {
		return errs.E(errs.Invalid, op, "rate is not set")
	}
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO fx_rates (base, quote, rate, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (base, quote) DO UPDATE SET rate = excluded.rate, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			from.Code, to.Code, rate.String(), sqlstore.Micros(s.clock.Now()), by); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Record{Actor: by, Action: "setting.changed", Subject: "fx:" + from.Code + "/" + to.Code,
			Detail: map[string]string{"rate": rate.String()}})
	})
	return errs.Wrap(op, err)
}

// Delete removes the stored rate of the pair. It returns an errs.NotFound
// error if none was stored.
func (s *RateStore) Delete(ctx context.Context, from, to money.Currency) error {
	return s.DeleteBy(ctx, from, to, "operator")
}

// DeleteBy is Delete that names the operator for the audit trail. It
// returns an errs.NotFound error if no rate was stored.
func (s *RateStore) DeleteBy(ctx context.Context, from, to money.Currency, by string) error {
	const op = "payments.RateStore.Delete"
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM fx_rates WHERE base = ? AND quote = ?`, from.Code, to.Code)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errs.Ef(errs.NotFound, op, "no stored rate for %s/%s", from.Code, to.Code)
		}
		return s.audit.RecordTx(ctx, tx, audit.Record{Actor: by, Action: "setting.changed", Subject: "fx:" + from.Code + "/" + to.Code,
			Detail: map[string]string{"rate": "removed"}})
	})
	if errs.Is(err, errs.NotFound) {
		return err
	}
	return errs.Wrap(op, err)
}

// List returns every stored rate, ordered by pair. It returns a wrapped
// database error, or an errs.Internal error for a row that no longer
// parses.
func (s *RateStore) List(ctx context.Context) ([]StoredRate, error) {
	const op = "payments.RateStore.List"
	rows, err := s.db.Query(ctx, `SELECT base, quote, rate, updated_at, updated_by FROM fx_rates ORDER BY base, quote`)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []StoredRate
	for rows.Next() {
		var (
			base, quote, text, by string
			at                    int64
		)
		if err := rows.Scan(&base, &quote, &text, &at, &by); err != nil {
			return nil, errs.Wrap(op, err)
		}
		from, to, err := ParsePair(base + "/" + quote)
		if err != nil {
			return nil, &errs.Error{Code: errs.Internal, Op: op, Err: err}
		}
		r, err := money.ParseRate(text)
		if err != nil {
			return nil, &errs.Error{Code: errs.Internal, Op: op, Err: err}
		}
		out = append(out, StoredRate{From: from, To: to, Rate: r, UpdatedAt: sqlstore.FromMicros(at), UpdatedBy: by})
	}
	return out, errs.Wrap(op, rows.Err())
}

// FXUsage is the help text of the fx operator command.
const FXUsage = `usage:
  fx list                       list the rates set by operators
  fx set PAIR RATE              set a rate, e.g. fx set EUR/USD 1.0835 (one EUR buys 1.0835 USD)
  fx unset PAIR                 remove a rate set by an operator
`

// RunFXCommand runs the operator command "fx" with args (the words after
// "fx"), writing its output to out; by names the operator for the record.
// cmd/cashier calls it for "cashier fx ...". It returns an errs.Invalid
// error (whose message includes FXUsage) for a wrong command line, and the
// errors of RateStore otherwise.
func RunFXCommand(ctx context.Context, store *RateStore, args []string, out io.Writer, by string) error {
	const op = "payments.RunFXCommand"
	usage := func(format string, a ...any) error {
		return errs.E(errs.Invalid, op, fmt.Sprintf(format, a...)+"\n"+FXUsage)
	}
	if len(args) == 0 {
		return usage("fx needs a subcommand")
	}
	switch args[0] {
	case "list":
		if len(args) != 1 {
			return usage("fx list takes no arguments")
		}
		rates, err := store.List(ctx)
		if err != nil {
			return err
		}
		if len(rates) == 0 {
			_, err := fmt.Fprintln(out, "no rates are set; payments use the static rates file")
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PAIR\tRATE\tUPDATED\tBY")
		for _, r := range rates {
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\n", r.From.Code, r.To.Code, r.Rate, r.UpdatedAt.Format(time.RFC3339), r.UpdatedBy)
		}
		return tw.Flush()
	case "set":
		if len(args) != 3 {
			return usage("fx set needs a pair and a rate")
		}
		from, to, err := ParsePair(strings.ToUpper(args[1]))
		if err != nil {
			return err
		}
		rate, err := money.ParseRate(args[2])
		if err != nil {
			return err
		}
		if err := store.Set(ctx, from, to, rate, by); err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s/%s = %s\n", from.Code, to.Code, rate)
		return err
	case "unset":
		if len(args) != 2 {
			return usage("fx unset needs a pair")
		}
		from, to, err := ParsePair(strings.ToUpper(args[1]))
		if err != nil {
			return err
		}
		if err := store.DeleteBy(ctx, from, to, by); err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s/%s removed\n", from.Code, to.Code)
		return err
	default:
		return usage("unknown fx subcommand %q", args[0])
	}
}
