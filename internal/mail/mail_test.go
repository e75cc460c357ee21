package mail_test

import (
	"bufio"
	"context"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/mail"
)

// fakeSMTP accepts one session on 127.0.0.1 and reports the envelope and
// data it received.
type session struct {
	from, rcpt, data string
}

func fakeSMTP(t *testing.T) (port int, got <-chan session) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan session, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		say := func(s string) { io.WriteString(conn, s+"\r\n") }
		var s session
		say("220 fake ESMTP")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.TrimRight(line, "\r\n")
			switch {
			case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
				say("250-fake")
				say("250 8BITMIME")
			case strings.HasPrefix(cmd, "MAIL FROM:"):
				s.from = strings.TrimPrefix(cmd, "MAIL FROM:")
				say("250 ok")
			case strings.HasPrefix(cmd, "RCPT TO:"):
				s.rcpt = strings.TrimPrefix(cmd, "RCPT TO:")
				say("250 ok")
			case cmd == "DATA":
				say("354 go on")
				var b strings.Builder
				for {
					l, err := r.ReadString('\n')
					if err != nil || l == ".\r\n" {
						break
					}
					b.WriteString(l)
				}
				s.data = b.String()
				say("250 queued")
			case cmd == "QUIT":
				say("221 bye")
				ch <- s
				return
			default:
				say("502 unknown")
			}
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, ch
}

func TestSMTPSend(t *testing.T) {
	port, got := fakeSMTP(t)
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: port, From: "Broker <no-reply@broker.example>"})
	if err != nil {
		t.Fatal(err)
	}
	text := "Hallo Jürgen,\nöffnen Sie https://broker.example/auth/reset/confirm?token=abc\n"
	if err := m.Send(context.Background(), mail.Message{To: "juergen@example.com", Subject: "Passwort zurücksetzen", Text: text}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	s := <-got
	if !strings.HasPrefix(s.from, "<no-reply@broker.example>") || s.rcpt != "<juergen@example.com>" {
		t.Errorf("envelope from %q to %q", s.from, s.rcpt)
	}
	head, body, ok := strings.Cut(s.data, "\r\n\r\n")
	if !ok {
		t.Fatalf("no header/body split in %q", s.data)
	}
	for _, want := range []string{"To: juergen@example.com", "Subject: =?utf-8?q?Passwort_zur=C3=BCcksetzen?=", "Content-Type: text/plain; charset=utf-8"} {
		if !strings.Contains(head, want) {
			t.Errorf("header lacks %q:\n%s", want, head)
		}
	}
	decoded, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(decoded), "öffnen Sie https://broker.example/auth/reset/confirm?token=abc") {
		t.Errorf("body does not carry the text: %q", decoded)
	}
}

func TestSMTPErrors(t *testing.T) {
	if _, err := mail.NewSMTP(mail.SMTPConfig{From: "a@b.example"}); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("missing host: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: port, From: "a@b.example"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  mail.Message
		want errs.Code
	}{
		{"header injection", mail.Message{To: "x@example.com", Subject: "hi\r\nBcc: all@example.com"}, errs.Invalid},
		{"bad recipient", mail.Message{To: "not an address", Subject: "hi"}, errs.Invalid},
		{"server down", mail.Message{To: "x@example.com", Subject: "hi"}, errs.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errs.CodeOf(m.Send(context.Background(), tc.msg)); got != tc.want {
				t.Errorf("code = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMailboxPage(t *testing.T) {
	box := mail.NewMailbox(2, nil)
	for i, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if err := box.Send(context.Background(), mail.Message{To: to, Subject: "Message " + strconv.Itoa(i+1), Text: "<b>link</b>"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(box.Messages()); n != 2 {
		t.Errorf("kept %d messages, want the last 2", n)
	}
	if m, ok := box.Last("c@example.com"); !ok || m.Mail.Subject != "Message 3" {
		t.Errorf("Last = %+v, %v", m, ok)
	}
	srv := httptest.NewServer(http.StripPrefix("/_demo/mail", box.Handler()))
	defer srv.Close()
	get := func(path string) (int, string) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	status, list := get("/_demo/mail/")
	if status != 200 || !strings.Contains(list, "Message 3") || strings.Contains(list, "Message 1") {
		t.Errorf("list page %d:\n%s", status, list)
	}
	status, one := get("/_demo/mail/3")
	if status != 200 || !strings.Contains(one, "&lt;b&gt;link&lt;/b&gt;") {
		t.Errorf("message page %d does not show the escaped text:\n%s", status, one)
	}
	if status, _ := get("/_demo/mail/1"); status != 404 {
		t.Errorf("dropped message: status %d, want 404", status)
	}
}
