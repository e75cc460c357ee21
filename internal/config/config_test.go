package config_test

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/errs"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	got := config.Defaults()
	want := config.Config{
		DatabaseURL:     "sqlite:cashier.db",
		Addr:            "127.0.0.1:8080",
		PublicURL:       "",
		LogLevel:        slog.LevelInfo,
		LogFormat:       "json",
		ShutdownTimeout: 15 * time.Second,
		JobWorkers:      4,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Defaults() (-want +got):\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     func(c *config.Config)
		wantRest []string
	}{
		{
			name: "nothing set gives defaults",
			want: func(c *config.Config) {},
		},
		{
			name: "environment sets values",
			env: map[string]string{
				"CASHIER_DATABASE_URL":     "postgres://cashier:secret@db:5432/cashier?sslmode=disable",
				"CASHIER_ADDR":             ":9000",
				"CASHIER_PUBLIC_URL":       "https://pay.example.com/",
				"CASHIER_LOG_LEVEL":        "DEBUG",
				"CASHIER_LOG_FORMAT":       "text",
				"CASHIER_SHUTDOWN_TIMEOUT": "1m30s",
				"CASHIER_JOB_WORKERS":      "0",
			},
			want: func(c *config.Config) {
				c.DatabaseURL = "postgres://cashier:secret@db:5432/cashier?sslmode=disable"
				c.Addr = ":9000"
				c.PublicURL = "https://pay.example.com"
				c.LogLevel = slog.LevelDebug
				c.LogFormat = "text"
				c.ShutdownTimeout = 90 * time.Second
				c.JobWorkers = 0
			},
		},
		{
			name: "flag wins over environment",
			args: []string{"-addr", "127.0.0.1:0", "-log-level=warn"},
			env:  map[string]string{"CASHIER_ADDR": "abc", "CASHIER_LOG_LEVEL": "loud"},
			want: func(c *config.Config) {
				c.Addr = "127.0.0.1:0"
				c.LogLevel = slog.LevelWarn
			},
		},
		{
			name: "empty variable counts as unset",
			env:  map[string]string{"CASHIER_ADDR": ""},
			want: func(c *config.Config) {},
		},
		{
			name:     "arguments after flags are returned",
			args:     []string{"-job-workers", "8", "up", "extra"},
			want:     func(c *config.Config) { c.JobWorkers = 8 },
			wantRest: []string{"up", "extra"},
		},
		{
			name: "IPv6 address and path in public URL",
			args: []string{"-addr", "[::1]:8443", "-public-url", "https://example.com/cashier"},
			want: func(c *config.Config) {
				c.Addr = "[::1]:8443"
				c.PublicURL = "https://example.com/cashier"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rest, err := config.Load(tc.args, env(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := config.Defaults()
			tc.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRest, rest, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("rest (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the whole message after "config: "
	}{
		{"address without port", nil, map[string]string{"CASHIER_ADDR": "abc"},
			`CASHIER_ADDR (-addr): "abc" is not host:port`},
		{"address with bad port", []string{"-addr", "localhost:http"}, nil,
			`CASHIER_ADDR (-addr): "localhost:http" has no valid port (want 0-65535)`},
		{"address with port out of range", []string{"-addr", ":70000"}, nil,
			`CASHIER_ADDR (-addr): ":70000" has no valid port (want 0-65535)`},
		{"mysql database", nil, map[string]string{"CASHIER_DATABASE_URL": "mysql://x"},
			`CASHIER_DATABASE_URL (-database-url): "mysql://x" is not a database URL (database URL must start with sqlite: or postgres://)`},
		{"sqlite without path", []string{"-database-url", "sqlite:"}, nil,
			`CASHIER_DATABASE_URL (-database-url): "sqlite:" is not a database URL (sqlite URL has no file path (want sqlite:PATH))`},
		{"database password is not echoed", nil, map[string]string{"CASHIER_DATABASE_URL": "mysql://root:hunter2@db/x"},
			`CASHIER_DATABASE_URL (-database-url): "mysql://root:xxxxx@db/x" is not a database URL (database URL must start with sqlite: or postgres://)`},
		{"log level", nil, map[string]string{"CASHIER_LOG_LEVEL": "loud"},
			`CASHIER_LOG_LEVEL (-log-level): "loud" is not one of debug, info, warn, error`},
		{"log format", []string{"-log-format", "xml"}, nil,
			`CASHIER_LOG_FORMAT (-log-format): "xml" is not json or text`},
		{"shutdown timeout without unit", nil, map[string]string{"CASHIER_SHUTDOWN_TIMEOUT": "30"},
			`CASHIER_SHUTDOWN_TIMEOUT (-shutdown-timeout): "30" is not a positive duration such as 15s or 1m`},
		{"negative shutdown timeout", []string{"-shutdown-timeout=-1s"}, nil,
			`CASHIER_SHUTDOWN_TIMEOUT (-shutdown-timeout): "-1s" is not a positive duration such as 15s or 1m`},
		{"public URL without scheme", nil, map[string]string{"CASHIER_PUBLIC_URL": "pay.example.com"},
			`CASHIER_PUBLIC_URL (-public-url): "pay.example.com" is not an absolute http:// or https:// URL`},
		{"public URL with query", []string{"-public-url", "https://pay.example.com/?a=b"}, nil,
			`CASHIER_PUBLIC_URL (-public-url): "https://pay.example.com/?a=b" must not carry user info, a query or a fragment`},
		{"job workers not a number", nil, map[string]string{"CASHIER_JOB_WORKERS": "many"},
			`CASHIER_JOB_WORKERS (-job-workers): "many" is not a whole number from 0 to 1024`},
		{"negative job workers", []string{"-job-workers", "-1"}, nil,
			`CASHIER_JOB_WORKERS (-job-workers): "-1" is not a whole number from 0 to 1024`},
		{"unknown flag", []string{"-port", "80"}, nil,
			`flag provided but not defined: -port`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := config.Load(tc.args, env(tc.env))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if errs.CodeOf(err) != errs.Invalid {
				t.Errorf("code = %s, want %s", errs.CodeOf(err), errs.Invalid)
			}
			if diff := cmp.Diff("config: "+tc.want, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSettingsTable checks every row: a valid default, a CASHIER_ variable
// matching the flag name, and a usage sentence.
func TestSettingsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range config.Settings {
		t.Run(s.Name, func(t *testing.T) {
			if seen[s.Name] {
				t.Errorf("setting %s appears twice", s.Name)
			}
			seen[s.Name] = true
			wantEnv := "CASHIER_" + strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
			if s.Env != wantEnv {
				t.Errorf("Env = %s, want %s", s.Env, wantEnv)
			}
			var c config.Config
			if err := s.Set(&c, s.Default); err != nil {
				t.Errorf("default %q does not validate: %v", s.Default, err)
			}
			if !strings.HasSuffix(s.Usage, ".") || len(s.Usage) < 10 {
				t.Errorf("usage %q is not a sentence", s.Usage)
			}
		})
	}
}

func TestUsageListsEverySetting(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f := config.Bind(fs, env(nil), config.Settings)
	var b bytes.Buffer
	f.Usage(&b)
	out := b.String()
	for _, s := range config.Settings {
		line := "-" + s.Name + ", " + s.Env + " (default "
		if !strings.Contains(out, line) {
			t.Errorf("usage lacks %q:\n%s", line, out)
		}
		if !strings.Contains(out, s.Usage) {
			t.Errorf("usage lacks the meaning of %s", s.Name)
		}
	}
	if !strings.Contains(out, `-addr, CASHIER_ADDR (default "127.0.0.1:8080")`) {
		t.Errorf("usage does not show the default address:\n%s", out)
	}
}

func TestSelect(t *testing.T) {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := config.Bind(fs, env(map[string]string{"CASHIER_ADDR": "abc"}), config.Select("database-url", "log-level"))
	if err := fs.Parse([]string{"-addr", "x"}); err == nil {
		t.Error("a command without the addr setting accepted -addr")
	}
	// CASHIER_ADDR is not one of this command's settings, so its bad value
	// does not stop the command, and Addr keeps its default.
	c, err := f.Config()
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	if c.Addr != "127.0.0.1:8080" {
		t.Errorf("Addr = %q, want the default", c.Addr)
	}
}

// TestDocumentation keeps docs/configuration.md in step with the table.
func TestDocumentation(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings {
		if !bytes.Contains(doc, []byte("`"+s.Env+"`")) || !bytes.Contains(doc, []byte("`-"+s.Name+"`")) {
			t.Errorf("docs/configuration.md does not document %s / -%s", s.Env, s.Name)
		}
		if s.Default != "" && !bytes.Contains(doc, []byte("`"+s.Default+"`")) {
			t.Errorf("docs/configuration.md does not show the default of %s (%s)", s.Env, s.Default)
		}
	}
}
