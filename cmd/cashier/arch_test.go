package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainPackagesImportNoTransportOrDriver enforces the rule of
// docs/architecture.md: the domain packages import no HTTP, no database
// driver and no metrics library, and the lower layers import nothing above
// them. internal/funding is checked on its direct imports only: it builds on
// payments and push, which carry an HTTP surface (the webhook intake) and
// metrics of their own (see docs/architecture.md).
func TestDomainPackagesImportNoTransportOrDriver(t *testing.T) {
	const mod = "github.com/opencashier/cashier/internal/"
	transport := []string{"net/http", "github.com/jackc/pgx", "modernc.org/sqlite", "github.com/prometheus/",
		mod + "sqlstore/drivers", mod + "server", mod + "httpx", mod + "httpapi", mod + "web"}
	rules := map[string][]string{
		mod + "money":    append([]string{mod + "ledger", mod + "sqlstore", mod + "identity", mod + "jobs"}, transport...),
		mod + "ledger":   append([]string{mod + "identity", mod + "jobs", mod + "push", mod + "platform", mod + "psp"}, transport...),
		mod + "identity": transport,
	}
	args := []string{"list", "-f", "{{.ImportPath}}|{{join .Deps \",\"}}"}
	for p := range rules {
		args = append(args, p)
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, "|")
		checked++
		for _, dep := range strings.Split(deps, ",") {
			for _, bad := range rules[pkg] {
				if dep == bad || strings.HasPrefix(dep, bad+"/") || (strings.HasSuffix(bad, "/") && strings.HasPrefix(dep, bad)) {
					t.Errorf("%s depends on %s", strings.TrimPrefix(pkg, mod), dep)
				}
			}
		}
	}
	if checked != len(rules) {
		t.Errorf("checked %d packages, want %d:\n%s", checked, len(rules), out)
	}
}

// TestFundingImportsNoTransportDirectly checks funding's own imports.
func TestFundingImportsNoTransportDirectly(t *testing.T) {
	const mod = "github.com/opencashier/cashier/internal/"
	out, err := exec.Command("go", "list", "-f", "{{join .Imports \",\"}}", mod+"funding").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	banned := []string{"net/http", "github.com/jackc/pgx", "modernc.org/sqlite", "github.com/prometheus/",
		mod + "sqlstore/drivers", mod + "server", mod + "httpx", mod + "httpapi", mod + "web"}
	imports := strings.Split(strings.TrimSpace(string(out)), ",")
	if len(imports) < 3 {
		t.Fatalf("go list gave no imports for funding: %q", out)
	}
	for _, imp := range imports {
		for _, bad := range banned {
			if imp == bad || strings.HasPrefix(imp, bad+"/") || (strings.HasSuffix(bad, "/") && strings.HasPrefix(imp, bad)) {
				t.Errorf("funding imports %s", imp)
			}
		}
	}
}
