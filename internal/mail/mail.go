// Package mail sends e-mail: a Mailer interface, an SMTP implementation on
// net/smtp, and a Mailbox that keeps mail in memory and shows it on a page
// (for the demo and for tests).
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// Message is one plain-text e-mail.
type Message struct {
	To      string
	Subject string
	Text    string
}

// Mailer sends messages. Send returns errs.Invalid for a message that cannot
// be sent as it is (bad address, header injection) and errs.Unavailable
// when the mail server cannot be reached or refuses.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

func (m Message) check(op string) error {
	if strings.ContainsAny(m.To+m.Subject, "\r\n") {
		return errs.E(errs.Invalid, op, "recipient or subject contains a line break")
	}
	if _, err := mail.ParseAddress(m.To); err != nil {
		return errs.Ef(errs.Invalid, op, "%q is not an e-mail address", m.To)
	}
	return nil
}

// SMTPConfig configures an SMTP mailer.
type SMTPConfig struct {
	Host     string // server host name
	Port     int    // default 587
	Username string // empty: no authentication
	Password string
	From     string // sender address, e.g. "Broker <no-reply@broker.example>"
	// RequireTLS refuses to send when the server does not offer STARTTLS
	// (net/smtp also refuses to send a password in the clear except to
	// localhost).
	RequireTLS bool
	Timeout    time.Duration // per message; default 30s
}

// SMTP sends mail through an SMTP server.
type SMTP struct {
	cfg  SMTPConfig
	from *mail.Address
}

// NewSMTP returns an SMTP mailer. It returns errs.Invalid for a missing host
// or a bad sender address.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	const op = "mail.NewSMTP"
	if cfg.Host == "" {
		return nil, errs.E(errs.Invalid, op, "SMTP host is required")
	}
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, errs.Ef(errs.Invalid, op, "sender %q is not an e-mail address", cfg.From)
	}
	return &SMTP{cfg: cfg, from: from}, nil
}

// Send delivers m to the server: STARTTLS when offered (required with
// RequireTLS), PLAIN authentication when a user name is set.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	const op = "mail.SMTP.Send"
	if err := m.check(op); err != nil {
		return err
	}
	body, err := compose(s.from, m, time.Now())
	if err != nil {
		return errs.Wrap(op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	addr := net.JoinHostPort(s.cfg.Host, fmt.Sprint(s.cfg.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return &errs.Error{Code: errs.Unavailable, Op: op, Message: "mail server is not reachable", Err: err}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		_ = conn.Close()
		return unavailable(op, err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: s.cfg.Host, MinVersion: tls.VersionTLS12}); err != nil {
			return unavailable(op, err)
		}
	} else if s.cfg.RequireTLS {
		return errs.E(errs.Unavailable, op, "mail server does not offer STARTTLS")
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return unavailable(op, err)
		}
	}
	to, _ := mail.ParseAddress(m.To)
	if err := c.Mail(s.from.Address); err != nil {
		return unavailable(op, err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return unavailable(op, err)
	}
	w, err := c.Data()
	if err != nil {
		return unavailable(op, err)
	}
	if _, err := w.Write(body); err != nil {
		return unavailable(op, err)
	}
	if err := w.Close(); err != nil {
		return unavailable(op, err)
	}
	return unavailable(op, c.Quit())
}

func unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	return &errs.Error{Code: errs.Unavailable, Op: op, Message: "mail server refused the message", Err: err}
}

// compose renders the message as RFC 5322 text, UTF-8, quoted-printable.
func compose(from *mail.Address, m Message, now time.Time) ([]byte, error) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	domain := "localhost"
	if i := strings.LastIndexByte(from.Address, '@'); i >= 0 {
		domain = from.Address[i+1:]
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", from.String())
	fmt.Fprintf(&b, "To: %s\r\n", m.To)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", m.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", hex.EncodeToString(id[:]), domain)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}
