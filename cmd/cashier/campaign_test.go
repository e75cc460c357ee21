package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCampaignSurvivesKillsAndFaults is the CI-sized fault and crash
// campaign: it builds the real binary and runs cashier campaign with it as
// the server, killed with SIGKILL and restarted every few seconds while
// mixed deposits and withdrawals run against a faulty simulator and a
// sandbox that delivers webhooks twice, out of order or not at all. The
// campaign's own checks decide: a clean ledger, every trading account equal
// to the ledger, nothing applied twice, every operation final or with an
// operator, no job lost.
func TestCampaignSurvivesKillsAndFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("the campaign takes more than a minute")
	}
	bin := cashierBinary(t)
	var out syncBuffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: env(nil)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := m.campaign(ctx, []string{"-bin", bin, "-data", t.TempDir(), "-n", "150", "-d", "25s", "-c", "16", "-users", "16",
		"-kill-every", "3s", "-approve-every", "2s", "-settle", "3m", "-seed", "7", "-sandbox-faults", "duplicate,out-of-order,none",
		// Abandoned deposits expire after a minute at the earliest; the
		// larger campaign (BENCHMARKS.md) has them.
		"-mix", "deposit=40,deposit-3ds=8,deposit-declined=8,withdraw-card=30,withdraw-held=10"})
	log := out.String()
	if err != nil {
		t.Fatalf("campaign: %v\n%s", err, log)
	}
	if !strings.Contains(log, "campaign: passed:") {
		t.Fatalf("the campaign did not report its checks as passed:\n%s", log)
	}
	kills := regexp.MustCompile(`campaign: (\d+) kills and (\d+) restarts`).FindStringSubmatch(log)
	if kills == nil {
		t.Fatalf("no kill count in the output:\n%s", log)
	}
	if n, _ := strconv.Atoi(kills[1]); n < 3 {
		t.Errorf("the cashier was killed %d times, want at least 3:\n%s", n, log)
	}
	t.Log(log)
}

// TestCampaignRefusesBadFlags checks the usage errors of cashier campaign.
func TestCampaignRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"},
		{"-mix", "deposit=0"},
		{"-mix", "refund=3"},
		{"-sandbox-faults", "sometimes"},
		{"-fault", "changebalance:nonsense=1"},
	} {
		m := &Main{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, Getenv: env(nil)}
		if err := m.campaign(context.Background(), args); ExitCode(err) != 2 {
			t.Errorf("campaign %v = %v, want a usage error", args, err)
		}
	}
}

// TestCampaignCatchesDoubleApplication runs a short campaign in which the
// network delivers every balance change to the simulator twice (a fault
// no cashier can prevent): the campaign must fail, naming the accounts
// whose balance disagrees with the ledger and the changes applied twice.
func TestCampaignCatchesDoubleApplication(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	bin := cashierBinary(t)
	var out syncBuffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: env(nil)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := m.campaign(ctx, []string{"-bin", bin, "-data", t.TempDir(), "-n", "12", "-d", "3s", "-c", "4", "-users", "4",
		"-kill-every", "0", "-approve-every", "0", "-settle", "1m", "-fault", "changebalance:duplicate=1", "-sandbox-faults", "none",
		"-mix", "deposit=1"})
	log := out.String()
	if err == nil {
		t.Fatalf("the campaign passed although every balance change was applied twice:\n%s", log)
	}
	for _, want := range []string{"FAILED: account ", "the ledger says", "FAILED: the simulator applied"} {
		if !strings.Contains(log, want) {
			t.Errorf("campaign output lacks %q:\n%s", want, log)
		}
	}
}
