package reports

import "testing"

func TestCellsThatLookLikeFormulasAreQuoted(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"equals", "=SUM(A1:A9)", "'=SUM(A1:A9)"},
		{"plus", "+1+2", "'+1+2"},
		{"minus", "-2+3", "'-2+3"},
		{"at", "@cmd", "'@cmd"},
		{"tab", "\t=1", "'\t=1"},
		{"carriage return", "\r=1", "'\r=1"},
		{"plain text", "alice@example.com", "alice@example.com"},
		{"formula later in the cell", "a=1", "a=1"},
		{"empty", "", ""},
		{"quote already", "'=1", "'=1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := safeCell(c.in); got != c.want {
				t.Errorf("safeCell(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestNumberCellsStayNumbers(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"decimal", "97.20", "97.20"},
		{"negative decimal", "-5.00", "-5.00"},
		{"whole", "1000", "1000"},
		{"formula", "-2+3", "'-2+3"},
		{"lone minus", "-", "'-"},
		{"dot at the end", "-1.", "'-1."},
		{"two dots", "1.2.3", "1.2.3"},
		{"two dots and a sign", "-1.2.3", "'-1.2.3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := numberCell(c.in); got != c.want {
				t.Errorf("numberCell(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
