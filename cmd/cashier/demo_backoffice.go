package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/staff"
)

// The demo's back office: staff members of every role with known passwords
// (each enrols an authenticator app at first login: TOTP is mandatory), a
// four-eyes amount, and the fraud rules that would hold the demo's ordinary
// flows (new destination, velocity, method switch) off until an operator
// turns them on; card country and declined attempts stay on.

const (
	// demoFourEyes: withdrawals above these need two approvers.
	demoFourEyes = "USD:2000.00,EUR:2000.00,GBP:2000.00,JPY:300000,BTC:0.05"
	demoActor    = "operator:demo"
)

// ManifestStaff is a demo back-office member.
type ManifestStaff struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
	Name     string `json:"name"`
}

// demoStaff are the demo's back-office members: two in finance, so that a
// withdrawal above the four-eyes amount can be approved by two people.
var demoStaff = []ManifestStaff{
	{Email: "admin@demo.example", Name: "Ada Admin", Role: string(staff.Admin)},
	{Email: "olga@demo.example", Name: "Olga Finance", Role: string(staff.Finance)},
	{Email: "piet@demo.example", Name: "Piet Finance", Role: string(staff.Finance)},
	{Email: "carla@demo.example", Name: "Carla Compliance", Role: string(staff.Compliance)},
	{Email: "sam@demo.example", Name: "Sam Support", Role: string(staff.Support)},
	{Email: "vic@demo.example", Name: "Vic Viewer", Role: string(staff.Viewer)},
}

// demoStaffPassword is a demo member's password (12 characters at least).
func demoStaffPassword(email string) string {
	return "demo-" + email[:len(email)-len("@demo.example")] + "-password"
}

// seedDemoBackOffice creates the demo's staff (or sets their passwords
// again) and relaxes the fraud rules that would hold the demo's first
// withdrawals and repeated deposits, unless an operator changed them. It
// returns the staff for the manifest.
func seedDemoBackOffice(ctx context.Context, a *app) ([]ManifestStaff, error) {
	const op = "demo: back office"
	var out []ManifestStaff
	for _, s := range demoStaff {
		s.Password = demoStaffPassword(s.Email)
		m, err := a.staff.GetByEmail(ctx, s.Email)
		switch {
		case errs.Is(err, errs.NotFound):
			_, err = a.staff.Add(ctx, staff.NewMember{Email: s.Email, Name: s.Name, Role: staff.Role(s.Role), Password: s.Password, Actor: demoActor})
		case err == nil:
			_, err = a.staff.SetPassword(ctx, demoActor, m.ID, s.Password)
		}
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, s)
	}
	if a.compliance == nil {
		return out, nil
	}
	for _, name := range []string{compliance.RuleNewDestination, compliance.RuleVelocity, compliance.RuleMethodSwitch} {
		r, err := a.compliance.Rule(ctx, name)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		if r.UpdatedBy != "" { // an operator chose already
			continue
		}
		r.Enabled = false
		if err := a.compliance.SetRule(ctx, demoActor, r); err != nil {
			return nil, errs.Wrap(op, err)
		}
	}
	return out, nil
}

// printDemoStaff lists the back office's address and members.
func printDemoStaff(w io.Writer, man Manifest) {
	if len(man.Staff) == 0 {
		return
	}
	fmt.Fprintf(w, "\nBack office:                %s  (first login enrols an authenticator app: scan the QR code)\n", man.BackOfficeURL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  e-mail\tpassword\trole\n")
	for _, s := range man.Staff {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Email, s.Password, s.Role)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "  Withdrawals above %s need two approvers.\n", strings.ReplaceAll(demoFourEyes, ",", ", "))
	fmt.Fprintf(w, "  The fraud rules new destination, velocity and method switch are off in the demo, so that its flows\n")
	fmt.Fprintf(w, "  complete on their own (turn them on under Rules); after three declined card payments\n")
	fmt.Fprintf(w, "  (4000 0000 0000 0002) within an hour, the customer's next deposit is held for review.\n")
}
