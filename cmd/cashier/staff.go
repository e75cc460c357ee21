package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/staff"
)

const staffUsage = `Back-office staff (each command takes -database-url URL, or CASHIER_DATABASE_URL):

  cashier staff add --email E --name N --role ROLE --password-stdin
  cashier staff list
  cashier staff roles                   what each role may do
  cashier staff role EMAIL ROLE         give a member another role
  cashier staff disable|enable EMAIL    enable also lifts a lockout
  cashier staff reset-totp EMAIL        a lost phone: the next login enrols a new authenticator
  cashier staff password EMAIL          set a forgotten password (read from standard input)

ROLE is viewer, support, finance, compliance or admin. Passwords (at least 12
characters) are read from the first line of standard input, never from the
command line. A new member enrols an authenticator app (TOTP) at their first
login. Every change is written to the audit trail as operator:$USER.
`

// staff runs `cashier staff …`: the first admin and the operator's view of
// back-office staff. It returns errHelp after -h, a usageError for a
// mistake on the command line (or a value the service refuses as
// invalid), and the service's error otherwise.
func (m *Main) staff(ctx context.Context, args []string) error {
	m.setup()
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprint(m.Stdout, staffUsage)
			return errHelp
		}
	}
	db, rest, err := m.opsDB(ctx, "staff", args)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := staff.New(db, nil, staff.Options{Audit: audit.New(db, nil)})
	user := m.Getenv("USER")
	if user == "" {
		user = "unknown"
	}
	c := staffCmd{m: m, svc: svc, actor: "operator:" + user}
	return opsError(c.run(ctx, rest))
}

type staffCmd struct {
	m     *Main
	svc   *staff.Service
	actor string
}

func (c staffCmd) bad(format string, args ...any) error {
	fmt.Fprint(c.m.Stderr, staffUsage)
	return usageError{fmt.Errorf(format, args...)}
}

func (c staffCmd) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return c.bad("staff needs a command: add, list, roles, role, disable, enable, reset-totp or password")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "add":
		return c.add(ctx, args)
	case "list":
		if len(args) != 0 {
			return c.bad("staff list takes no arguments")
		}
		return c.list(ctx)
	case "roles":
		if len(args) != 0 {
			return c.bad("staff roles takes no arguments")
		}
		return c.roles()
	case "role":
		if len(args) != 2 {
			return c.bad("staff role takes an e-mail address and a role")
		}
		role, err := staff.ParseRole(args[1])
		if err != nil {
			return err
		}
		return c.change(ctx, args[0], func(id string) (staff.Member, error) { return c.svc.SetRole(ctx, c.actor, id, role) })
	case "disable", "enable", "reset-totp":
		if len(args) != 1 {
			return c.bad("staff %s takes one e-mail address", cmd)
		}
		do := map[string]func(context.Context, string, string) (staff.Member, error){
			"disable": c.svc.Disable, "enable": c.svc.Enable, "reset-totp": c.svc.ResetTOTP}[cmd]
		return c.change(ctx, args[0], func(id string) (staff.Member, error) { return do(ctx, c.actor, id) })
	case "password":
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return c.bad("staff password takes an e-mail address")
		}
		for _, a := range args[1:] {
			if a != "--password-stdin" && a != "-password-stdin" {
				return c.bad("unexpected argument %q", a)
			}
		}
		pw, err := c.readPassword()
		if err != nil {
			return err
		}
		return c.change(ctx, args[0], func(id string) (staff.Member, error) { return c.svc.SetPassword(ctx, c.actor, id, pw) })
	default:
		return c.bad("unknown staff command %q", cmd)
	}
}

func (c staffCmd) add(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("staff add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	email := fs.String("email", "", "e-mail address (required)")
	name := fs.String("name", "", "full name (required)")
	role := fs.String("role", "", "viewer, support, finance, compliance or admin (required)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input (required)")
	if err := fs.Parse(args); err != nil {
		return c.bad("%v", err)
	}
	if fs.NArg() > 0 {
		return c.bad("unexpected argument %q", fs.Arg(0))
	}
	if !*fromStdin {
		return c.bad("staff add needs --password-stdin: the password is read from standard input, never from the command line")
	}
	r, err := staff.ParseRole(*role)
	if err != nil {
		return err
	}
	pw, err := c.readPassword()
	if err != nil {
		return err
	}
	mem, err := c.svc.Add(ctx, staff.NewMember{Email: *email, Name: *name, Role: r, Password: pw, Actor: c.actor})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.m.Stdout, "%s\t%s\t%s\n", mem.ID, mem.Email, mem.Role)
	fmt.Fprintf(c.m.Stdout, "%s enrols an authenticator app (TOTP) at their first login to the back office.\n", mem.Email)
	return nil
}

// readPassword reads one line of standard input.
func (c staffCmd) readPassword() (string, error) {
	const op = "staff"
	line, err := bufio.NewReader(c.m.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", errs.Wrap(op, err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errs.E(errs.Invalid, op, "no password on standard input")
	}
	return pw, nil
}

// find accepts a member's e-mail address or id.
func (c staffCmd) find(ctx context.Context, ref string) (staff.Member, error) {
	if strings.HasPrefix(ref, "stf_") {
		return c.svc.Get(ctx, ref)
	}
	mem, err := c.svc.GetByEmail(ctx, ref)
	if errs.Is(err, errs.NotFound) {
		return staff.Member{}, errs.Ef(errs.NotFound, "staff", "no staff member has the e-mail address %s", ref)
	}
	return mem, err
}

func (c staffCmd) change(ctx context.Context, ref string, do func(id string) (staff.Member, error)) error {
	mem, err := c.find(ctx, ref)
	if err != nil {
		return err
	}
	if mem, err = do(mem.ID); err != nil {
		return err
	}
	fmt.Fprintf(c.m.Stdout, "%s\t%s\t%s\t%s\ttotp %s\n", mem.ID, mem.Email, mem.Role, mem.Status, enrolled(mem))
	return nil
}

func enrolled(m staff.Member) string {
	if m.TOTPEnrolled {
		return "enrolled"
	}
	return "not enrolled"
}

func (c staffCmd) list(ctx context.Context) error {
	members, err := c.svc.List(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(c.m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tROLE\tSTATUS\tTOTP\tLOCKED UNTIL\tLAST LOGIN\tCREATED")
	for _, mem := range members {
		locked, last := "-", "-"
		if mem.Locked(now) {
			locked = mem.LockedUntil.Format(time.RFC3339)
		}
		if !mem.LastLoginAt.IsZero() {
			last = mem.LastLoginAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mem.ID, mem.Email, mem.Name, mem.Role, mem.Status,
			enrolled(mem), locked, last, mem.CreatedAt.Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.m.Stdout, "%d staff members\n", len(members))
	return nil
}

// roles prints the permission matrix: a row per permission, a column per
// role.
func (c staffCmd) roles() error {
	tw := tabwriter.NewWriter(c.m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "PERMISSION\tALLOWS")
	for _, r := range staff.Roles() {
		fmt.Fprintf(tw, "\t%s", strings.ToUpper(string(r)))
	}
	fmt.Fprintln(tw)
	for _, p := range staff.AllPermissions() {
		fmt.Fprintf(tw, "%s\t%s", p, p.Description())
		for _, r := range staff.Roles() {
			mark := "-"
			if r.Can(p) {
				mark = "yes"
			}
			fmt.Fprintf(tw, "\t%s", mark)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
