package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processEnv is the test process's environment without CASHIER_* variables,
// plus extra.
func processEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CASHIER_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// TestBinaryServe builds the real binary and runs `cashier serve` as a
// process on the default SQLite file in a fresh folder: it answers
// /healthz and exits 0 on SIGTERM.
func TestBinaryServe(t *testing.T) {
	bin := cashierBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve", "-addr", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = processEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// Read the log as the process writes it; the "cashier started" record
	// carries the address. A real process: wait with a deadline.
	var log bytes.Buffer
	started := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "cashier started" {
				started <- rec.Addr
			}
		}
	}()
	var addr string
	select {
	case addr = <-started:
	case <-drained:
		t.Fatalf("cashier serve exited before it started:\n%s", log.String())
	case <-time.After(60 * time.Second):
		t.Fatal("cashier serve did not start within 60s")
	}

	resp, body := get(t, "http://"+addr+"/healthz", nil)
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "cashier.db")); err != nil {
		t.Errorf("the default database sqlite:cashier.db was not created in the working folder: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		<-drained
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("cashier serve after SIGTERM: %v, want exit 0\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cashier serve did not exit within 30s of SIGTERM")
	}
	if !strings.Contains(log.String(), `"msg":"shutdown complete"`) {
		t.Errorf("log lacks the shutdown record:\n%s", log.String())
	}
}

// TestBinaryExitCodes checks the exit codes and messages main gives.
func TestBinaryExitCodes(t *testing.T) {
	bin := cashierBinary(t)
	tests := []struct {
		name       string
		args       []string
		env        []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"version", []string{"version"}, nil, 0, "cashier ", ""},
		{"unknown command", []string{"frobnicate"}, nil, 2, "", `cashier: unknown command "frobnicate"`},
		{"bad setting", []string{"serve"}, []string{"CASHIER_ADDR=abc"}, 2, "",
			`cashier: config: CASHIER_ADDR (-addr): "abc" is not host:port`},
		{"ledger verify before migrating", []string{"ledger", "verify"}, nil, 1, "",
			"cashier: ledger verify: the database is not migrated (run cashier migrate up)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Dir = t.TempDir()
			cmd.Env = processEnv(tc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantStdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, stderr.String())
			}
		})
	}
}

// TestBinaryDemo builds the real binary and runs `cashier demo` as a
// process on free ports: it answers /healthz, serves the fake app, and
// exits 0 on SIGTERM, keeping its data folder.
func TestBinaryDemo(t *testing.T) {
	bin := cashierBinary(t)
	dir := t.TempDir()
	manifest := filepath.Join(dir, "manifest.json")
	cmd := exec.Command(bin, "demo", "-data", filepath.Join(dir, "data"), "-addr", "127.0.0.1:0", "-sim-addr", "127.0.0.1:0",
		"--manifest", manifest)
	cmd.Env = processEnv("CASHIER_DATABASE_URL=mysql://ignored", "CASHIER_ADDR=abc") // the demo ignores CASHIER_*
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// The demo prints its links once it serves. A real process: wait with
	// a deadline.
	var out bytes.Buffer
	running := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if !signalled && strings.HasPrefix(sc.Text(), "OpenCashier demo is running") {
				signalled = true
				close(running)
			}
		}
	}()
	select {
	case <-running:
	case <-drained:
		t.Fatalf("cashier demo exited before it ran:\n%s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("cashier demo did not start within 60s")
	}
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var man Manifest
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, man.CashierURL+"/healthz", nil); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, man.AppURL, nil); resp.StatusCode != 200 {
		t.Errorf("fake app = %d", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		<-drained
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("cashier demo after SIGTERM: %v, want exit 0\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cashier demo did not exit within 30s of SIGTERM")
	}
	if !strings.Contains(out.String(), "Demo stopped.") {
		t.Errorf("demo output lacks the stop message:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "cashier.db")); err != nil {
		t.Errorf("the demo's database is not in its data folder: %v", err)
	}
}
