package identity

import (
	"strings"
	"testing"
)

func TestWellFormedToken(t *testing.T) {
	plain, hash, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	if !WellFormedToken(plain) || len(hash) != 64 || hash == plain {
		t.Fatalf("token %q hash %q", plain, hash)
	}
	for _, bad := range []string{"", "abc", plain + "A", plain[:42] + "+", plain[:42] + "/", strings.Repeat("=", 43)} {
		if WellFormedToken(bad) {
			t.Errorf("WellFormedToken(%q) = true", bad)
		}
	}
}
