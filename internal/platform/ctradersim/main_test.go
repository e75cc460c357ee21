package ctradersim_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/platform/ctradersim"
)

// lines is an io.Writer that hands each complete line to a channel.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan string
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line) // keep the partial line
			return len(p), nil
		}
		select {
		case l.ch <- strings.TrimSpace(line):
		default:
		}
	}
}

var listening = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// runMain starts Main and returns its base URL, a cancel function and the
// channel Main's result arrives on.
func runMain(t *testing.T, args ...string) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lines{ch: make(chan string, 16)}
	done := make(chan error, 1)
	go func() {
		done <- ctradersim.Main(ctx, append([]string{"-listen", "127.0.0.1:0"}, args...), out, io.Discard)
	}()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case line := <-out.ch:
			if m := listening.FindStringSubmatch(line); m != nil {
				return m[1], cancel, done
			}
		case err := <-done:
			cancel()
			t.Fatalf("Main returned before listening: %v", err)
		case <-timeout.C:
			cancel()
			t.Fatal("Main did not report its address")
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func stop(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Main: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Main did not stop after its context was cancelled")
	}
}

func TestMainServesTheAppAndStops(t *testing.T) {
	base, cancel, done := runMain(t, "-seed", "3", "-fault", "changebalance:drop=0.5,latency=1ms", "-broker-url", "http://127.0.0.1:1")
	if status, body := get(t, base+"/app/"); status != 200 || !strings.Contains(body, "alice@example.com") {
		t.Errorf("/app/: %d\n%s", status, body)
	}
	if status, body := get(t, base+"/_sim/faults"); status != 200 || !strings.Contains(body, `"seed":3`) || !strings.Contains(body, `"dropP":0.5`) {
		t.Errorf("/_sim/faults: %d %s", status, body)
	}
	stop(t, cancel, done)
	if _, err := http.Get(base + "/app/"); err == nil {
		t.Error("the simulator still answers after Main returned")
	}
}

func TestMainHelpAndBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := ctradersim.Main(context.Background(), []string{"-h"}, &out, io.Discard); err != nil {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"-listen", "127.0.0.1:8081", "-fault", "apply-timeout=P[@HOLD]", "duplicate=P", "-faults", "-no-history-extension", "-state", "-handoff"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %q", want)
		}
	}
	for _, args := range [][]string{{"-nosuchflag"}, {"-fault", "changebalance:drop=2"}, {"-faults", "/nonexistent.json"}, {"extra"}} {
		if err := ctradersim.Main(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("Main(%q) succeeded", args)
		}
	}
}

func TestMainKeepsStateInAFile(t *testing.T) {
	state := filepath.Join(t.TempDir(), "sim.json")
	base, cancel, done := runMain(t, "-state", state)
	tok := managerToken(t, base)
	req, _ := http.NewRequest("POST", base+"/v2/webserv/traders/3000001/changebalance?token="+tok,
		strings.NewReader(`{"login":3000001,"preciseAmount":0.5,"type":"DEPOSIT","externalId":"kept"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("changebalance: %v %v", res, err)
	}
	res.Body.Close()
	stop(t, cancel, done)
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state file after stop: %v", err)
	}

	base, cancel, done = runMain(t, "-state", state)
	defer stop(t, cancel, done)
	if status, body := get(t, base+"/_sim/traders/3000001"); status != 200 || !strings.Contains(body, `"balance":{"amount":"1000.50"`) {
		t.Errorf("after a restart with -state: %d %s", status, body)
	}
}

func managerToken(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Post(base+"/v2/webserv/managers/token", "application/json",
		strings.NewReader(`{"login":1001,"hashedPassword":"`+md5hex("manager-password")+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`"webservToken":"([^"]+)"`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("manager login: %s", b)
	}
	return m[1]
}
