package reconcile

import (
	"context"
	"slices"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
)

// listPage is how many payments one List call reads.
const listPage = 500

// ourPayments reads every payment and payout we hold (of one login when
// login is set), by provider and id.
func (s *Service) ourPayments(ctx context.Context, login int64) (map[string]map[string]payments.Payment, error) {
	const op = "reconcile.ourPayments"
	out := map[string]map[string]payments.Payment{}
	f := payments.ListFilter{Limit: listPage}
	if login != 0 {
		f.AccountID = itoa(login)
	}
	for {
		page, err := s.d.Payments.List(ctx, f)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		for _, p := range page {
			if out[p.Provider] == nil {
				out[p.Provider] = map[string]payments.Payment{}
			}
			out[p.Provider][p.ID] = p
		}
		if len(page) < listPage {
			return out, nil
		}
		f.BeforeID = page[len(page)-1].ID
	}
}

// window is the part of the provider's history a run compares.
type window struct {
	from, to time.Time // [from, to); from zero: the beginning
}

func (w window) holds(t time.Time) bool {
	return !t.IsZero() && !t.Before(w.from) && t.Before(w.to)
}

// reconcileProviders compares each provider that has a report with our
// payments, and again those that showed a difference, from a fresh read.
func (s *Service) reconcileProviders(ctx context.Context, run *Run, opts RunOptions, w window) ([]finding, error) {
	if len(s.d.Providers) == 0 {
		return nil, nil
	}
	var reporters []psp.Provider
	for _, p := range s.d.Providers {
		if _, ok := p.(psp.Reporter); ok {
			reporters = append(reporters, p)
		} else {
			run.Detail.Notes = append(run.Detail.Notes, "provider "+p.Name()+" offers no transaction report: its payments are not compared")
		}
	}
	if len(reporters) == 0 {
		return nil, nil
	}
	if opts.Login != 0 {
		run.Detail.Notes = append(run.Detail.Notes, "with one login, report lines we have no payment for are not looked for")
	}
	// The report is read before our payments, so that whatever the provider
	// said has had every chance to reach us by the time we read.
	reports := map[string][]psp.ReportLine{}
	for _, p := range reporters {
		lines, err := s.readReport(ctx, p, w)
		if err != nil {
			run.Detail.Skipped = append(run.Detail.Skipped, "provider "+p.Name()+": the report: "+err.Error())
			continue
		}
		reports[p.Name()] = lines
	}
	ours, err := s.ourPayments(ctx, opts.Login)
	if err != nil {
		return nil, err
	}
	var out []finding
	for _, p := range reporters {
		lines, ok := reports[p.Name()]
		if !ok {
			continue
		}
		byID := latestLines(lines)
		ids := s.idsToCompare(p.Name(), byID, ours, opts, w)
		fig := ProviderFigures{Name: p.Name(), ReportLines: len(lines), Payments: len(ids)}
		first := map[string]bool{}
		var again []string
		for _, id := range ids {
			for _, f := range s.comparePayment(p.Name(), id, byID, ours, opts) {
				first[f.key()] = true
				if !slices.Contains(again, id) {
					again = append(again, id)
				}
			}
		}
		if len(again) > 0 {
			// Read both sides again: a webhook may have landed meanwhile.
			fresh, err := s.readReport(ctx, p, w)
			if err != nil {
				run.Detail.Skipped = append(run.Detail.Skipped, "provider "+p.Name()+": the report, read again: "+err.Error())
				continue
			}
			freshByID := latestLines(fresh)
			freshOurs := map[string]map[string]payments.Payment{}
			for _, id := range again {
				q, err := s.d.Payments.Get(ctx, id)
				switch {
				case errs.Is(err, errs.NotFound):
				case err != nil:
					return nil, errs.Wrap("reconcile.reconcileProviders", err)
				default:
					if freshOurs[q.Provider] == nil {
						freshOurs[q.Provider] = map[string]payments.Payment{}
					}
					freshOurs[q.Provider][q.ID] = q
				}
			}
			for _, id := range again {
				for _, f := range s.comparePayment(p.Name(), id, freshByID, freshOurs, opts) {
					if first[f.key()] {
						out = append(out, f)
					}
				}
			}
		}
		run.ReportLine += fig.ReportLines
		run.Payments += fig.Payments
		run.Detail.Providers = append(run.Detail.Providers, fig)
	}
	return out, nil
}

func (s *Service) readReport(ctx context.Context, p psp.Provider, w window) ([]psp.ReportLine, error) {
	from := w.from
	if !from.IsZero() {
		from = from.Add(-s.cfg.ReportSlack)
	}
	return p.(psp.Reporter).Report(ctx, from, s.now().Add(time.Microsecond))
}

// latestLines keeps the latest line per payment id.
func latestLines(lines []psp.ReportLine) map[string]psp.ReportLine {
	out := map[string]psp.ReportLine{}
	for _, l := range lines {
		if prev, ok := out[l.ID]; !ok || !l.At.Before(prev.At) {
			out[l.ID] = l
		}
	}
	return out
}

// idsToCompare are the payments a run compares at a provider: ours that
// succeeded inside the window, and the report's lines changed inside it.
func (s *Service) idsToCompare(name string, lines map[string]psp.ReportLine, ours map[string]map[string]payments.Payment, opts RunOptions, w window) []string {
	set := map[string]bool{}
	for id, p := range ours[name] {
		if p.Status == payments.Succeeded && w.holds(p.FinalAt) {
			set[id] = true
		}
	}
	for id, l := range lines {
		if !w.holds(l.At) {
			continue
		}
		if opts.Login != 0 && !known(ours, id) {
			continue // someone else's, or nobody's: not this login's business
		}
		set[id] = true
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func known(ours map[string]map[string]payments.Payment, id string) bool {
	for _, byID := range ours {
		if _, ok := byID[id]; ok {
			return true
		}
	}
	return false
}

// pspStatus is our payment status as a provider would say it; ok is false
// for a payment under review, which its own work queue handles.
func pspStatus(s payments.Status) (psp.Status, bool) {
	switch s {
	case payments.Created, payments.Pending:
		return psp.Pending, true
	case payments.Authorised:
		return psp.Authorised, true
	case payments.Succeeded:
		return psp.Succeeded, true
	case payments.Declined:
		return psp.Declined, true
	case payments.Failed:
		return psp.Failed, true
	case payments.Expired:
		return psp.Expired, true
	}
	return "", false
}

// comparePayment compares one payment id between the report (lines, at
// provider name) and our records.
func (s *Service) comparePayment(name, id string, lines map[string]psp.ReportLine, ours map[string]map[string]payments.Payment, opts RunOptions) []finding {
	line, inReport := lines[id]
	p, here := ours[name][id]
	if !here {
		if !inReport {
			return nil
		}
		if opts.Login != 0 && !known(ours, id) {
			return nil
		}
		expected := "no payment of ours"
		evidence := map[string]any{"report": lineEvidence(line), "ours": nil}
		for provider, byID := range ours {
			if q, ok := byID[id]; ok {
				expected = "our payment " + id + " is at provider " + provider
				evidence["ours"] = paymentEvidence(q)
			}
		}
		return []finding{{Kind: KindReportUnknown, Subject: id, Ref: line.ProviderRef,
			Expected: expected, Actual: describeLine(line), Evidence: evidence}}
	}
	ourStatus, comparable := pspStatus(p.Status)
	if !comparable {
		return nil // under review: the payments work queue has it
	}
	want := p.ProviderAmount()
	if p.Received.Currency().Code != "" {
		want = p.Received
	}
	ourText := string(ourStatus) + " " + want.String()
	if !inReport {
		if p.Status != payments.Succeeded {
			return nil
		}
		return []finding{{Kind: KindPaymentMissing, Subject: id, Ref: p.ProviderRef,
			Expected: ourText, Actual: "absent from the report",
			Evidence: map[string]any{"ours": paymentEvidence(p), "report": nil}}}
	}
	evidence := map[string]any{"ours": paymentEvidence(p), "report": lineEvidence(line)}
	wantKind := psp.PaymentEvent
	if p.Direction == payments.Withdrawal {
		wantKind = psp.PayoutEvent
	}
	var out []finding
	if line.Kind != wantKind {
		out = append(out, finding{Kind: KindPaymentKind, Subject: id, Ref: line.ProviderRef,
			Expected: string(wantKind), Actual: string(line.Kind), Evidence: evidence})
	}
	switch {
	case !ourStatus.Final() && !line.Status.Final():
		// Neither side has finished; no money has moved yet.
	case ourStatus != line.Status:
		out = append(out, finding{Kind: KindPaymentStatus, Subject: id, Ref: line.ProviderRef,
			Expected: ourText, Actual: string(line.Status) + " " + line.Amount.String(), Evidence: evidence})
	case line.Status == psp.Succeeded && line.Amount != want:
		out = append(out, finding{Kind: KindPaymentAmount, Subject: id, Ref: line.ProviderRef,
			Expected: want.String(), Actual: line.Amount.String(), Evidence: evidence})
	}
	return out
}
