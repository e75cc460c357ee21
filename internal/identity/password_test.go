package identity

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	p := PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	h, err := hashPassword("correct horse", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q does not record its parameters", h)
	}
	h2, _ := hashPassword("correct horse", p)
	if h == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name, hash, password string
		want                 bool
	}{
		{"right password", h, "correct horse", true},
		{"wrong password", h, "correct horse ", false},
		{"empty hash", "", "correct horse", false},
		{"bcrypt-looking hash", "$2a$10$abcdefghijklmnopqrstuv", "correct horse", false},
		{"zero memory", strings.Replace(h, "m=64", "m=0", 1), "correct horse", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkPassword(tc.hash, tc.password); got != tc.want {
				t.Errorf("checkPassword = %v, want %v", got, tc.want)
			}
		})
	}
}

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
