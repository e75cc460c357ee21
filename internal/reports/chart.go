package reports

import (
	"fmt"
	"hash/fnv"
	"html/template"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Charts are inline SVG for server-rendered pages: no script, no external
// resource (fonts, styles or images), and the same input always gives the
// same bytes, so pages can be compared with golden files. Each chart is an
// <svg role="img"> labelled by its <title> and a <desc> that states every
// value in words, and every bar carries its value as visible text and as
// a <title> tooltip. All text is escaped.

// BarChart is a chart of vertical bars grouped by category: one bar per
// series in each category.
type BarChart struct {
	// ID makes the chart's element ids unique on a page (letters, digits,
	// '-' and '_' are kept); empty derives one from Title.
	ID          string
	Title       string
	Description string // a sentence before the values in <desc>
	Categories  []string
	// AxisLabels, if set, are shorter labels under the bars, one per
	// category ("05-04" for "2026-05-04"); <desc> and tooltips use
	// Categories.
	AxisLabels []string
	Series     []BarSeries
}

// BarSeries is one series of a BarChart.
type BarSeries struct {
	Name string
	// Values has one non-negative value per category (negative values are
	// drawn as 0); Labels, if set, is the text shown for each value
	// ("291.60 USD"), else the value in digits.
	Values []int64
	Labels []string
}

// The geometry of bar charts, in SVG user units.
const (
	barWidth     = 14
	barGap       = 10 // between groups
	barLeft      = 16
	barTop       = 48 // title and legend
	barPlot      = 200
	barMaxHeight = 130 // the tallest bar; the rest of the plot holds its value
	barBottom    = 40  // category labels
	chartMinW    = 320
	labelMaxRune = 24
	axisMaxRune  = 16
)

var palette = []string{"#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a", "#c62828", "#00838f"}

// SVG renders the chart.
func (c BarChart) SVG() template.HTML {
	id := chartID(c.ID, c.Title)
	series := len(c.Series)
	axisRunes := 0
	for ci, cat := range c.Categories {
		axisRunes = max(axisRunes, utf8.RuneCountInString(short(c.axisLabel(ci, cat), axisMaxRune)))
	}
	inner := max(max(series, 1)*barWidth, axisRunes*6)
	groupW := inner + barGap
	width := max(barLeft*2+len(c.Categories)*groupW, chartMinW)
	height := barTop + barPlot + barBottom
	var maxV int64
	for _, s := range c.Series {
		for _, v := range s.Values {
			maxV = max(maxV, v)
		}
	}
	var b strings.Builder
	svgOpen(&b, id, width, height)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title>`+"\n", id, esc(c.Title))
	fmt.Fprintf(&b, `<desc id="%s-desc">%s</desc>`+"\n", id, esc(c.describe()))
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", barLeft, esc(short(c.Title, 80)))
	x := barLeft
	for i, s := range c.Series {
		fmt.Fprintf(&b, `<rect x="%d" y="30" width="10" height="10" fill="%s"/><text x="%d" y="39" font-size="11">%s</text>`+"\n",
			x, palette[i%len(palette)], x+14, esc(short(s.Name, labelMaxRune)))
		x += 14 + 7*utf8.RuneCountInString(short(s.Name, labelMaxRune)) + 16
	}
	base := barTop + barPlot
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#757575" stroke-width="1"/>`+"\n", barLeft, base, width-barLeft, base)
	for ci, cat := range c.Categories {
		gx := barLeft + ci*groupW + barGap/2
		bars := gx + (inner-series*barWidth)/2
		fmt.Fprintf(&b, `<g aria-label="%s">`+"\n", esc(cat))
		for si, s := range c.Series {
			v := valueAt(s.Values, ci)
			h := scale(v, maxV, barMaxHeight)
			bx := bars + si*barWidth
			label := labelAt(s, ci)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
				bx, base-h, barWidth-2, h, palette[si%len(palette)], esc(s.Name+", "+cat+": "+label))
			tx, ty := bx+barWidth/2+3, base-h-4
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="9" transform="rotate(-90 %d %d)">%s</text>`+"\n",
				tx, ty, tx, ty, esc(short(label, labelMaxRune)))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" text-anchor="middle">%s</text>`+"\n",
			gx+inner/2, base+16, esc(short(c.axisLabel(ci, cat), axisMaxRune)))
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>")
	return template.HTML(b.String()) // #nosec G203 -- every text node and attribute value above is escaped by esc
}

func (c BarChart) axisLabel(i int, cat string) string {
	if i < len(c.AxisLabels) {
		return c.AxisLabels[i]
	}
	return cat
}

func (c BarChart) describe() string {
	var parts []string
	if c.Description != "" {
		parts = append(parts, c.Description)
	}
	for ci, cat := range c.Categories {
		var vals []string
		for _, s := range c.Series {
			vals = append(vals, s.Name+" "+labelAt(s, ci))
		}
		parts = append(parts, cat+": "+strings.Join(vals, ", ")+".")
	}
	if len(c.Categories) == 0 {
		parts = append(parts, "No data.")
	}
	return strings.Join(parts, " ")
}

func valueAt(vs []int64, i int) int64 {
	if i < len(vs) && vs[i] > 0 {
		return vs[i]
	}
	return 0
}

func labelAt(s BarSeries, i int) string {
	if i < len(s.Labels) {
		return s.Labels[i]
	}
	if i < len(s.Values) {
		return strconv.FormatInt(s.Values[i], 10)
	}
	return "0"
}

// scale is v/max of full, rounded down, in exact integer arithmetic; a
// positive value is at least 1 unit high so that it shows.
func scale(v, maxV int64, full int) int {
	if v <= 0 || maxV <= 0 {
		return 0
	}
	h := new(big.Int).Mul(big.NewInt(v), big.NewInt(int64(full)))
	h.Quo(h, big.NewInt(maxV))
	return max(int(h.Int64()), 1)
}

// The geometry of funnel charts.
const (
	funnelLabelW = 130
	funnelBarW   = 300
	funnelRowH   = 40
	funnelTop    = 40
	funnelWidth  = funnelLabelW + funnelBarW + 190
)

// FunnelSVG renders a funnel as horizontal bars, one per step, each with
// its count and its conversions from the previous and the first step.
// id works as BarChart.ID.
func FunnelSVG(id, title string, f Funnel) template.HTML {
	id = chartID(id, title)
	height := funnelTop + len(f.Steps)*funnelRowH + 10
	var first int64
	if len(f.Steps) > 0 {
		first = f.Steps[0].Count
	}
	for _, s := range f.Steps {
		first = max(first, s.Count)
	}
	var b strings.Builder
	svgOpen(&b, id, funnelWidth, height)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title>`+"\n", id, esc(title))
	fmt.Fprintf(&b, `<desc id="%s-desc">%s</desc>`+"\n", id, esc(describeFunnel(f)))
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="14" font-weight="bold">%s</text>`+"\n", esc(short(title, 80)))
	for i, s := range f.Steps {
		y := funnelTop + i*funnelRowH
		w := scale(s.Count, first, funnelBarW)
		x := funnelLabelW + (funnelBarW-w)/2
		fmt.Fprintf(&b, `<g aria-label="%s">`+"\n", esc(s.Name))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="end">%s</text>`+"\n", funnelLabelW-8, y+20, esc(short(s.Name, labelMaxRune)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="28" fill="%s"><title>%s</title></rect>`+"\n",
			x, y+2, w, palette[i%len(palette)], esc(stepText(i, s)))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12">%s</text>`+"\n", funnelLabelW+funnelBarW+8, y+20, esc(stepValue(i, s)))
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>")
	return template.HTML(b.String()) // #nosec G203 -- every text node and attribute value above is escaped by esc
}

// stepValue is the visible text of a funnel step: its count and, after
// the first step, its conversion from the previous one.
func stepValue(i int, s FunnelStep) string {
	if i == 0 {
		return strconv.FormatInt(s.Count, 10)
	}
	return strconv.FormatInt(s.Count, 10) + " (" + FormatBps(s.FromPreviousBps) + ")"
}

func stepText(i int, s FunnelStep) string {
	t := s.Name + ": " + strconv.FormatInt(s.Count, 10)
	if i > 0 {
		t += ", " + FormatBps(s.FromPreviousBps) + " of the previous step, " + FormatBps(s.FromFirstBps) + " of the first"
	}
	return t
}

func describeFunnel(f Funnel) string {
	if len(f.Steps) == 0 {
		return "No data."
	}
	var parts []string
	for i, s := range f.Steps {
		parts = append(parts, stepText(i, s)+".")
	}
	return strings.Join(parts, " ")
}

func svgOpen(b *strings.Builder, id string, w, h int) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="%s-title %s-desc" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n",
		id, id, w, h, w, h)
}

// chartID keeps the safe characters of id, or derives an id from title.
func chartID(id, title string) string {
	var b strings.Builder
	for _, r := range id {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	if b.Len() > 0 {
		return "chart-" + b.String()
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(title))
	return fmt.Sprintf("chart-%08x", h.Sum32())
}

// esc escapes text for an SVG text node or a double-quoted attribute and
// drops the control characters XML does not allow.
func esc(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, s)
	return template.HTMLEscapeString(s)
}

// short cuts s to n runes with an ellipsis.
func short(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// CountsChart is the number of completed deposits and withdrawals per day,
// all currencies together.
func (d Dashboard) CountsChart() BarChart {
	c := BarChart{ID: "daily-counts", Title: "Completed deposits and withdrawals per day",
		Description: "Number of deposits and withdrawals completed each day (UTC), all currencies."}
	dep := BarSeries{Name: "Deposits"}
	wd := BarSeries{Name: "Withdrawals"}
	for _, day := range d.Days {
		c.Categories = append(c.Categories, day.Date.Format("2006-01-02"))
		c.AxisLabels = append(c.AxisLabels, day.Date.Format("01-02"))
		var nd, nw int64
		for _, t := range day.Totals {
			nd += t.Deposits.Count
			nw += t.Withdrawals.Count
		}
		dep.Values = append(dep.Values, nd)
		wd.Values = append(wd.Values, nw)
	}
	c.Series = []BarSeries{dep, wd}
	return c
}

// AmountsChart is the sum of completed deposits (credited) and withdrawals
// (taken from trading accounts) per day in one account currency. Bars are
// drawn from exact minor units; labels are exact decimals.
func (d Dashboard) AmountsChart(currency string) BarChart {
	c := BarChart{ID: "daily-amounts-" + currency, Title: "Deposits and withdrawals per day in " + currency,
		Description: "Sums of the deposits credited to and the withdrawals taken from " + currency + " trading accounts each day (UTC)."}
	dep := BarSeries{Name: "Deposits"}
	wd := BarSeries{Name: "Withdrawals"}
	for _, day := range d.Days {
		c.Categories = append(c.Categories, day.Date.Format("2006-01-02"))
		c.AxisLabels = append(c.AxisLabels, day.Date.Format("01-02"))
		var t DayTotals
		for _, x := range day.Totals {
			if x.Currency == currency {
				t = x
			}
		}
		for _, p := range []struct {
			s *BarSeries
			t Tally
		}{{&dep, t.Deposits}, {&wd, t.Withdrawals}} {
			p.s.Values = append(p.s.Values, p.t.Sum.Minor())
			label := "0 " + currency
			if p.t.Sum.Currency().Code != "" {
				label = p.t.Sum.String()
			}
			p.s.Labels = append(p.s.Labels, label)
		}
	}
	c.Series = []BarSeries{dep, wd}
	return c
}

// DeclinesChart is the number of declined and failed payments per
// direction and code.
func (d Dashboard) DeclinesChart() BarChart {
	c := BarChart{ID: "declines", Title: "Declined and failed payments by reason",
		Description: "Payments that ended declined or failed in the period, by direction and decline code."}
	s := BarSeries{Name: "Payments"}
	for _, x := range d.Declines {
		c.Categories = append(c.Categories, x.Direction+" "+x.Code)
		c.AxisLabels = append(c.AxisLabels, x.Code)
		s.Values = append(s.Values, x.Count)
	}
	c.Series = []BarSeries{s}
	return c
}

// FunnelChart renders the dashboard's deposit funnel.
func (d Dashboard) FunnelChart() template.HTML {
	return FunnelSVG("funnel", "Deposit funnel", d.Funnel)
}
