package push_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

func TestCommandListShowResolve(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		h := newHarness(t, db, false)
		ctx := context.Background()
		h.fake.script["psh_doubt"] = []outcome{applyThenTimeout}
		h.enqueue(t, "psh_doubt")
		h.enqueue(t, "psh_ok")
		h.runDue(t)

		run := func(args ...string) (string, error) {
			var out, errOut bytes.Buffer
			err := push.Command(ctx, h.svc, args, &out, &errOut)
			return out.String(), err
		}
		out, err := run("list", "-state", "in_doubt")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "psh_doubt") || strings.Contains(out, "psh_ok") {
			t.Errorf("list -state in_doubt:\n%s", out)
		}
		out, err = run("show", "psh_doubt")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"state: in_doubt", "timeout after 10s", "queued -> sending", "sending -> in_doubt"} {
			if !strings.Contains(out, want) {
				t.Errorf("show lacks %q:\n%s", want, out)
			}
		}
		if _, err := run("resolve", "psh_doubt", "maybe", "-by", "ana"); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("bad verdict: err = %v", err)
		}
		if _, err := run("list", "-state", "lost"); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("bad state: err = %v", err)
		}
		out, err = run("resolve", "psh_doubt", "applied", "-by", "ana", "-note", "seen in balance history")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) != "push psh_doubt is now resolved_applied" {
			t.Errorf("resolve printed %q", out)
		}
	}, jobs.Schema, push.Schema)
}
