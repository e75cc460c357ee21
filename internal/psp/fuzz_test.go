package psp

import (
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// FuzzVerify feeds arbitrary signature headers and bodies to Verify: it
// must not panic, must answer only with the documented codes, and must
// never accept a header that Sign did not make for this body.
func FuzzVerify(f *testing.F) {
	secret := []byte("whsec_fuzz")
	now := time.Unix(1772445600, 0)
	f.Add(Sign(secret, now, []byte(`{"id":"evt_1"}`)), []byte(`{"id":"evt_1"}`))
	f.Add("t=1772445600,v1=00", []byte(`{}`))
	f.Add("t=,v1=", []byte(nil))
	f.Add("v1=abc,t=1,t=2,v1=zz", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := Verify(secret, header, body, now, DefaultTolerance)
		switch errs.CodeOf(err) {
		case "":
			// Accepted: the header must carry the right MAC for some
			// timestamp within the tolerance, which only Sign produces.
			ok := false
			for d := -DefaultTolerance; d <= DefaultTolerance; d += time.Second {
				want := Sign(secret, now.Add(d), body)
				// Hex digits may come in either case.
				if containsSig(strings.ToLower(header), want[len("t=1772445600,"):]) {
					ok = true
					break
				}
			}
			if !ok {
				t.Fatalf("Verify accepted a header Sign never made: %q", header)
			}
		case errs.Unauthorized, errs.Expired:
		default:
			t.Fatalf("Verify answered %v", err)
		}
	})
}

func containsSig(header, sig string) bool { return strings.Contains(header, sig) }
