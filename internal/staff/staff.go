// Package staff is the back office's own people: staff members with a role,
// a password and a mandatory TOTP second factor, the sessions they sign in
// with, and the permissions each role grants.
//
// Login has two steps. BeginLogin checks the e-mail address and password
// and returns a short-lived pending token (and, for a member who has no
// authenticator yet, a new TOTP secret to enrol); CompleteLogin checks the
// TOTP code and opens a session. Wrong passwords and codes are counted in
// the database and lock the member out for a while. Session tokens, like
// pending tokens, are 32 random bytes stored only as their SHA-256 hash;
// sessions expire after a sliding idle period and at an absolute limit.
//
// Every change to a member and every login, failure, lockout and logout is
// written to the audit trail through an audit.Recorder inside the same
// transaction as the change.
package staff

import (
	"embed"
	"io/fs"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the staff part of the database (versions 00610–00619).
var Schema = sqlstore.Schema{Name: "staff", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Role is what a staff member does; it decides their permissions.
type Role string

// The roles, from the least to the most trusted.
const (
	// Viewer reads the queues, transactions and dashboard, nothing more.
	Viewer Role = "viewer"
	// Support reads, and looks up users to answer traders.
	Support Role = "support"
	// Finance decides withdrawals, resolves pushes in doubt, reviews
	// flagged payments, runs reconciliation and exports CSV.
	Finance Role = "finance"
	// Compliance sets KYC levels, decides fraud and compliance holds,
	// edits limits and fraud rules, and reads the audit trail.
	Compliance Role = "compliance"
	// Admin may do everything, including managing staff and settings.
	Admin Role = "admin"
)

// Roles returns every role, from the least to the most trusted.
func Roles() []Role { return []Role{Viewer, Support, Finance, Compliance, Admin} }

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	_, ok := matrix[r]
	return ok
}

// ParseRole returns the role named s (case-insensitive). It returns
// errs.Invalid for anything else, listing the roles.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !r.Valid() {
		return "", errs.Ef(errs.Invalid, "staff.ParseRole", "%q is not a role; the roles are %s", s, roleList())
	}
	return r, nil
}

func roleList() string {
	names := make([]string, 0, len(Roles()))
	for _, r := range Roles() {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}

// Permission is one thing a staff member may be allowed to do. Every
// back-office screen and admin API call checks one with Authorize.
type Permission string

// The permissions.
const (
	// PermView: read the work queues, transactions and dashboard.
	PermView Permission = "view"
	// PermExport: download CSV exports.
	PermExport Permission = "export"
	// PermUsersView: look up users and their accounts, KYC and history.
	PermUsersView Permission = "users.view"
	// PermWithdrawalsDecide: approve or reject withdrawals.
	PermWithdrawalsDecide Permission = "withdrawals.decide"
	// PermPushesResolve: resolve balance pushes in doubt.
	PermPushesResolve Permission = "pushes.resolve"
	// PermPaymentsReview: decide payments flagged for review.
	PermPaymentsReview Permission = "payments.review"
	// PermHoldsDecide: release or reject transactions held by a fraud or
	// compliance rule.
	PermHoldsDecide Permission = "holds.decide"
	// PermKYCSet: set a user's KYC status.
	PermKYCSet Permission = "kyc.set"
	// PermRulesEdit: edit limits and fraud rules.
	PermRulesEdit Permission = "rules.edit"
	// PermReconcile: run reconciliation and close its cases.
	PermReconcile Permission = "reconcile"
	// PermAuditView: search the audit trail.
	PermAuditView Permission = "audit.view"
	// PermStaffManage: add staff, change roles, disable, reset TOTP.
	PermStaffManage Permission = "staff.manage"
	// PermSettingsEdit: change back-office settings.
	PermSettingsEdit Permission = "settings.edit"
)

// AllPermissions returns every permission, in a stable order.
func AllPermissions() []Permission {
	return []Permission{PermView, PermExport, PermUsersView, PermWithdrawalsDecide, PermPushesResolve,
		PermPaymentsReview, PermHoldsDecide, PermKYCSet, PermRulesEdit, PermReconcile, PermAuditView,
		PermStaffManage, PermSettingsEdit}
}

var descriptions = map[Permission]string{
	PermView:              "read work queues, transactions and the dashboard",
	PermExport:            "download CSV exports",
	PermUsersView:         "look up users, their accounts and KYC",
	PermWithdrawalsDecide: "approve or reject withdrawals",
	PermPushesResolve:     "resolve balance pushes in doubt",
	PermPaymentsReview:    "decide payments flagged for review",
	PermHoldsDecide:       "release or reject fraud and compliance holds",
	PermKYCSet:            "set a user's KYC status",
	PermRulesEdit:         "edit limits and fraud rules",
	PermReconcile:         "run reconciliation and close its cases",
	PermAuditView:         "search the audit trail",
	PermStaffManage:       "manage staff members and their roles",
	PermSettingsEdit:      "change back-office settings",
}

// Description says in a few words what p allows, for screens and messages.
func (p Permission) Description() string {
	if d, ok := descriptions[p]; ok {
		return d
	}
	return string(p)
}

// matrix is which role has which permission. Every role reads; the rest
// follows who does the work.
var matrix = map[Role]map[Permission]bool{
	Viewer:  set(PermView),
	Support: set(PermView, PermUsersView),
	Finance: set(PermView, PermUsersView, PermExport, PermWithdrawalsDecide, PermPushesResolve,
		PermPaymentsReview, PermReconcile),
	Compliance: set(PermView, PermUsersView, PermKYCSet, PermHoldsDecide, PermRulesEdit, PermAuditView),
	Admin:      set(AllPermissions()...),
}

func set(ps ...Permission) map[Permission]bool {
	m := make(map[Permission]bool, len(ps))
	for _, p := range ps {
		m[p] = true
	}
	return m
}

// Can reports whether role r has permission p. An unknown role has none.
func (r Role) Can(p Permission) bool { return matrix[r][p] }

// Permissions returns the permissions of role r, in the order of
// AllPermissions (none for an unknown role).
func Permissions(r Role) []Permission {
	var out []Permission
	for _, p := range AllPermissions() {
		if r.Can(p) {
			out = append(out, p)
		}
	}
	return out
}

// Status says whether a member may sign in.
type Status string

// The statuses of a member.
const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)
