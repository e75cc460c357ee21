package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runBench runs cashier bench in the test process and returns its output.
func runBench(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut syncBuffer
	m := &Main{Stdout: &out, Stderr: &errOut, Getenv: env(nil)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := m.bench(ctx, args)
	return out.String(), errOut.String(), err
}

// TestBenchDrivesTheDemo runs cashier bench against the demo: virtual
// users sign up, complete deposits and withdrawals run through the screens
// and the sandbox, and the books are checked; a second run reuses the users
// from the users file.
func TestBenchDrivesTheDemo(t *testing.T) {
	d := startDemo(t)
	users := filepath.Join(t.TempDir(), "users.json")
	out, stderr, err := runBench(t, "-manifest", d.manifest, "-users", "3", "-users-file", users, "-c", "3", "-n", "12",
		"-mix", "deposit=2,withdraw=1")
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out, stderr)
	}
	okRE := regexp.MustCompile(`(?m)^\s+(deposit|withdraw)\s+(\d+)\s+0\s`)
	total := 0
	for _, m := range okRE.FindAllStringSubmatch(out, -1) {
		n := 0
		for _, c := range m[2] {
			n = n*10 + int(c-'0')
		}
		total += n
	}
	if total != 12 {
		t.Errorf("bench output does not show 12 successful operations without failures:\n%s", out)
	}
	for _, want := range []string{"throughput:", "books: the 3 driven trading accounts changed on the simulator by exactly what the ledger says",
		"ledger: clean", "p99 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(users); err != nil {
		t.Fatalf("users file: %v", err)
	}

	out, stderr, err = runBench(t, "-manifest", d.manifest, "-users", "3", "-users-file", users, "-scenario", "token", "-rate", "50", "-d", "1s")
	if err != nil {
		t.Fatalf("token bench: %v\n%s\n%s", err, out, stderr)
	}
	if !strings.Contains(stderr, "3 users ready (0 signed up)") || !regexp.MustCompile(`(?m)^\s+token\s+(4\d|50)\s+0\s`).MatchString(out) {
		t.Errorf("token bench: want the saved users reused and about 50 tokens without failures:\n%s\n%s", stderr, out)
	}
}

// TestBenchOnASeededDatabase seeds history into the demo's database with
// bench's -seed-accounts and -seed-deposits, then drives deposits and
// withdrawals: the real system works on the seeded tables and the ledger
// stays clean.
func TestBenchOnASeededDatabase(t *testing.T) {
	d := startDemo(t)
	out, stderr, err := runBench(t, "-manifest", d.manifest, "-users", "2", "-c", "2", "-n", "4", "-mix", "deposit=1,withdraw=1",
		"-seed-accounts", "50", "-seed-deposits", "500")
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out, stderr)
	}
	if !strings.Contains(stderr, "seeded 50 accounts and 500 deposits") || !strings.Contains(out, "ledger: clean") ||
		!strings.Contains(out, "books: the 2 driven trading accounts changed") {
		t.Errorf("bench on a seeded database:\n%s\n%s", stderr, out)
	}
}

// TestBenchRefusesBadFlags checks the usage errors of cashier bench.
func TestBenchRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", nil, "name the cashier and the simulator"},
		{"no password", []string{"-cashier", "http://127.0.0.1:1", "-sim", "http://127.0.0.1:2"}, "crmApiToken password"},
		{"no database", []string{"-cashier", "http://127.0.0.1:1", "-sim", "http://127.0.0.1:2", "-crm-password", "x"}, "-database-url"},
		{"bad mix", []string{"-cashier", "http://127.0.0.1:1", "-sim", "http://127.0.0.1:2", "-crm-password", "x", "-check=false", "-mix", "deposit=x"}, "-mix"},
		{"bad scenario", []string{"-cashier", "http://127.0.0.1:1", "-sim", "http://127.0.0.1:2", "-crm-password", "x", "-check=false", "-scenario", "x"}, "-scenario"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := runBench(t, tc.args...)
			if ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("bench %v = %v (exit %d), want a usage error about %q\n%s", tc.args, err, ExitCode(err), tc.want, stderr)
			}
		})
	}
}

// TestBenchProfile is not a test: with CASHIER_BENCH_PROFILE set to bench
// flags it runs the demo and cashier bench in this process, so that go
// test's -cpuprofile (or -blockprofile, -mutexprofile) profiles the
// cashier under load:
//
//	CASHIER_BENCH_PROFILE='-c 32 -d 20s' go test -run TestBenchProfile -cpuprofile cpu.out ./cmd/cashier
//
// The profile holds the bench's own work too (package loadtest).
func TestBenchProfile(t *testing.T) {
	flags := os.Getenv("CASHIER_BENCH_PROFILE")
	if flags == "" {
		t.Skip("set CASHIER_BENCH_PROFILE to bench flags to profile the cashier under load")
	}
	d := startDemo(t)
	args := append([]string{"-manifest", d.manifest}, strings.Fields(flags)...)
	out, stderr, err := runBench(t, args...)
	t.Logf("bench %v:\n%s", args, out)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr)
	}
}
