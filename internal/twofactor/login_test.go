package twofactor_test

import (
	"context"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/twofactor"
)

func TestLoginFactor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		r := newRig(t, db)
		lf := twofactor.LoginFactor{Service: r.svc}

		t.Run("not enrolled", func(t *testing.T) {
			if ok, err := lf.Enrolled(ctx, "usr_plain"); ok || err != nil {
				t.Fatalf("Enrolled = %v, %v", ok, err)
			}
		})

		t.Run("email: first attempt sends, second carries the code", func(t *testing.T) {
			if _, err := r.svc.Enrol(ctx, "usr_e", twofactor.Recipient{Method: twofactor.Email, Email: "eve@example.com"}); err != nil {
				t.Fatal(err)
			}
			wantCode(t, lf.Verify(ctx, "usr_e", "123456"), errs.Unauthorized)
			if ok, err := lf.Enrolled(ctx, "usr_e"); !ok || err != nil {
				t.Fatalf("Enrolled = %v, %v", ok, err)
			}
			code := r.mailedCode(t, "eve@example.com")
			n := len(r.box.Messages())
			// The second attempt does not send another code.
			if ok, _ := lf.Enrolled(ctx, "usr_e"); !ok || len(r.box.Messages()) != n {
				t.Fatalf("a second code was sent")
			}
			wantCode(t, lf.Verify(ctx, "usr_e", wrongSix(code)), errs.Unauthorized)
			if err := lf.Verify(ctx, "usr_e", code); err != nil {
				t.Fatal(err)
			}
			wantCode(t, lf.Verify(ctx, "usr_e", code), errs.Unauthorized)
		})

		t.Run("google with replay guard", func(t *testing.T) {
			setup, err := r.svc.BeginTOTP(ctx, "usr_t", "tom@example.com")
			if err != nil {
				t.Fatal(err)
			}
			gen := func() string { c, _ := totp.GenerateCode(setup.Secret, r.clock.Now()); return c }
			if _, err := r.svc.ConfirmTOTP(ctx, "usr_t", gen()); err != nil {
				t.Fatal(err)
			}
			if ok, err := lf.Enrolled(ctx, "usr_t"); !ok || err != nil {
				t.Fatalf("Enrolled = %v, %v", ok, err)
			}
			r.clock.Advance(30 * time.Second)
			code := gen()
			if err := lf.Verify(ctx, "usr_t", code); err != nil {
				t.Fatal(err)
			}
			wantCode(t, lf.Verify(ctx, "usr_t", code), errs.Unauthorized)
		})
	}, twofactor.Schema)
}

func wrongSix(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}
