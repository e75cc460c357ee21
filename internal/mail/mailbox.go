package mail

import (
	"context"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/opencashier/cashier/internal/clock"
)

// Stored is a message kept by a Mailbox.
type Stored struct {
	ID   int
	At   time.Time
	Mail Message
}

// Mailbox is a Mailer that keeps the last messages in memory and shows them
// on a page: the demo's stand-in for a mail server. It is safe for
// concurrent use.
type Mailbox struct {
	mu    sync.Mutex
	clock clock.Clock
	limit int
	next  int
	msgs  []Stored
}

// NewMailbox returns a mailbox keeping the last limit messages (default
// 200). A nil clock means the system clock.
func NewMailbox(limit int, c clock.Clock) *Mailbox {
	if limit <= 0 {
		limit = 200
	}
	if c == nil {
		c = clock.System{}
	}
	return &Mailbox{clock: c, limit: limit}
}

// Send stores m. It returns errs.Invalid for a bad recipient or a header
// with a line break, like the SMTP mailer.
func (b *Mailbox) Send(_ context.Context, m Message) error {
	if err := m.check("mail.Mailbox.Send"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	b.msgs = append(b.msgs, Stored{ID: b.next, At: b.clock.Now(), Mail: m})
	if len(b.msgs) > b.limit {
		b.msgs = slices.Clone(b.msgs[len(b.msgs)-b.limit:])
	}
	return nil
}

// Messages returns the stored messages, newest first.
func (b *Mailbox) Messages() []Stored {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.msgs)
	slices.Reverse(out)
	return out
}

// Last returns the newest message sent to the address, if any.
func (b *Mailbox) Last(to string) (Stored, bool) {
	for _, m := range b.Messages() {
		if m.Mail.To == to {
			return m, true
		}
	}
	return Stored{}, false
}

var pages = template.Must(template.New("list").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo mailbox</title></head><body>
<h1>Demo mailbox</h1>
<p>Mail the demo would have sent. Nothing here left this machine.</p>
{{if .}}<ul>{{range .}}<li><a href="{{.ID}}">{{.At.Format "2006-01-02 15:04:05"}} — {{.Mail.To}} — {{.Mail.Subject}}</a></li>{{end}}</ul>
{{else}}<p>No mail yet.</p>{{end}}
</body></html>`))

var onePage = template.Must(template.New("one").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Mail.Subject}}</title></head><body>
<p><a href="./">All mail</a></p>
<dl><dt>To</dt><dd>{{.Mail.To}}</dd><dt>Subject</dt><dd>{{.Mail.Subject}}</dd><dt>Sent</dt><dd>{{.At.Format "2006-01-02 15:04:05 MST"}}</dd></dl>
<pre>{{.Mail.Text}}</pre>
</body></html>`))

// Handler serves the mailbox pages: the list at "/" and one message at
// "/{id}", relative to where it is mounted (use http.StripPrefix). Links in
// the mail text are shown as text; copy them to follow.
func (b *Mailbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		render(w, pages, b.Messages())
	})
	mux.HandleFunc("GET /{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err == nil {
			for _, m := range b.Messages() {
				if m.ID == id {
					render(w, onePage, m)
					return
				}
			}
		}
		http.NotFound(w, r)
	})
	return mux
}

func render(w http.ResponseWriter, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := t.Execute(w, data); err != nil {
		http.Error(w, "mailbox page failed", http.StatusInternalServerError)
	}
}
