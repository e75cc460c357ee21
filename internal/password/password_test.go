package password

import (
	"strings"
	"testing"
)

func TestHashAndCheck(t *testing.T) {
	p := Params{MemoryKiB: 64, Time: 1, Threads: 1}
	h, err := Hash("correct horse", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q does not record its parameters", h)
	}
	h2, _ := Hash("correct horse", p)
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
			if got := Check(tc.hash, tc.password); got != tc.want {
				t.Errorf("Check = %v, want %v", got, tc.want)
			}
		})
	}
}
