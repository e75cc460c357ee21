package notify

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The channels of a Delivery.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// State is where a delivery is.
type State string

// The states of a delivery.
const (
	Pending   State = "pending"   // waiting for its first or next attempt
	Delivered State = "delivered" // the mailer took the e-mail, or the CRM answered 2xx
	Dead      State = "dead"      // out of attempts, or refused for good; see LastError
)

// Delivery is one e-mail or webhook, as recorded and sent.
type Delivery struct {
	// ID is "evt_…" for a webhook (the event id the CRM receives) and
	// "eml_…" for an e-mail. It is derived from the event, so the same
	// event always has the same id.
	ID      string
	Channel string // ChannelEmail or ChannelWebhook
	// Type is the webhook's type ("deposit.status_changed") or the
	// e-mail's template ("withdrawal.rejected").
	Type      string
	Kind      string // funding.KindDeposit or funding.KindWithdrawal
	SubjectID string // the deposit's or withdrawal's id
	UserID    string
	From, To  string
	// Sequence numbers a subject's webhooks 1, 2, …; zero for e-mails.
	Sequence int
	// Recipient is the e-mail address, or the webhook URL of the latest
	// attempt (without credentials).
	Recipient string
	Lang      string // the e-mail's language; "" for webhooks
	Subject   string // the e-mail's subject; "" for webhooks
	Body      string // the e-mail's text, or the webhook's JSON body
	JobID     string // the job that sends it
	State     State
	// Attempts counts the attempts made; LastStatus is the HTTP status of
	// the latest webhook attempt (0 for none: a connection error, a
	// timeout, or an e-mail); LastError says why the latest attempt failed.
	Attempts    int
	LastStatus  int
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	DeliveredAt time.Time // zero until delivered
}

// idSpace is the UUID namespace of delivery ids (UUIDv5 of the event key).
var idSpace = uuid.MustParse("905d6798-5dfa-4e51-9bf3-302db606705f")

// eventKey names one status change: the subject and the status it
// reached (each status is reached once). A change that keeps the status (a
// flag set or cleared, a first of two approvals) may happen more than once,
// so its key adds the flag, the reason and the time of the change, hashed
// so the key stays short.
func eventKey(e funding.Event) string {
	key := e.ID + "|" + e.To
	if e.From == e.To {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", e.Flag, e.Reason, e.At.UnixMicro()))
		key += "|" + hex.EncodeToString(sum[:8])
	}
	return key
}

// deliveryID derives the id of a channel's delivery of an event.
func deliveryID(channel, key string) string {
	prefix := "eml_"
	if channel == ChannelWebhook {
		prefix = "evt_"
	}
	return prefix + uuid.NewSHA1(idSpace, []byte(channel+"\x00"+key)).String()
}

type jobPayload struct {
	Delivery string `json:"delivery"`
}

// add records a delivery and enqueues its job in tx, unless a delivery
// with its id exists. It reports whether it added one.
func (s *Service) add(ctx context.Context, tx *sqlstore.Tx, d Delivery, kind string, maxAttempts int) (bool, error) {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM notify_deliveries WHERE id = ?`, d.ID).Scan(&one)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	jobID, err := jobs.Enqueue(ctx, tx, jobs.NewJob{Kind: kind, Payload: jobPayload{Delivery: d.ID}, DedupKey: d.ID, MaxAttempts: maxAttempts})
	if err != nil {
		return false, err
	}
	now := sqlstore.Micros(s.clock.Now())
	// PostgreSQL's TEXT takes neither NUL nor invalid UTF-8; a stray byte
	// in an event must not roll its status change back.
	for _, f := range []*string{&d.Type, &d.Kind, &d.SubjectID, &d.UserID, &d.From, &d.To, &d.Recipient, &d.Lang, &d.Subject, &d.Body} {
		*f = clean(*f)
	}
	res, err := tx.Exec(ctx, `INSERT INTO notify_deliveries (id, channel, event_type, kind, subject_id, user_id, from_status, to_status,
		seq, recipient, lang, subject, body, job_id, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (id) DO NOTHING`,
		d.ID, d.Channel, d.Type, d.Kind, d.SubjectID, d.UserID, d.From, d.To, d.Sequence, d.Recipient, d.Lang, d.Subject, d.Body,
		jobID, now, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// effectiveState is a delivery's state in SQL: the stored one, corrected
// by its job's when the handler could not record the outcome (a lease that
// ended on the last attempt kills the job without the handler).
const effectiveState = `CASE
	WHEN d.state = 'pending' AND j.state = 'dead' THEN 'dead'
	WHEN d.state = 'pending' AND j.state = 'done' THEN 'delivered'
	ELSE d.state END`

const deliveryColumns = `d.id, d.channel, d.event_type, d.kind, d.subject_id, d.user_id, d.from_status, d.to_status, d.seq,
	d.recipient, d.lang, d.subject, d.body, d.job_id, ` + effectiveState + `, d.attempts, d.last_status, d.last_error,
	d.created_at, d.updated_at, d.delivered_at`

const deliveryFrom = ` FROM notify_deliveries d LEFT JOIN jobs j ON j.id = d.job_id`

type rowScanner interface{ Scan(dest ...any) error }

func scanDelivery(row rowScanner) (Delivery, error) {
	var (
		d                Delivery
		created, updated int64
		delivered        sql.NullInt64
	)
	if err := row.Scan(&d.ID, &d.Channel, &d.Type, &d.Kind, &d.SubjectID, &d.UserID, &d.From, &d.To, &d.Sequence,
		&d.Recipient, &d.Lang, &d.Subject, &d.Body, &d.JobID, &d.State, &d.Attempts, &d.LastStatus, &d.LastError,
		&created, &updated, &delivered); err != nil {
		return Delivery{}, err
	}
	d.CreatedAt, d.UpdatedAt, d.DeliveredAt = sqlstore.FromMicros(created), sqlstore.FromMicros(updated), sqlstore.FromNullMicros(delivered)
	return d, nil
}

// Delivery returns the delivery with the given id. It returns
// errs.NotFound if there is none and a wrapped database error otherwise.
func (s *Service) Delivery(ctx context.Context, id string) (Delivery, error) {
	const op = "notify.Delivery"
	d, err := scanDelivery(s.db.QueryRow(ctx, `SELECT `+deliveryColumns+deliveryFrom+` WHERE d.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, errs.Ef(errs.NotFound, op, "no notification %q", id)
	}
	if err != nil {
		return Delivery{}, errs.Wrap(op, err)
	}
	return d, nil
}

// Filter selects deliveries. Empty fields match everything.
type Filter struct {
	Channel   string // ChannelEmail or ChannelWebhook
	State     State
	SubjectID string // a deposit's or withdrawal's id
	// Before pages backwards: only deliveries created before it.
	Before time.Time
	// Limit caps the result; zero means 50, and at most 1000 are returned.
	Limit int
}

// Deliveries returns the deliveries that match f, newest first: what
// operators look at to see failing and dead webhooks (State Dead) or
// whether a trader was e-mailed (SubjectID). It returns errs.Invalid for an
// unknown channel or state or a negative limit, and a wrapped database
// error otherwise.
func (s *Service) Deliveries(ctx context.Context, f Filter) ([]Delivery, error) {
	const op = "notify.Deliveries"
	var (
		where []string
		args  []any
	)
	switch f.Channel {
	case "":
	case ChannelEmail, ChannelWebhook:
		where, args = append(where, "d.channel = ?"), append(args, f.Channel)
	default:
		return nil, errs.Ef(errs.Invalid, op, "unknown channel %q", f.Channel)
	}
	switch f.State {
	case "":
	case Pending, Delivered, Dead:
		where, args = append(where, "("+effectiveState+") = ?"), append(args, string(f.State))
	default:
		return nil, errs.Ef(errs.Invalid, op, "unknown state %q", f.State)
	}
	if f.SubjectID != "" {
		where, args = append(where, "d.subject_id = ?"), append(args, f.SubjectID)
	}
	if !f.Before.IsZero() {
		where, args = append(where, "d.created_at < ?"), append(args, sqlstore.Micros(f.Before))
	}
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, errs.E(errs.Invalid, op, "limit must not be negative")
	case limit == 0:
		limit = 50
	case limit > 1000:
		limit = 1000
	}
	q := `SELECT ` + deliveryColumns + deliveryFrom
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY d.created_at DESC, d.seq DESC, d.id DESC LIMIT ?`
	rows, err := s.db.Query(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Wrap(op, err)
	}
	return out, nil
}

// Redeliver gives a dead delivery a fresh set of attempts: the operator's
// "send again" once the CRM or the mail server is fixed. It is recorded in
// the audit trail as "notification.redelivered" by actor by (e.g.
// "staff:<id>"); then the delivery's job is requeued (jobs.Requeue). It
// returns errs.Invalid without an actor, errs.NotFound for an unknown id,
// errs.Conflict for a delivery that is not dead, and a wrapped database
// error otherwise.
func (s *Service) Redeliver(ctx context.Context, id, by string) error {
	const op = "notify.Redeliver"
	if strings.TrimSpace(by) == "" {
		return errs.E(errs.Invalid, op, "the actor is required")
	}
	var d Delivery
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		lock := "" // SQLite: the transaction holds the write lock
		if tx.Dialect() == sqlstore.Postgres {
			lock = " FOR UPDATE OF d"
		}
		d, err = scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryColumns+deliveryFrom+` WHERE d.id = ?`+lock, id))
		if errors.Is(err, sql.ErrNoRows) {
			return errs.Ef(errs.NotFound, op, "no notification %q", id)
		}
		if err != nil {
			return err
		}
		if d.State != Dead {
			return errs.Ef(errs.Conflict, op, "notification %s is %s; only a dead one can be sent again", id, d.State)
		}
		if _, err := tx.Exec(ctx, `UPDATE notify_deliveries SET state = 'pending', updated_at = ? WHERE id = ?`,
			sqlstore.Micros(s.clock.Now()), id); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Record{Actor: by, Action: "notification.redelivered", Subject: id, Detail: map[string]string{
			"channel": d.Channel, "type": d.Type, "subject": d.SubjectID, "status": d.To, "recipient": d.Recipient,
			"attempts": fmt.Sprint(d.Attempts), "last_error": d.LastError,
		}})
	})
	if err != nil {
		return errs.Wrap(op, err)
	}
	if err := jobs.Requeue(ctx, s.db, d.JobID); err != nil {
		return errs.Wrap(op, err)
	}
	if s.notify != nil {
		s.notify()
	}
	return nil
}

// Purge deletes up to limit delivered notifications created before the
// given time and returns how many it deleted; pending and dead ones are
// kept. A purged delivery's event would be notified again if funding
// reported it again. It returns errs.Invalid for a limit below 1 and a
// wrapped database error otherwise.
func (s *Service) Purge(ctx context.Context, createdBefore time.Time, limit int) (int, error) {
	const op = "notify.Purge"
	if limit < 1 {
		return 0, errs.E(errs.Invalid, op, "limit must be at least 1")
	}
	res, err := s.db.Exec(ctx, `DELETE FROM notify_deliveries WHERE id IN (
		SELECT id FROM notify_deliveries WHERE state = 'delivered' AND created_at < ? ORDER BY created_at LIMIT ?)`,
		sqlstore.Micros(createdBefore), limit)
	if err != nil {
		return 0, errs.Wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, errs.Wrap(op, err)
	}
	return int(n), nil
}

// loadForJob reads the delivery a job sends. A malformed payload or a
// missing delivery is a permanent failure.
func (s *Service) loadForJob(ctx context.Context, j jobs.Job) (Delivery, error) {
	var p jobPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil || p.Delivery == "" {
		return Delivery{}, jobs.Permanent(fmt.Errorf("%s: malformed payload %s", j.Kind, j.Payload))
	}
	d, err := s.Delivery(ctx, p.Delivery)
	if errs.Is(err, errs.NotFound) {
		return Delivery{}, jobs.Permanent(err)
	}
	return d, err
}

// recordAttempt stores the outcome of an attempt. A failed attempt that is
// the last makes the delivery dead.
func (s *Service) recordAttempt(ctx context.Context, d Delivery, recipient string, status int, failure error, last bool) error {
	now := sqlstore.Micros(s.clock.Now())
	var err error
	switch {
	case failure == nil:
		_, err = s.db.Exec(ctx, `UPDATE notify_deliveries SET state = 'delivered', attempts = attempts + 1, last_status = ?,
			recipient = ?, updated_at = ?, delivered_at = ? WHERE id = ?`, status, recipient, now, now, d.ID)
	default:
		state := Pending
		if last {
			state = Dead
		}
		_, err = s.db.Exec(ctx, `UPDATE notify_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?,
			recipient = ?, updated_at = ? WHERE id = ?`, string(state), status, clean(truncate(failure.Error(), 2000)), recipient, now, d.ID)
	}
	if err != nil {
		s.log.Error("notify: recording a delivery attempt failed", "id", d.ID, "err", err)
	}
	return errs.Wrap("notify.recordAttempt", err)
}

// clean makes s storable as text: valid UTF-8 without NUL.
func clean(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// truncate shortens s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
