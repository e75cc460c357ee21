// Package pgtest gives tests a throwaway PostgreSQL database.
//
// If CASHIER_TEST_POSTGRES is set (a postgres:// URL of a server where the
// user may create databases), each test gets a fresh database there.
// Otherwise the first call starts a private cluster from the installed
// binaries (initdb and postgres on PATH or under /usr/lib/postgresql), on a
// Unix socket in a temporary folder, running as the postgres user when the
// tests run as root. The cluster dies with the test process.
//
// Without PostgreSQL the tests are skipped, unless the CI environment
// variable is set, in which case they fail: CI must never pass by skipping.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver
)

// EnvURL names the variable that points tests at an existing server.
const EnvURL = "CASHIER_TEST_POSTGRES"

var (
	startOnce sync.Once
	serverURL string // admin URL of the server (database "postgres")
	startErr  error
	counter   atomic.Int64
)

// URL returns the URL of a new, empty database that is dropped when the test
// ends. It skips the test when PostgreSQL is not available, or fails it when
// the CI variable is set.
func URL(tb testing.TB) string {
	tb.Helper()
	startOnce.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			serverURL = u
			return
		}
		serverURL, startErr = startCluster()
	})
	if startErr != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("pgtest: PostgreSQL is required in CI: %v", startErr)
		}
		tb.Skipf("pgtest: PostgreSQL not available: %v", startErr)
	}
	admin, err := sql.Open("pgx", serverURL)
	if err != nil {
		tb.Fatalf("pgtest: open admin connection: %v", err)
	}
	defer admin.Close()
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), counter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		admin, err := sql.Open("pgx", serverURL)
		if err != nil {
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return withDatabase(serverURL, name)
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + name
	return u.String()
}

func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/lib/postgresql/*/bin", name)
}

// startCluster runs initdb and postgres in a temporary folder and returns the
// admin URL. The server is started from an OS thread that stays locked for
// the life of the process, with a parent-death signal, so it stops when the
// test binary exits however it exits.
func startCluster() (string, error) {
	initdb, err := findBinary("initdb")
	if err != nil {
		return "", err
	}
	postgres, err := findBinary("postgres")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "pgtest")
	if err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root and no postgres user to drop to: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
	}
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync") // #nosec G204 -- initdb from the PostgreSQL installation, fixed arguments
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the parent-death signal is tied to this thread
		// #nosec G204 -- postgres from the PostgreSQL installation, fixed arguments
		srv := exec.Command(postgres, "-D", data, "-k", dir, "-c", "listen_addresses=",
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=300", "-c", "shared_buffers=128MB")
		srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
		logf, _ := os.Create(filepath.Join(dir, "postgres.log")) // #nosec G304 -- in the helper's own temporary folder
		if cred != nil && logf != nil {
			_ = logf.Chown(int(cred.Uid), int(cred.Gid))
		}
		srv.Stdout, srv.Stderr = logf, logf
		if err := srv.Start(); err != nil {
			ready <- err
			return
		}
		ready <- nil
		_ = srv.Wait()
	}()
	if err := <-ready; err != nil {
		return "", fmt.Errorf("start postgres: %w", err)
	}
	admin := "postgres://postgres@/postgres?host=" + url.QueryEscape(dir) + "&sslmode=disable"
	// Wait for the server to accept connections: a real external process, so
	// poll with a deadline.
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", admin)
		if err == nil {
			err = db.Ping()
			_ = db.Close()
		}
		if err == nil {
			return admin, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log")) // #nosec G304 -- the log of the server this helper started
			return "", fmt.Errorf("postgres did not accept connections: %v; log: %s", err, strings.TrimSpace(string(log)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
