package kycapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpapi/kycapi"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

var ctx = context.Background()

const key = "kyc-key-0123456789abcdef0123456789abcdef"

// users is a fake user directory.
type users map[string]bool

func (u users) UserByID(_ context.Context, id string) (identity.User, error) {
	if !u[id] {
		return identity.User{}, errs.E(errs.NotFound, "users", "no such user")
	}
	return identity.User{ID: id}, nil
}

type recorder struct {
	mu      sync.Mutex
	records []audit.Record
}

func (r *recorder) RecordTx(_ context.Context, tx *sqlstore.Tx, rec audit.Record) error {
	tx.AfterCommit(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.records = append(r.records, rec)
	})
	return nil
}

type server struct {
	t   *testing.T
	url string
	svc *compliance.Service
	rec *recorder
	clk *clock.Fake
}

func newServer(t *testing.T, db *sqlstore.DB, opt kycapi.Options) *server {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC))
	rec := &recorder{}
	svc, err := compliance.New(db, compliance.Options{Clock: clk, Audit: rec, DefaultCountry: "GB"})
	if err != nil {
		t.Fatal(err)
	}
	opt.Logger = slog.New(slog.DiscardHandler)
	h, err := kycapi.New(svc, opt)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return &server{t: t, url: srv.URL, svc: svc, rec: rec, clk: clk}
}

type answer struct {
	status  int
	header  http.Header
	body    string
	problem httpx.Problem
}

func (s *server) do(method, path, auth, contentType, body string) answer {
	s.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	a := answer{status: res.StatusCode, header: res.Header, body: string(b)}
	if res.Header.Get("Content-Type") == "application/problem+json" {
		if err := json.Unmarshal(b, &a.problem); err != nil {
			s.t.Fatalf("problem body %q: %v", b, err)
		}
		if a.problem.Status != res.StatusCode {
			s.t.Errorf("problem status %d on a %d answer", a.problem.Status, res.StatusCode)
		}
	}
	return a
}

func (s *server) put(path, body string) answer {
	return s.do(http.MethodPut, path, "Bearer "+key, "application/json", body)
}

func (s *server) get(path string) answer {
	return s.do(http.MethodGet, path, "Bearer "+key, "", "")
}

func wantProfile(t *testing.T, a answer, want kycapi.ProfileJSON) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var got kycapi.ProfileJSON
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}
}

func TestSetAndReadAProfile(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s := newServer(t, db, kycapi.Options{APIKey: key, Users: users{"usr_anna": true}})
		wantProfile(t, s.get("/api/kyc/v1/users/usr_anna"), kycapi.ProfileJSON{UserID: "usr_anna", Country: "GB", Source: "default"})

		a := s.put("/api/kyc/v1/users/usr_anna", `{"level": 2, "country": "de", "reference": "case-8812"}`)
		at := s.clk.Now()
		want := kycapi.ProfileJSON{UserID: "usr_anna", Level: 2, Country: "DE", Source: "api", Reference: "case-8812", UpdatedBy: kycapi.Actor, UpdatedAt: &at}
		wantProfile(t, a, want)
		if !strings.Contains(a.body, `"updatedAt":"2026-11-21T14:00:00Z"`) {
			t.Errorf("updatedAt is not RFC 3339 UTC: %s", a.body)
		}
		if a.header.Get("Cache-Control") == "" {
			t.Error("the answer may be cached")
		}
		wantProfile(t, s.get("/api/kyc/v1/users/usr_anna"), want)

		p, err := s.svc.Profile(ctx, "usr_anna")
		if err != nil || p.Level != 2 || p.Country != "DE" || p.Source != compliance.SourceAPI {
			t.Errorf("stored profile %+v, %v", p, err)
		}
		wantAudit := []audit.Record{{Actor: "broker:kyc-api", Action: "kyc.changed", Subject: "user:usr_anna",
			Detail: map[string]string{"level": "2", "country": "DE", "source": "api", "reference": "case-8812"}}}
		if diff := cmp.Diff(wantAudit, s.rec.records); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}

		// A user the cashier does not know: 404, nothing stored.
		for _, a := range []answer{s.get("/api/kyc/v1/users/usr_ghost"), s.put("/api/kyc/v1/users/usr_ghost", `{"level": 1, "country": "DE"}`)} {
			if a.status != http.StatusNotFound || a.problem.Code != "ENOTFOUND" || !strings.Contains(a.problem.Detail, "usr_ghost") {
				t.Errorf("unknown user: %d %s", a.status, a.body)
			}
		}
		if p, _ := s.svc.Profile(ctx, "usr_ghost"); p.Stored {
			t.Error("a profile was stored for an unknown user")
		}
	}, compliance.Schema)
}

func TestAuthenticationAndRouting(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s := newServer(t, db, kycapi.Options{APIKey: key})
		path := "/api/kyc/v1/users/usr_anna"
		body := `{"level": 3, "country": "DE"}`
		for _, tc := range []struct {
			name, auth string
		}{
			{"no key", ""},
			{"wrong key", "Bearer " + strings.Repeat("x", len(key))},
			{"key prefix", "Bearer " + key[:len(key)-1]},
			{"key with more", "Bearer " + key + "x"},
			{"basic scheme", "Basic " + key},
			{"bearer without a token", "Bearer "},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, a := range []answer{s.do(http.MethodPut, path, tc.auth, "application/json", body), s.do(http.MethodGet, path, tc.auth, "", "")} {
					if a.status != http.StatusUnauthorized || a.problem.Code != "EUNAUTHORIZED" || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%d %v %s", a.status, a.header, a.body)
					}
				}
			})
		}
		if p, _ := s.svc.Profile(ctx, "usr_anna"); p.Stored {
			t.Error("an unauthenticated PUT stored a profile")
		}

		a := s.do(http.MethodPost, path, "Bearer "+key, "application/json", body)
		if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "GET, HEAD, PUT" || a.problem.Status != http.StatusMethodNotAllowed {
			t.Errorf("POST: %d %v %s", a.status, a.header, a.body)
		}
		for _, p := range []string{"/api/kyc/v1/users/", "/api/kyc/v1/users/a/b", "/api/kyc/v2/users/usr_anna"} {
			if a := s.get(p); a.status != http.StatusNotFound || a.problem.Code != "ENOTFOUND" {
				t.Errorf("GET %s: %d %s", p, a.status, a.body)
			}
		}
	}, compliance.Schema)
}

func TestWithoutAKeyTheAPIIsOff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s := newServer(t, db, kycapi.Options{})
		for _, a := range []answer{
			s.do(http.MethodGet, "/api/kyc/v1/users/usr_anna", "", "", ""),
			s.do(http.MethodPut, "/api/kyc/v1/users/usr_anna", "Bearer ", "application/json", `{"level": 3, "country": "DE"}`),
		} {
			if a.status != http.StatusNotFound || a.problem.Code != "ENOTFOUND" {
				t.Errorf("%d %s", a.status, a.body)
			}
		}
		if p, _ := s.svc.Profile(ctx, "usr_anna"); p.Stored {
			t.Error("the disabled API stored a profile")
		}
	}, compliance.Schema)

	if _, err := kycapi.New(nil, kycapi.Options{}); !errs.Is(err, errs.Invalid) {
		t.Errorf("New without a service: %v", err)
	}
	svc, err := compliance.New(new(sqlstore.DB), compliance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kycapi.New(svc, kycapi.Options{APIKey: "short"}); !errs.Is(err, errs.Invalid) {
		t.Errorf("New with a short key: %v", err)
	}
}

func TestPutRefusesBadRequests(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s := newServer(t, db, kycapi.Options{APIKey: key, MaxBodyBytes: 512})
		path := "/api/kyc/v1/users/usr_anna"
		for _, tc := range []struct {
			name, contentType, body string
			status                  int
			detail                  string
		}{
			{"empty body", "application/json", "", 400, "empty"},
			{"malformed JSON", "application/json", `{"level": 2,`, 400, "malformed JSON"},
			{"unknown field", "application/json", `{"level": 2, "country": "DE", "tier": "gold"}`, 400, `unknown field "tier"`},
			{"no level", "application/json", `{"country": "DE"}`, 400, `"level" is required`},
			{"fractional level", "application/json", `{"level": 2.5, "country": "DE"}`, 400, "whole number from 0 to 3, not 2.5"},
			{"level as a string", "application/json", `{"level": "2", "country": "DE"}`, 400, "level"},
			{"level above the top", "application/json", `{"level": 4, "country": "DE"}`, 400, "between 0 and 3"},
			{"negative level", "application/json", `{"level": -1, "country": "DE"}`, 400, "between 0 and 3"},
			{"no country", "application/json", `{"level": 1}`, 400, `"country" is required`},
			{"three-letter country", "application/json", `{"level": 1, "country": "DEU"}`, 400, "alpha-2"},
			{"long reference", "application/json", `{"level": 1, "country": "DE", "reference": "` + strings.Repeat("r", 201) + `"}`, 400, "at most 200"},
			{"form content type", "application/x-www-form-urlencoded", `{"level": 1, "country": "DE"}`, 400, "Content-Type"},
			{"body above the limit", "application/json", `{"level": 1, "country": "DE", "reference": "` + strings.Repeat("r", 600) + `"}`, 413, "larger than 512 bytes"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := s.do(http.MethodPut, path, "Bearer "+key, tc.contentType, tc.body)
				if a.status != tc.status || a.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(a.problem.Detail, tc.detail) {
					t.Errorf("%d %q, want %d with %q", a.status, a.body, tc.status, tc.detail)
				}
			})
		}
		if p, _ := s.svc.Profile(ctx, "usr_anna"); p.Stored {
			t.Error("a refused PUT stored a profile")
		}
	}, compliance.Schema)
}
