package identity

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/opencashier/cashier/internal/errs"
)

// UsersCommand runs `cashier users add|list|disable|enable`; args start
// after "users". Passwords are never taken from the command line: `add`
// reads one line from stdin with --password-stdin, otherwise the user gets no
// password (they set one with the Reset Password link). Output goes to
// stdout, usage to stderr. It returns errs.Invalid for bad usage and the
// service's errors otherwise.
func UsersCommand(ctx context.Context, svc *Service, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	const op = "identity.UsersCommand"
	usage := "usage: cashier users add --email E [--password-stdin] [--lang xx] [--ctid N] [--partner P]\n" +
		"       cashier users list\n       cashier users disable|enable EMAIL|ID\n"
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errs.E(errs.Invalid, op, "missing subcommand")
	}
	switch args[0] {
	case "add":
		fs := newFlagSet("users add", stderr)
		email := fs.String("email", "", "e-mail address (required)")
		fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
		lang := fs.String("lang", "", "preferred language, ISO 639-1 (default: the broker default)")
		ctid := fs.Int64("ctid", 0, "existing cTID user id, if the user already has one")
		partner := fs.String("partner", "", "partner (introducing broker) id")
		if err := fs.Parse(args[1:]); err != nil {
			return errs.E(errs.Invalid, op, err.Error())
		}
		n := NewUser{Email: *email, Language: *lang, CTIDUserID: *ctid, Attribution: Attribution{PartnerID: *partner}}
		if *fromStdin {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && err != io.EOF {
				return errs.Wrap(op, err)
			}
			n.Password = strings.TrimRight(line, "\r\n")
			if n.Password == "" {
				return errs.E(errs.Invalid, op, "no password on standard input")
			}
		}
		u, err := svc.CreateUser(ctx, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%s\n", u.ID, u.Email)
		return nil
	case "list":
		users, err := svc.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tSTATUS\tCTID\tLANG\tPARTNER\tPASSWORD\tCREATED")
		for _, u := range users {
			ctid := "-"
			if u.CTIDUserID != 0 {
				ctid = strconv.FormatInt(u.CTIDUserID, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Status, ctid, u.Language,
				dash(u.Attribution.PartnerID), yesNo(u.HasPassword), u.CreatedAt.Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	case "disable", "enable":
		if len(args) != 2 {
			fmt.Fprint(stderr, usage)
			return errs.E(errs.Invalid, op, args[0]+" takes one e-mail address or user id")
		}
		u, err := findUser(ctx, svc, args[1])
		if err != nil {
			return err
		}
		st := StatusDisabled
		if args[0] == "enable" {
			st = StatusActive
		}
		if err := svc.SetStatus(ctx, u.ID, st); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", u.ID, u.Email, st)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return errs.Ef(errs.Invalid, op, "unknown subcommand %q", args[0])
	}
}

// AccountsCommand runs `cashier accounts link|list`; args start after
// "accounts". It returns errs.Invalid for bad usage and the service's
// errors otherwise.
func AccountsCommand(ctx context.Context, svc *Service, args []string, stdout, stderr io.Writer) error {
	const op = "identity.AccountsCommand"
	usage := "usage: cashier accounts link --user EMAIL|ID --login N --env demo|live --currency USD [--kind trading|signal] [--platform ctrader]\n" +
		"       cashier accounts list [--user EMAIL|ID]\n"
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errs.E(errs.Invalid, op, "missing subcommand")
	}
	switch args[0] {
	case "link":
		fs := newFlagSet("accounts link", stderr)
		user := fs.String("user", "", "owner: e-mail address or user id (required)")
		login := fs.Int64("login", 0, "trading account number (required)")
		env := fs.String("env", "", "environment: demo or live (required)")
		cur := fs.String("currency", "", "deposit currency, ISO 4217 (required)")
		kind := fs.String("kind", string(KindTrading), "trading or signal")
		platform := fs.String("platform", "", "trading platform (default: the configured one)")
		if err := fs.Parse(args[1:]); err != nil {
			return errs.E(errs.Invalid, op, err.Error())
		}
		u, err := findUser(ctx, svc, *user)
		if err != nil {
			return err
		}
		a, err := svc.LinkAccount(ctx, NewAccount{UserID: u.ID, Login: *login, Platform: *platform,
			Environment: Environment(*env), Currency: *cur, Kind: AccountKind(*kind)})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%d\t%s\t%s\n", a.ID, a.Login, a.Environment, u.Email)
		return nil
	case "list":
		fs := newFlagSet("accounts list", stderr)
		user := fs.String("user", "", "only this owner's accounts: e-mail address or user id")
		if err := fs.Parse(args[1:]); err != nil {
			return errs.E(errs.Invalid, op, err.Error())
		}
		var accounts []Account
		var err error
		if *user != "" {
			u, ferr := findUser(ctx, svc, *user)
			if ferr != nil {
				return ferr
			}
			accounts, err = svc.Accounts(ctx, u.ID)
		} else {
			accounts, err = svc.ListAccounts(ctx)
		}
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LOGIN\tPLATFORM\tENV\tCURRENCY\tKIND\tOWNER\tCTID_LINK")
		for _, a := range accounts {
			link := "-"
			if a.CTIDTraderAccountID != 0 {
				link = strconv.FormatInt(a.CTIDTraderAccountID, 10)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Login, a.Platform, a.Environment, a.Currency, a.Kind, a.UserID, link)
		}
		return tw.Flush()
	default:
		fmt.Fprint(stderr, usage)
		return errs.Ef(errs.Invalid, op, "unknown subcommand %q", args[0])
	}
}

// RevokeCRMTokensCommand runs `cashier crm-tokens revoke`: every
// crmApiToken stops working and cTrader must ask for a new one.
func RevokeCRMTokensCommand(ctx context.Context, svc *Service, stdout io.Writer) error {
	n, err := svc.RevokeCRMTokens(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %d crmApiToken(s)\n", n)
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// findUser accepts a user id ("usr_…") or an e-mail address.
func findUser(ctx context.Context, svc *Service, ref string) (User, error) {
	if ref == "" {
		return User{}, errs.E(errs.Invalid, "identity.findUser", "a user (e-mail address or id) is required")
	}
	if strings.HasPrefix(ref, "usr_") {
		return svc.UserByID(ctx, ref)
	}
	return svc.UserByEmail(ctx, ref)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
