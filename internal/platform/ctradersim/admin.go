package ctradersim

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
)

// adminHandler serves the /_sim/ admin API. Its errors are RFC 9457
// problem documents. With Config.AdminToken set, every call needs
// "Authorization: Bearer {AdminToken}".
func (s *Sim) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/traders", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, 200, s.Traders())
	})
	mux.HandleFunc("GET /_sim/traders/{login}", func(w http.ResponseWriter, r *http.Request) {
		login, err := adminLogin(r)
		if err == nil {
			var t TraderInfo
			if t, err = s.Trader(login); err == nil {
				httpx.WriteJSON(w, 200, t)
				return
			}
		}
		httpx.WriteProblem(w, r, err)
	})
	mux.HandleFunc("PUT /_sim/traders/{login}/positions", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			UnrealizedPnL string `json:"unrealizedPnl"`
			UsedMargin    string `json:"usedMargin"`
		}
		login, err := adminLogin(r)
		if err == nil {
			err = httpx.DecodeJSON(w, r, &in, httpx.DecodeOptions{})
		}
		if err == nil {
			var t TraderInfo
			if t, err = s.SetPositions(login, in.UnrealizedPnL, in.UsedMargin); err == nil {
				httpx.WriteJSON(w, 200, t)
				return
			}
		}
		httpx.WriteProblem(w, r, err)
	})
	mux.HandleFunc("GET /_sim/traders/{login}/history", func(w http.ResponseWriter, r *http.Request) {
		login, err := adminLogin(r)
		if err == nil {
			var h []HistoryEntry
			if h, err = s.History(login); err == nil {
				httpx.WriteJSON(w, 200, h)
				return
			}
		}
		httpx.WriteProblem(w, r, err)
	})
	mux.HandleFunc("GET /_sim/users", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, 200, s.Users())
	})
	mux.HandleFunc("POST /_sim/handoff", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			UserID       int64 `json:"userId"`
			TradingLogin int64 `json:"tradingLogin"`
		}
		if err := httpx.DecodeJSON(w, r, &in, httpx.DecodeOptions{}); err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
		tok, exp, err := s.IssueHandoffToken(in.UserID, in.TradingLogin)
		if err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
		httpx.WriteJSON(w, 201, map[string]any{"token": tok, "expiresAt": exp.Format(time.RFC3339Nano)})
	})
	mux.HandleFunc("POST /_sim/managers/expire-tokens", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireManagerTokens()
		w.WriteHeader(204)
	})
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, 200, s.Faults())
	})
	mux.HandleFunc("PUT /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var c FaultConfig
		err := httpx.DecodeJSON(w, r, &c, httpx.DecodeOptions{})
		if err == nil {
			err = s.SetFaults(c)
		}
		if err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
		httpx.WriteJSON(w, 200, s.Faults())
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, 200, s.Stats())
	})
	mux.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Reset(); err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
		w.WriteHeader(204)
	})
	mux.HandleFunc("GET /_sim/app", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, 200, s.AppState())
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AdminToken != "" {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.AdminToken)) != 1 {
				httpx.WriteProblem(w, r, errs.E(errs.Unauthorized, "ctradersim.admin", "the admin API needs Authorization: Bearer {admin token}"))
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

func adminLogin(r *http.Request) (int64, error) {
	login, err := strconv.ParseInt(r.PathValue("login"), 10, 64)
	if err != nil {
		return 0, errs.Ef(errs.Invalid, "ctradersim.admin", "login %q is not a number", r.PathValue("login"))
	}
	return login, nil
}
