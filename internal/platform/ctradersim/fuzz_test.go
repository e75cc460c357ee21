package ctradersim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func FuzzParseFaultSpec(f *testing.F) {
	for _, s := range []string{"changebalance:drop=0.05", "*:latency=2s@0.5,error=0.1@503/UNKNOWN_ERROR", "redeem:apply-timeout=1@1ms", "x:", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		var c FaultConfig
		if ParseFaultSpec(spec, &c) == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("ParseFaultSpec(%q) accepted a config Validate refuses: %v", spec, err)
			}
		}
	})
}

// FuzzChangeBalanceBody sends arbitrary bodies to changebalance. Whatever
// arrives, the answer is a 4xx or a 200, money moves only on a 200, and no
// balance goes below zero.
func FuzzChangeBalanceBody(f *testing.F) {
	for _, s := range []string{
		`{"login":3000001,"preciseAmount":1.5,"type":"DEPOSIT","externalId":"a"}`,
		`{"login":3000001,"preciseAmount":99.99,"type":"WITHDRAW"}`,
		`{"login":3000001,"preciseAmount":-1,"type":"WITHDRAW"}`,
		`{"login":3000001,"preciseAmount":1e308,"type":"DEPOSIT"}`,
		`{"login":3000001,"preciseAmount":"1","type":"DEPOSIT_NONWITHDRAWABLE_BONUS"}`,
		`{"login":3000001,"preciseAmount":0.1,"type":"WITHDRAW_NONWITHDRAWABLE_BONUS"}`,
		`[]`, ``, `{"login":`,
	} {
		f.Add(s)
	}
	s, err := New(Config{Seed: Seed{
		Managers: []Manager{{Login: 1, Password: "pw"}},
		Traders:  []TraderSeed{{Login: 3000001, Currency: "USD", Balance: "100.00", Password: "x"}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	s.mu.Lock()
	tok, _ := s.st.login(1, md5Hex("pw"))
	s.mu.Unlock()
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		before, _ := s.Trader(3000001)
		req := httptest.NewRequest(http.MethodPost, "/v2/webserv/traders/3000001/changebalance?token="+tok, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after, _ := s.Trader(3000001)
		moved := !before.Balance.Equal(after.Balance) || !before.NonWithdrawableBonus.Equal(after.NonWithdrawableBonus)
		switch {
		case rec.Code != 200 && (rec.Code < 400 || rec.Code > 499):
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		case moved != (rec.Code == 200):
			t.Fatalf("status %d but money moved=%v for %q", rec.Code, moved, body)
		case after.Balance.IsNegative() || after.NonWithdrawableBonus.IsNegative():
			t.Fatalf("negative figures after %q: %+v", body, after)
		}
	})
}
