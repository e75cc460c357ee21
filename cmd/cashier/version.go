package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// buildVersion returns the module version and, when the binary was built
// with VCS stamping, the short revision, e.g. "(devel) 6206672-modified".
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	s := vcs(bi)
	if rev := s["vcs.revision"]; rev != "" {
		v += " " + rev[:min(len(rev), 12)]
		if s["vcs.modified"] == "true" {
			v += "-modified"
		}
	}
	return v
}

func vcs(bi *debug.BuildInfo) map[string]string {
	s := map[string]string{}
	for _, kv := range bi.Settings {
		s[kv.Key] = kv.Value
	}
	return s
}

func (m *Main) version(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("version takes no arguments")}
	}
	fmt.Fprintf(m.Stdout, "cashier %s\n", buildVersion())
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintf(m.Stdout, "go        %s\n", runtime.Version())
		return nil
	}
	s := vcs(bi)
	fmt.Fprintf(m.Stdout, "module    %s\n", bi.Main.Path)
	if rev := s["vcs.revision"]; rev != "" {
		modified := ""
		if s["vcs.modified"] == "true" {
			modified = " (with uncommitted changes)"
		}
		fmt.Fprintf(m.Stdout, "revision  %s%s\n", rev, modified)
		if t := s["vcs.time"]; t != "" {
			fmt.Fprintf(m.Stdout, "committed %s\n", t)
		}
	} else {
		fmt.Fprintln(m.Stdout, "revision  unknown (built without VCS stamping, e.g. GOFLAGS=-buildvcs=false)")
	}
	fmt.Fprintf(m.Stdout, "go        %s %s/%s\n", bi.GoVersion, runtime.GOOS, runtime.GOARCH)
	return nil
}
