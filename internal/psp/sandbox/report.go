package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The transaction report: GET /sandbox/api/report lists every payment and
// payout the sandbox last changed in [from, to), oldest first, a page at a
// time. It is what a real provider's settlement report is to reconciliation:
// the provider's own record, read independently of webhooks and polls.

// Report page sizes.
const (
	DefaultReportLimit = 500
	MaxReportLimit     = 1000
)

type wireReportLine struct {
	ID        string    `json:"id"`        // the sandbox's id
	Object    string    `json:"object"`    // payment or payout
	Reference string    `json:"reference"` // the merchant's id
	Method    string    `json:"method"`
	Status    string    `json:"status"`
	Amount    string    `json:"amount"` // what moved: received for payments where known
	Currency  string    `json:"currency"`
	Fee       string    `json:"fee,omitempty"` // the sandbox charges none
	Updated   time.Time `json:"updated"`
}

type wireReport struct {
	Lines []wireReportLine `json:"lines"`
	// Next is the cursor of the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// reportCursor is the position after a line: its update time and id.
func reportCursor(o object) string {
	return strconv.FormatInt(sqlstore.Micros(o.UpdatedAt), 10) + "." + o.ID
}

func parseReportCursor(s string) (int64, string, bool) {
	at, id, ok := strings.Cut(s, ".")
	if !ok || id == "" {
		return 0, "", false
	}
	n, err := strconv.ParseInt(at, 10, 64)
	return n, id, err == nil
}

// apiReport is GET /sandbox/api/report?from=&to=&after=&limit=. from and
// to are RFC 3339 instants (from empty: the beginning; to empty: now);
// after is the cursor of the previous page. It answers 400 for a malformed
// parameter or a window that ends before it starts.
func (s *Server) apiReport(w http.ResponseWriter, r *http.Request) {
	const op = "sandbox.report"
	q := r.URL.Query()
	bad := func(msg string) { httpx.WriteProblem(w, r, errs.E(errs.Invalid, op, msg)) }
	var from, to time.Time
	if v := q.Get("from"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			bad("from must be an RFC 3339 instant")
			return
		}
		from = t
	}
	to = s.now()
	if v := q.Get("to"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			bad("to must be an RFC 3339 instant")
			return
		}
		to = t
	}
	if to.Before(from) {
		bad("the report window ends before it starts")
		return
	}
	limit := DefaultReportLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxReportLimit {
			bad("limit must be between 1 and " + strconv.Itoa(MaxReportLimit))
			return
		}
		limit = n
	}
	where := `updated_at >= ? AND updated_at < ?`
	args := []any{sqlstore.Micros(from), sqlstore.Micros(to)}
	if from.IsZero() {
		args[0] = int64(0)
	}
	if v := q.Get("after"); v != "" {
		at, id, ok := parseReportCursor(v)
		if !ok {
			bad("after is not a report cursor")
			return
		}
		where += ` AND (updated_at > ? OR (updated_at = ? AND id > ?))`
		args = append(args, at, at, id)
	}
	rows, err := s.db.Query(r.Context(), `SELECT `+objectColumns+` FROM sandbox_payments WHERE `+where+
		` ORDER BY updated_at, id LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		httpx.WriteProblem(w, r, errs.Wrap(op, err))
		return
	}
	defer rows.Close()
	out := wireReport{Lines: []wireReportLine{}}
	var last object
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			httpx.WriteProblem(w, r, errs.Wrap(op, err))
			return
		}
		if len(out.Lines) == limit {
			out.Next = reportCursor(last)
			break
		}
		moved := o.Amount
		if o.Received.Currency().Code != "" {
			moved = o.Received
		}
		out.Lines = append(out.Lines, wireReportLine{ID: o.ID, Object: o.Object, Reference: o.Reference, Method: string(o.Method),
			Status: o.Status, Amount: moved.Decimal(), Currency: moved.Currency().Code, Updated: o.UpdatedAt})
		last = o
	}
	if err := rows.Err(); err != nil {
		httpx.WriteProblem(w, r, errs.Wrap(op, err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

var _ psp.Reporter = (*Client)(nil)

// Report implements psp.Reporter with GET /api/report, reading every page:
// each payment and payout the sandbox last changed in [from, to), oldest
// first, with our id, the sandbox's id, the psp status and what moved. The
// sandbox charges no fee, so Fee is zero. It returns the errors of the
// other calls (errs.Unavailable, errs.Unauthorized, errs.Invalid) and
// errs.Unavailable for an answer it cannot read.
func (c *Client) Report(ctx context.Context, from, to time.Time) ([]psp.ReportLine, error) {
	const op = "sandbox.Client.Report"
	var out []psp.ReportLine
	after := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(MaxReportLimit)}}
		if !from.IsZero() {
			q.Set("from", from.UTC().Format(time.RFC3339Nano))
		}
		if !to.IsZero() {
			q.Set("to", to.UTC().Format(time.RFC3339Nano))
		}
		if after != "" {
			q.Set("after", after)
		}
		raw, err := c.send(ctx, http.MethodGet, "/api/report?"+q.Encode(), "", nil)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		var page wireReport
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, &errs.Error{Code: errs.Unavailable, Op: op, Message: "the sandbox provider's report is not JSON", Err: err}
		}
		for _, l := range page.Lines {
			line, err := toReportLine(l)
			if err != nil {
				return nil, &errs.Error{Code: errs.Unavailable, Op: op, Message: "the sandbox provider's report has a line it cannot read", Err: err}
			}
			out = append(out, line)
		}
		if page.Next == "" || page.Next == after {
			return out, nil
		}
		after = page.Next
	}
}

func toReportLine(l wireReportLine) (psp.ReportLine, error) {
	const op = "sandbox.toReportLine"
	var kind psp.EventKind
	switch l.Object {
	case "payment":
		kind = psp.PaymentEvent
	case "payout":
		kind = psp.PayoutEvent
	default:
		return psp.ReportLine{}, errs.Ef(errs.Invalid, op, "report line is about an unknown object %q", l.Object)
	}
	status, err := toStatus(l.Status)
	if err != nil {
		return psp.ReportLine{}, err
	}
	amount, err := wireAmount(op, l.Amount, l.Currency)
	if err != nil {
		return psp.ReportLine{}, err
	}
	line := psp.ReportLine{ID: l.Reference, ProviderRef: l.ID, Kind: kind, Status: status, Amount: amount, At: l.Updated}
	if l.Fee != "" {
		if line.Fee, err = wireAmount(op, l.Fee, l.Currency); err != nil {
			return psp.ReportLine{}, err
		}
	}
	return line, nil
}
