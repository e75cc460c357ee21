package identity_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// trail is a fake audit.Recorder keeping "actor action subject count".
type trail struct {
	mu   sync.Mutex
	recs []string
}

func (tr *trail) RecordTx(_ context.Context, _ *sqlstore.Tx, r audit.Record) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.recs = append(tr.recs, r.Actor+" "+r.Action+" "+r.Subject+" "+r.Detail["count"])
	return nil
}

func TestTokenRevocationsAreAudited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		tr := &trail{}
		ct := identitytest.NewCTrader()
		svc, err := identity.New(identity.Deps{DB: db, Clock: clock.NewFake(identitytest.Start), Provisioner: ct, Traders: ct,
			Redeemer: ct, Lookup: ct, Logger: slog.New(slog.DiscardHandler), Audit: tr},
			identity.Config{CRMPasswords: []string{identitytest.CRMPassword}, Password: identitytest.FastPasswords})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.IssueCRMToken(ctx, identitytest.CRMPassword); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RevokeCRMTokens(ctx); err != nil {
			t.Fatal(err)
		}
		res := signUp(t, svc, "audit@example.com", true)
		ex, err := svc.ExchangeLoginToken(ctx, res.LoginToken)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.RevokeAccessToken(ctx, ex.AccessToken); err != nil {
			t.Fatal(err)
		}
		again, err := svc.Login(ctx, "audit@example.com", "correct horse", true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ExchangeLoginToken(ctx, again.LoginToken); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Logout(ctx, res.User.CTIDUserID, ""); err != nil {
			t.Fatal(err)
		}
		user := "user:" + res.User.ID
		want := []string{
			"operator token.revoked crmApiToken 1",
			"ctrader token.revoked " + user + " 2", // the access token and its inapp token
			"system token.revoked " + user + " 2",  // logout: the second login's access and inapp tokens
		}
		if diff := cmp.Diff(want, tr.recs); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
	}, identity.Schema)
}
