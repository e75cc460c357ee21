package compliance

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The sources of a KYC profile.
const (
	SourceStaff = "staff" // set by a back-office user
	SourceAPI   = "api"   // set by the broker's KYC system
)

// Profile is a user's KYC status.
type Profile struct {
	UserID string
	// Level is the verified KYC level, 0 (unverified) to MaxLevel.
	Level int
	// Country is the user's ISO 3166-1 alpha-2 country in upper case;
	// empty when unknown.
	Country string
	// Source says who set the profile (SourceStaff or SourceAPI);
	// Reference is their reference for the verification (a case id).
	Source    string
	Reference string
	UpdatedBy string
	UpdatedAt time.Time
	// Stored is false for a user without a profile: Level and Country are
	// then Options.DefaultKYCLevel and Options.DefaultCountry.
	Stored bool
}

// KYCChange is one entry of a profile's history.
type KYCChange struct {
	UserID    string
	Level     int
	Country   string
	Source    string
	Reference string
	// PreviousLevel is -1 for the first profile of a user.
	PreviousLevel   int
	PreviousCountry string
	Actor           string
	At              time.Time
}

const maxReference = 200

// checkUserID checks a user id as the cashier writes them ("usr_…"); the
// KYC system may know others, so only its shape is checked.
func checkUserID(op, userID string) error {
	if userID == "" || len(userID) > 100 || strings.IndexFunc(userID, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return errs.E(errs.Invalid, op, "a user id is 1-100 printable characters without spaces")
	}
	return nil
}

// SetKYC sets a user's KYC level, country, source and reference, records
// the change in the profile's history and writes an audit record
// ("kyc.changed", subject "user:<id>") in the same transaction. A profile
// equal to the stored one changes nothing. Country is upper-cased.
//
// It returns errs.Invalid for an empty actor, a malformed user id, a level
// outside 0..MaxLevel, a country that is not two letters, a source other
// than SourceStaff or SourceAPI, or a reference longer than 200 characters
// or with control characters; and the audit recorder's errors.
func (s *Service) SetKYC(ctx context.Context, actor string, userID string, p Profile) error {
	const op = "compliance.SetKYC"
	p.Country = strings.ToUpper(strings.TrimSpace(p.Country))
	p.Reference = strings.TrimSpace(p.Reference)
	switch {
	case actor == "":
		return errs.E(errs.Invalid, op, "an actor is required")
	case !validLevel(p.Level):
		return errs.Ef(errs.Invalid, op, "the KYC level must be between 0 and %d", MaxLevel)
	case p.Country != "" && !countryCode.MatchString(p.Country):
		return errs.Ef(errs.Invalid, op, "country %q must be an ISO 3166-1 alpha-2 code, e.g. DE", p.Country)
	case p.Source != SourceStaff && p.Source != SourceAPI:
		return errs.Ef(errs.Invalid, op, "source %q must be %q or %q", p.Source, SourceStaff, SourceAPI)
	case len(p.Reference) > maxReference || strings.IndexFunc(p.Reference, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return errs.Ef(errs.Invalid, op, "the reference must be at most %d printable characters", maxReference)
	}
	if err := checkUserID(op, userID); err != nil {
		return err
	}
	now := s.now()
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		old, err := storedProfile(ctx, tx, userID, tx.ForUpdate())
		if err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
		had := err == nil
		if had && old.Level == p.Level && old.Country == p.Country && old.Source == p.Source && old.Reference == p.Reference {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO compliance_kyc (user_id, level, country, source, reference, updated_by, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET level = excluded.level, country = excluded.country, source = excluded.source,
				reference = excluded.reference, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
			userID, p.Level, p.Country, p.Source, p.Reference, actor, sqlstore.Micros(now)); err != nil {
			return err
		}
		var prevLevel sql.NullInt64
		if had {
			prevLevel = sql.NullInt64{Int64: int64(old.Level), Valid: true}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO compliance_kyc_history (user_id, level, country, source, reference, previous_level,
			previous_country, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			userID, p.Level, p.Country, p.Source, p.Reference, prevLevel, old.Country, actor, sqlstore.Micros(now)); err != nil {
			return err
		}
		detail := map[string]string{"level": strconv.Itoa(p.Level), "country": p.Country, "source": p.Source, "reference": p.Reference}
		if had {
			detail["previous_level"], detail["previous_country"] = strconv.Itoa(old.Level), old.Country
		}
		return s.audit.RecordTx(ctx, tx, audit.Record{Actor: actor, Action: "kyc.changed", Subject: "user:" + userID, Detail: detail})
	})
	return errs.Wrap(op, err)
}

// Profile returns the user's KYC profile; a user without one gets the
// default level and country (Stored false), a profile without a country
// the default country. It returns errs.Invalid for a
// malformed user id and a wrapped database error otherwise.
func (s *Service) Profile(ctx context.Context, userID string) (Profile, error) {
	const op = "compliance.Profile"
	if err := checkUserID(op, userID); err != nil {
		return Profile{}, err
	}
	p, err := s.profileFrom(ctx, s.db, userID)
	return p, errs.Wrap(op, err)
}

// querier is what *sqlstore.DB and *sqlstore.Tx share for reading.
type querier interface {
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// profileFrom is the stored profile or the default, with the default
// country when the profile has none.
func (s *Service) profileFrom(ctx context.Context, q querier, userID string) (Profile, error) {
	p, err := storedProfile(ctx, q, userID, "")
	if errs.Is(err, errs.NotFound) {
		return Profile{UserID: userID, Level: s.opt.DefaultKYCLevel, Country: s.opt.DefaultCountry}, nil
	}
	if p.Country == "" {
		p.Country = s.opt.DefaultCountry
	}
	return p, err
}

// storedProfile reads a user's profile; lock is appended to the query
// (tx.ForUpdate() or ""). It returns errs.NotFound when there is none.
func storedProfile(ctx context.Context, q querier, userID, lock string) (Profile, error) {
	p := Profile{UserID: userID, Stored: true}
	var at int64
	err := q.QueryRow(ctx, `SELECT level, country, source, reference, updated_by, updated_at FROM compliance_kyc WHERE user_id = ?`+lock, userID).Scan(&p.Level, &p.Country, &p.Source, &p.Reference, &p.UpdatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Profile{}, errs.E(errs.NotFound, "compliance.profile", "no KYC profile")
	}
	if err != nil {
		return Profile{}, errs.Wrap("compliance.profile", err)
	}
	p.UpdatedAt = sqlstore.FromMicros(at)
	return p, nil
}

// KYCHistory returns the changes of a user's profile, oldest first. It
// returns errs.Invalid for a malformed user id and a wrapped database
// error otherwise.
func (s *Service) KYCHistory(ctx context.Context, userID string) ([]KYCChange, error) {
	const op = "compliance.KYCHistory"
	if err := checkUserID(op, userID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT level, country, source, reference, previous_level, previous_country, actor, at
		FROM compliance_kyc_history WHERE user_id = ? ORDER BY seq`, userID)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []KYCChange
	for rows.Next() {
		c := KYCChange{UserID: userID}
		var prev sql.NullInt64
		var at int64
		if err := rows.Scan(&c.Level, &c.Country, &c.Source, &c.Reference, &prev, &c.PreviousCountry, &c.Actor, &at); err != nil {
			return nil, errs.Wrap(op, err)
		}
		c.PreviousLevel = -1
		if prev.Valid {
			c.PreviousLevel = int(prev.Int64)
		}
		c.At = sqlstore.FromMicros(at)
		out = append(out, c)
	}
	return out, errs.Wrap(op, rows.Err())
}
