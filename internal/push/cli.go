package push

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// Command runs the operator commands `push list|show|resolve`:
//
//	push list [-state in_doubt] [-limit 100]
//	push show ID
//	push resolve ID applied|not-applied -by NAME [-note TEXT]
//
// It returns errs.Invalid for bad usage, and the service's errors otherwise.
func Command(ctx context.Context, svc *Service, args []string, stdout, stderr io.Writer) error {
	const op = "push.Command"
	usage := "usage: cashier push list [-state STATE] [-limit N] | show ID | resolve ID applied|not-applied -by NAME [-note TEXT]"
	if len(args) == 0 {
		return errs.E(errs.Invalid, op, usage)
	}
	switch args[0] {
	case "list":
		fs := flag.NewFlagSet("push list", flag.ContinueOnError)
		fs.SetOutput(stderr)
		state := fs.String("state", "", "only pushes in this state (queued, sending, applied, rejected, in_doubt, resolved_applied, resolved_not_applied)")
		limit := fs.Int("limit", 100, "at most this many, newest first")
		if err := fs.Parse(args[1:]); err != nil {
			return errs.E(errs.Invalid, op, err.Error())
		}
		if *state != "" && !validState(State(*state)) {
			return errs.Ef(errs.Invalid, op, "unknown state %q", *state)
		}
		ps, err := svc.List(ctx, State(*state), *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tLOGIN\tTYPE\tAMOUNT\tOWNER\tUPDATED")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s %s\t%s\n", p.ID, p.State, p.Change.Login, p.Change.Type, p.Change.Amount, p.Owner, p.OwnerID, p.UpdatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "show":
		if len(args) != 2 {
			return errs.E(errs.Invalid, op, usage)
		}
		p, err := svc.Get(ctx, args[1])
		if err != nil {
			return err
		}
		evs, err := svc.Events(ctx, p.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "push %s\n  state: %s\n  owner: %s %s\n  change: %s %s to login %d (externalId %s)\n  sends: %d\n",
			p.ID, p.State, p.Owner, p.OwnerID, p.Change.Type, p.Change.Amount, p.Change.Login, p.ID, p.Sends)
		if p.BalanceHistoryID != 0 {
			fmt.Fprintf(stdout, "  balanceHistoryId: %d\n", p.BalanceHistoryID)
		}
		if p.ResolvedBy != "" {
			fmt.Fprintf(stdout, "  settled by: %s\n", p.ResolvedBy)
		}
		if p.Evidence != "" {
			fmt.Fprintf(stdout, "  evidence:\n")
			for _, line := range splitLines(p.Evidence) {
				fmt.Fprintf(stdout, "    %s\n", line)
			}
		}
		fmt.Fprintf(stdout, "  events:\n")
		for _, e := range evs {
			from := string(e.From)
			if from == "" {
				from = "-"
			}
			fmt.Fprintf(stdout, "    %s  %s -> %s  %s\n", e.At.Format(time.RFC3339Nano), from, e.To, e.Detail)
		}
		return nil
	case "resolve":
		if len(args) < 3 {
			return errs.E(errs.Invalid, op, usage)
		}
		id, verdict := args[1], args[2]
		fs := flag.NewFlagSet("push resolve", flag.ContinueOnError)
		fs.SetOutput(stderr)
		by := fs.String("by", "", "the operator's name (required; recorded)")
		note := fs.String("note", "", "why: what was checked on the platform")
		if err := fs.Parse(args[3:]); err != nil {
			return errs.E(errs.Invalid, op, err.Error())
		}
		var applied bool
		switch verdict {
		case "applied":
			applied = true
		case "not-applied":
		default:
			return errs.Ef(errs.Invalid, op, "verdict must be applied or not-applied, not %q", verdict)
		}
		p, err := svc.Resolve(ctx, id, applied, *by, *note)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "push %s is now %s\n", p.ID, p.State)
		return nil
	default:
		return errs.E(errs.Invalid, op, usage)
	}
}

func validState(s State) bool {
	for _, v := range States {
		if v == s {
			return true
		}
	}
	return false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
