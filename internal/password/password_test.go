package password

import (
	"fmt"
	"strings"
	"sync"
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

// TestConcurrentHashesAreBounded starts more hashes than there are slots
// and checks that no more than the slots ever ran at once, and that every
// hash still came out right.
func TestConcurrentHashesAreBounded(t *testing.T) {
	old := slots
	slots = make(chan struct{}, 2)
	mostRunning.Store(0)
	t.Cleanup(func() { slots = old })

	p := Params{MemoryKiB: 2048, Time: 1, Threads: 1}
	const n = 12
	var wg sync.WaitGroup
	hashes := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hashes[i], _ = Hash(fmt.Sprintf("password %d", i), p)
		}()
	}
	wg.Wait()
	if most := mostRunning.Load(); most < 1 || most > 2 {
		t.Errorf("at most %d hashes ran at once, want 1 or 2 (the slots)", most)
	}
	for i, h := range hashes {
		if !Check(h, fmt.Sprintf("password %d", i)) {
			t.Errorf("hash %d does not check against its password", i)
		}
	}
}

func TestCheckRefusesAHashAskingForTooMuchMemory(t *testing.T) {
	h, err := Hash("pw", Params{MemoryKiB: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Replace(h, "m=64,", "m=4194304,", 1) // 4 GiB
	if Check(huge, "pw") {
		t.Error("a hash asking for 4 GiB matched")
	}
}
