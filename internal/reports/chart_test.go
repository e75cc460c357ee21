package reports_test

import (
	"encoding/xml"
	"errors"
	"flag"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/reports"
)

var update = flag.Bool("update", false, "rewrite the golden SVG files in testdata")

// sampleDashboard is a fixed dashboard of three days in two currencies.
func sampleDashboard() reports.Dashboard {
	day := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	tally := func(n int64, minor int64, c money.Currency) reports.Tally {
		return reports.Tally{Count: n, Sum: money.New(minor, c)}
	}
	return reports.Dashboard{
		From: day, To: day.AddDate(0, 0, 3), Currencies: []string{"EUR", "USD"},
		Days: []reports.Day{
			{Date: day, Totals: []reports.DayTotals{
				{Currency: "EUR", Deposits: tally(1, 9720, eur), Withdrawals: tally(0, 0, eur)},
				{Currency: "USD", Deposits: tally(2, 12615, usd), Withdrawals: tally(0, 0, usd)}}},
			{Date: day.AddDate(0, 0, 1), Totals: []reports.DayTotals{
				{Currency: "EUR", Deposits: tally(0, 0, eur), Withdrawals: tally(0, 0, eur)},
				{Currency: "USD", Deposits: tally(0, 0, usd), Withdrawals: tally(2, 35000, usd)}}},
			{Date: day.AddDate(0, 0, 2), Totals: []reports.DayTotals{
				{Currency: "EUR", Deposits: tally(3, 123456, eur), Withdrawals: tally(1, 5000, eur)},
				{Currency: "USD", Deposits: tally(5, 99999, usd), Withdrawals: tally(1, 1, usd)}}},
		},
		Declines: []reports.DeclineCount{{Direction: "deposit", Code: "do_not_honour", Count: 4}, {Direction: "deposit", Code: "insufficient_funds", Count: 2},
			{Direction: "withdrawal", Code: "account_closed", Count: 1}},
		Funnel: reports.Funnel{Steps: []reports.FunnelStep{
			{Name: reports.StepScreenOpened, Count: 120, FromPreviousBps: 10000, FromFirstBps: 10000},
			{Name: reports.StepMethodChosen, Count: 80, FromPreviousBps: 6666, FromFirstBps: 6666},
			{Name: reports.StepPaid, Count: 60, FromPreviousBps: 7500, FromFirstBps: 5000},
			{Name: reports.StepCredited, Count: 59, FromPreviousBps: 9833, FromFirstBps: 4916},
		}},
	}
}

func TestChartsMatchTheirGoldenFiles(t *testing.T) {
	d := sampleDashboard()
	for _, c := range []struct {
		name string
		svg  func() template.HTML
	}{
		{"counts", func() template.HTML { return d.CountsChart().SVG() }},
		{"amounts-usd", func() template.HTML { return d.AmountsChart("USD").SVG() }},
		{"declines", func() template.HTML { return d.DeclinesChart().SVG() }},
		{"funnel", d.FunnelChart},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := string(c.svg())
			if again := string(c.svg()); again != got {
				t.Fatal("the same chart rendered twice differs")
			}
			checkSVG(t, got)
			path := filepath.Join("testdata", c.name+".svg")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestChartsMatchTheirGoldenFiles -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s (-golden +got):\n%s", path, diff)
			}
		})
	}
}

func TestChartsEscapeHostileLabels(t *testing.T) {
	hostile := `"><script>alert('x')</script><img src=x onerror=alert(1)> & ` + "\x00\x1b"
	chart := reports.BarChart{
		ID:          `x" onload="alert(1)`,
		Title:       "Title " + hostile,
		Description: "Desc " + hostile,
		Categories:  []string{"Cat " + hostile},
		AxisLabels:  []string{"Axis " + hostile},
		Series:      []reports.BarSeries{{Name: "Series " + hostile, Values: []int64{5}, Labels: []string{"Label " + hostile}}},
	}
	funnel := reports.FunnelSVG(`"><script>`, "Funnel "+hostile, reports.Funnel{Steps: []reports.FunnelStep{{Name: "Step " + hostile, Count: 1, FromPreviousBps: 10000}}})
	for name, svg := range map[string]string{"bar chart": string(chart.SVG()), "funnel": string(funnel)} {
		t.Run(name, func(t *testing.T) {
			doc := checkSVG(t, svg)
			// checkSVG refused event-handler attributes; as text they are harmless.
			for _, bad := range []string{"<script", "<img", "\x00", "\x1b"} {
				if strings.Contains(svg, bad) {
					t.Errorf("the SVG contains %q:\n%s", bad, svg)
				}
			}
			// The text survives as text, escaped, not as markup.
			clean := strings.NewReplacer("\x00", "\uFFFD", "\x1b", "\uFFFD").Replace(hostile)
			if !strings.HasSuffix(doc.title, clean) {
				t.Errorf("title text %q does not end with the label %q", doc.title, clean)
			}
		})
	}
}

func TestBarHeightsAreProportional(t *testing.T) {
	svg := string(reports.BarChart{Title: "t", Categories: []string{"a", "b", "c", "d"},
		Series: []reports.BarSeries{{Name: "s", Values: []int64{0, 5, 10, 1}}}}.SVG())
	var heights []string
	for _, part := range strings.Split(svg, "<rect ")[1:] {
		if strings.Contains(part, "<title>") {
			h := part[strings.Index(part, `height="`)+len(`height="`):]
			heights = append(heights, h[:strings.IndexByte(h, '"')])
		}
	}
	// The tallest bar is 130 units; a small value still shows.
	if diff := cmp.Diff([]string{"0", "65", "130", "13"}, heights); diff != "" {
		t.Errorf("bar heights (-want +got):\n%s", diff)
	}
	huge := string(reports.BarChart{Title: "t", Categories: []string{"a", "b"},
		Series: []reports.BarSeries{{Name: "s", Values: []int64{money.MaxMinor, money.MaxMinor / 2}}}}.SVG())
	if !strings.Contains(huge, `height="130"`) || !strings.Contains(huge, `height="64"`) {
		t.Errorf("values near the int64 limit are not scaled exactly:\n%s", huge)
	}
}

// svgDoc is what checkSVG learnt about a chart.
type svgDoc struct {
	title, desc string
}

// checkSVG parses svg as XML and checks that it is a self-contained,
// labelled image: role="img", aria-labelledby naming its <title> and
// <desc>, only drawing elements, no event handlers, scripts, styles or
// links to anything outside.
func checkSVG(t *testing.T, svg string) svgDoc {
	t.Helper()
	allowed := map[string]bool{"svg": true, "title": true, "desc": true, "text": true, "rect": true, "line": true, "g": true}
	dec := xml.NewDecoder(strings.NewReader(svg))
	var doc svgDoc
	ids := map[string]string{}
	var root xml.StartElement
	var stack []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root.Name.Local == "" {
				root = tok
			}
			if !allowed[tok.Name.Local] {
				t.Errorf("element <%s> in a chart", tok.Name.Local)
			}
			for _, a := range tok.Attr {
				if strings.HasPrefix(strings.ToLower(a.Name.Local), "on") || strings.Contains(strings.ToLower(a.Name.Local), "href") ||
					strings.Contains(a.Value, "url(") {
					t.Errorf("attribute %s=%q in a chart", a.Name.Local, a.Value)
				}
				if a.Name.Local == "id" {
					ids[a.Value] = tok.Name.Local
				}
			}
			stack = append(stack, tok.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 2 && stack[1] == "title" {
				doc.title += string(tok)
			}
			if len(stack) == 2 && stack[1] == "desc" {
				doc.desc += string(tok)
			}
		}
	}
	attr := map[string]string{}
	for _, a := range root.Attr {
		attr[a.Name.Local] = a.Value
	}
	if root.Name.Local != "svg" || attr["role"] != "img" {
		t.Errorf("root <%s role=%q>, want <svg role=\"img\">", root.Name.Local, attr["role"])
	}
	labels := strings.Fields(attr["aria-labelledby"])
	if len(labels) != 2 || ids[labels[0]] != "title" || ids[labels[1]] != "desc" {
		t.Errorf("aria-labelledby %q does not name the chart's <title> and <desc> (ids %v)", attr["aria-labelledby"], ids)
	}
	if doc.title == "" || doc.desc == "" {
		t.Errorf("title %q, desc %q: both must say something", doc.title, doc.desc)
	}
	return doc
}

func TestChartDescriptionsStateEveryValue(t *testing.T) {
	d := sampleDashboard()
	doc := checkSVG(t, string(d.AmountsChart("USD").SVG()))
	for _, want := range []string{"2026-05-04: Deposits 126.15 USD, Withdrawals 0.00 USD.", "2026-05-05: Deposits 0.00 USD, Withdrawals 350.00 USD.",
		"2026-05-06: Deposits 999.99 USD, Withdrawals 0.01 USD."} {
		if !strings.Contains(doc.desc, want) {
			t.Errorf("desc %q lacks %q", doc.desc, want)
		}
	}
	doc = checkSVG(t, string(d.FunnelChart()))
	if want := "paid: 60, 75.00 % of the previous step, 50.00 % of the first."; !strings.Contains(doc.desc, want) {
		t.Errorf("funnel desc %q lacks %q", doc.desc, want)
	}
}
