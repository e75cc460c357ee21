package reports

import (
	"context"
	"encoding/csv"
	"io"
	"strconv"

	"github.com/opencashier/cashier/internal/errs"
)

// CSVHeader is the header row of WriteCSV, in column order.
var CSVHeader = []string{
	"id", "kind", "created_at", "updated_at", "user_id", "email", "login", "method", "provider",
	"status", "flag", "currency", "amount", "fee", "credit_currency", "credit",
}

// defaultCSVBatch is how many rows WriteCSV reads per query: the export
// streams without holding one long query open while a slow client reads.
const defaultCSVBatch = 2000

// WriteCSV writes every row that matches f (not one page: f.Limit and
// f.Cursor are ignored), newest first, as RFC 4180 CSV with CRLF line ends
// and the CSVHeader row. Amounts are exact decimals with the currency's
// digits ("97.20"), instants RFC 3339 in UTC with microseconds. A text cell
// that a spreadsheet would read as a formula (it starts with =, +, -, @, a
// tab or a carriage return) is prefixed with a single quote.
//
// It returns the errs.Invalid errors of Search for a bad filter (before
// writing anything), and the writer's error wrapped if w fails.
func (s *Service) WriteCSV(ctx context.Context, w io.Writer, f Filter) error {
	const op = "reports.WriteCSV"
	f.Limit, f.Cursor = MaxLimit, ""
	q, err := compile(op, f)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(CSVHeader); err != nil {
		return errs.Wrap(op, err)
	}
	for {
		rows, err := s.query(ctx, op, q, s.csvBatch)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := cw.Write(csvRecord(r)); err != nil {
				return errs.Wrap(op, err)
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return errs.Wrap(op, err)
		}
		if len(rows) < s.csvBatch {
			return nil
		}
		last := rows[len(rows)-1]
		q.after = &cursor{micros: last.CreatedAt.UnixMicro(), id: last.ID}
	}
}

// csvTime is RFC 3339 in UTC with a fixed six-digit fraction.
const csvTime = "2006-01-02T15:04:05.000000Z07:00"

func csvRecord(r Row) []string {
	return []string{
		safeCell(r.ID), safeCell(string(r.Kind)), r.CreatedAt.UTC().Format(csvTime), r.UpdatedAt.UTC().Format(csvTime),
		safeCell(r.UserID), safeCell(r.Email), strconv.FormatInt(r.Login, 10), safeCell(r.MethodID), safeCell(r.Provider),
		safeCell(r.State), safeCell(r.Flag), safeCell(r.Amount.Currency().Code), numberCell(r.Amount.Decimal()),
		numberCell(r.Fee.Decimal()), safeCell(r.Credit.Currency().Code), numberCell(r.Credit.Decimal()),
	}
}

// safeCell defuses a text cell that a spreadsheet would evaluate: one that
// starts with =, +, -, @, a tab or a carriage return gets a leading single
// quote (OWASP's advice for CSV injection).
func safeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// numberCell passes a decimal that this package formatted ("-5.00" is a
// number, not a formula) and defuses anything else like a text cell.
func numberCell(s string) string {
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	seenDot := false
	for i, c := range digits {
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && !seenDot && i > 0 && i < len(digits)-1:
			seenDot = true
		default:
			return safeCell(s)
		}
	}
	if digits == "" {
		return safeCell(s)
	}
	return s
}
