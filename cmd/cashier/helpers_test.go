package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildDir holds the binary built by cashierBinary; TestMain removes it.
var buildDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// cashierBinary builds the real cashier binary once per test run and
// returns its path.
func cashierBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "cashier-bin")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "cashier")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = err
			binPath = out.String()
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/cashier: %v\n%s", buildErr, binPath)
	}
	return binPath
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (logs are
// written from request goroutines while the test reads).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env returns a Getenv over a fixed map, so tests never see the real
// environment's CASHIER_* variables.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// run runs one command to completion and returns its output and error.
func run(t *testing.T, vars map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut syncBuffer
	m := &Main{Stdout: &out, Stderr: &errOut, Getenv: env(vars)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = m.Run(ctx, args)
	if cerr := m.Close(); cerr != nil {
		t.Errorf("Close: %v", cerr)
	}
	return out.String(), errOut.String(), err
}

// serving is a serve command running in the test process.
type serving struct {
	m      *Main
	addr   string
	stderr *syncBuffer
	cancel context.CancelFunc
	result chan error
}

// startServe runs `cashier serve` with args after "serve" and waits until
// it listens.
func startServe(t *testing.T, vars map[string]string, args ...string) *serving {
	t.Helper()
	s := &serving{stderr: &syncBuffer{}, result: make(chan error, 1)}
	s.m = &Main{Stdout: io.Discard, Stderr: s.stderr, Getenv: env(vars)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.result <- s.m.Run(ctx, append([]string{"serve"}, args...)) }()
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	addr, err := s.m.WaitReady(wctx)
	if err != nil {
		cancel()
		t.Fatalf("serve did not start: %v\nlog:\n%s", err, s.stderr)
	}
	s.addr = addr
	t.Cleanup(func() {
		cancel()
		s.m.Close()
	})
	return s
}

// stop cancels serve's context and returns Run's result, failing the test
// if Run does not return within 10 seconds.
func (s *serving) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.result:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not return within 10s of cancellation\nlog:\n%s", s.stderr)
		return nil
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

// get fetches url and returns the response (body closed) and its body.
func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(body)
}

// logLines returns the JSON log lines with the given msg.
func logLines(log, msg string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"msg":"`+msg+`"`) {
			out = append(out, l)
		}
	}
	return out
}
