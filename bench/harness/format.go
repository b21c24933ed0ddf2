package harness

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// table writes a Markdown table, padding columns so it also reads as
// plain text.
func table(b *strings.Builder, head []string, rows [][]string) {
	w := make([]int, len(head))
	for i, h := range head {
		w[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, c := range r {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(b, " %s%s |", c, strings.Repeat(" ", w[i]-len([]rune(c))))
		}
		b.WriteString("\n")
	}
	line(head)
	b.WriteString("|")
	for i := range head {
		b.WriteString(strings.Repeat("-", w[i]+2) + "|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		line(r)
	}
	b.WriteString("\n")
}

func keyCells(k CellKey) []string {
	return []string{fmtBytes(k.Payload), strconv.Itoa(k.Clients), strconv.Itoa(k.Groups)}
}

// orStatus returns the status placeholder if there is one, else the
// formatted value.
func orStatus(rs []CellResult, ran bool, value func() string) string {
	if s := status(rs, ran); s != "" {
		return s
	}
	return value()
}

// ratio formats PairedRatio(a, b); "—" when no repetition pairs up.
func ratio(a, b []float64) string {
	r := PairedRatio(a, b)
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f", r)
}

// num formats x, or "—" for a missing value.
func num(x float64, format string) string {
	if math.IsNaN(x) {
		return "—"
	}
	return fmt.Sprintf(format, x)
}

// sig3 formats x with three significant digits (no exponent), "—" if
// missing: 0.0412, 4.12, 412, 4120.
func sig3(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	if x == 0 {
		return "0"
	}
	digits := 2 - int(math.Floor(math.Log10(math.Abs(x))))
	return strconv.FormatFloat(x, 'f', max(0, digits), 64)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtBytes(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// errorSummary renders error counts as "total (kind n, …)", most frequent
// first; "0" for none.
func errorSummary(errs map[string]int64) string {
	if len(errs) == 0 {
		return "0"
	}
	kinds := make([]string, 0, len(errs))
	var total int64
	for k, v := range errs {
		kinds = append(kinds, k)
		total += v
	}
	slices.SortFunc(kinds, func(a, b string) int {
		if c := cmp.Compare(errs[b], errs[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range kinds[:min(3, len(kinds))] {
		parts = append(parts, fmt.Sprintf("%s %d", oneLine(k), errs[k]))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// oneLine keeps a message on one line of a table or list: newlines become
// spaces, pipes (which would split a Markdown cell) are escaped, and it is
// capped so a child's stderr tail does not swamp the report.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 400 {
		s = string(r[:400]) + "…"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}
