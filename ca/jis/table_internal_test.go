package jis

// These tests look inside the table: they check what x/text's EUC-JP tables
// hold row by row against the standards, which the exported API cannot show.

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"unsafe"

	"golang.org/x/text/encoding/japanese"
)

// cellsPerRow counts the cells eachCell yields, per set and row.
func cellsPerRow() map[Set]map[int]int {
	n := map[Set]map[int]int{SetJISX0208: {}, SetJISX0212: {}}
	eachCell(func(s Set, row, _ int, _ rune) { n[s][row]++ })
	return n
}

// TestRowCounts checks the cells read against the standards: JIS X 0208
// rows 1–8 hold 524 non-kanji (94, 53, 62, 83, 86, 48, 66, 32), rows 16–47
// the 2,965 level-1 kanji (row 47: 51), rows 48–84 the 3,390 level-2 kanji
// (row 84: 6); JIS X 0212 rows 2, 6, 7, 9, 10, 11 hold 266 non-kanji (21, 21,
// 26, 27, 86, 85) and rows 16–77 the 5,801 kanji (row 77: 67).
func TestRowCounts(t *testing.T) {
	full := func(first, last, lastRow int) map[int]int {
		m := map[int]int{}
		for r := first; r < last; r++ {
			m[r] = 94
		}
		m[last] = lastRow
		return m
	}
	want := map[Set]map[int]int{
		SetJISX0208: {1: 94, 2: 53, 3: 62, 4: 83, 5: 86, 6: 48, 7: 66, 8: 32},
		SetJISX0212: {2: 21, 6: 21, 7: 26, 9: 27, 10: 86, 11: 85},
	}
	for r, c := range full(16, 47, 51) {
		want[SetJISX0208][r] = c
	}
	for r, c := range full(48, 84, 6) {
		want[SetJISX0208][r] = c
	}
	for r, c := range full(16, 77, 67) {
		want[SetJISX0212][r] = c
	}

	got := cellsPerRow()
	for _, s := range []Set{SetJISX0208, SetJISX0212} {
		t.Run(s.String(), func(t *testing.T) {
			total, wantTotal := 0, 0
			for row := 1; row <= 94; row++ {
				if got[s][row] != want[s][row] {
					t.Errorf("row %d: %d cells, want %d", row, got[s][row], want[s][row])
				}
				total += got[s][row]
				wantTotal += want[s][row]
			}
			if total != wantTotal {
				t.Errorf("%d cells, want %d", total, wantTotal)
			}
		})
	}
}

// TestCellsDistinct checks that no two cells of a set share a rune, and that
// the two sets share exactly U+FF5E (x/text maps both JIS X 0208 1-33 and
// JIS X 0212 2-23 to it).
func TestCellsDistinct(t *testing.T) {
	seen := map[Set]map[rune]string{SetJISX0208: {}, SetJISX0212: {}}
	eachCell(func(s Set, row, cell int, r rune) {
		at := fmt.Sprintf("%v %d-%d", s, row, cell)
		if prev, ok := seen[s][r]; ok {
			t.Errorf("%U at %s and %s", r, prev, at)
		}
		seen[s][r] = at
	})
	var shared []rune
	for r := range seen[SetJISX0208] {
		if _, ok := seen[SetJISX0212][r]; ok {
			shared = append(shared, r)
		}
	}
	if len(shared) != 1 || shared[0] != '\uFF5E' {
		t.Errorf("runes in both sets: %U, want [U+FF5E]", shared)
	}
	if len(seen[SetJISX0208]) != 6879 || len(seen[SetJISX0212]) != 6067 {
		t.Errorf("distinct runes: %d and %d, want 6879 and 6067", len(seen[SetJISX0208]), len(seen[SetJISX0212]))
	}
}

// TestJISMappings checks that each extra code point is the JIS mapping of a
// cell x/text maps elsewhere, and is not the rune of any cell itself.
func TestJISMappings(t *testing.T) {
	cells := map[[2]int]rune{}
	runes := map[rune]bool{}
	eachCell(func(s Set, row, cell int, r rune) {
		if s == SetJISX0208 {
			cells[[2]int{row, cell}] = r
		}
		runes[r] = true
	})
	xtext := map[[2]int]rune{
		{1, 33}: '\uFF5E', {1, 34}: '\u2225', {1, 61}: '\uFF0D',
		{1, 81}: '\uFFE0', {1, 82}: '\uFFE1', {2, 44}: '\uFFE2',
	}
	if len(jisMappings) != len(xtext) {
		t.Fatalf("%d JIS mappings, want %d", len(jisMappings), len(xtext))
	}
	for _, m := range jisMappings {
		at := [2]int{m.row, m.cell}
		if got := cells[at]; got != xtext[at] {
			t.Errorf("x/text maps %d-%d to %U, want %U", m.row, m.cell, got, xtext[at])
		}
		if runes[m.r] {
			t.Errorf("JIS mapping %U of %d-%d is also a cell's rune", m.r, m.row, m.cell)
		}
		if SetOf(m.r) != SetJISX0208 {
			t.Errorf("SetOf(%U) = %v", m.r, SetOf(m.r))
		}
	}
}

// TestVendorRows looks at the rows of x/text's JIS X 0208 table that the
// standard leaves empty. Row 13 (NEC special characters, 83 cells) and rows
// 89–92 (NEC-selected IBM extensions, 374 cells) are filled; nothing else is.
// Their characters are refused unless they are also characters of the
// standards: 9 of row 13 repeat row 2 (≒≡∫√⊥∠∵∩∪), № is JIS X 0212 2-81;
// of rows 89–92, 279 kanji are JIS X 0212 kanji and ￢ repeats 2-44.
func TestVendorRows(t *testing.T) {
	dec := japanese.EUCJP.NewDecoder()
	type count struct{ cells, allowed, in0212 int }
	got := map[int]count{}
	for row := 1; row <= 94; row++ {
		if (row >= 1 && row <= 8) || (row >= 16 && row <= 84) {
			continue
		}
		for cell := 1; cell <= 94; cell++ {
			r, ok := decodeOne(dec, []byte{byte(0xA0 + row), byte(0xA0 + cell)}, make([]byte, 8))
			if !ok {
				continue
			}
			c := got[row]
			c.cells++
			if Allowed(r) {
				c.allowed++
			}
			if SetOf(r) == SetJISX0212 {
				c.in0212++
			}
			got[row] = c
		}
	}
	want := map[int]count{
		13: {83, 10, 1},
		89: {94, 77, 77},
		90: {94, 78, 78},
		91: {94, 62, 62},
		92: {92, 63, 62},
	}
	for row := 1; row <= 94; row++ {
		if got[row] != want[row] {
			t.Errorf("row %d: %+v, want %+v", row, got[row], want[row])
		}
	}
}

// TestIBMExtensions decodes the IBM extensions of Shift_JIS (0xFA40–0xFC4B,
// 388 characters): only those that are also characters of the standards are
// allowed — the 279 kanji that are JIS X 0212, № (JIS X 0212), and ￢ and ∵
// (JIS X 0208 row 2).
func TestIBMExtensions(t *testing.T) {
	dec := japanese.ShiftJIS.NewDecoder()
	decoded, allowed := 0, map[Set]int{}
	for c := 0xFA40; c <= 0xFC4B; c++ {
		out, err := dec.Bytes([]byte{byte(c >> 8), byte(c)})
		if err != nil {
			t.Fatal(err)
		}
		rs := []rune(string(out))
		if len(rs) != 1 || rs[0] == '\uFFFD' {
			continue
		}
		decoded++
		allowed[SetOf(rs[0])]++
	}
	want := map[Set]int{SetNone: 388 - 282, SetJISX0212: 279 + 1, SetJISX0208: 2}
	if decoded != 388 || len(allowed) != len(want) {
		t.Fatalf("%d decoded, by set %v; want 388, %v", decoded, allowed, want)
	}
	for s, n := range want {
		if allowed[s] != n {
			t.Errorf("%v: %d, want %d", s, allowed[s], n)
		}
	}
}

// TestAgainstGlibc compares every cell read with glibc's EUC-JP charmap, a
// table made independently of x/text's (from Unicode's JIS0208.TXT and
// JIS0212.TXT). They must agree on every cell but the six of jisMappings,
// where glibc has the JIS mapping. It needs the charmap file (Debian and
// Ubuntu: package locales).
func TestAgainstGlibc(t *testing.T) {
	const path = "/usr/share/i18n/charmaps/EUC-JP.gz"
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("no glibc charmap to compare with: %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^<U([0-9A-F]{4,8})>\s+/x([0-9a-f]{2})/x([0-9a-f]{2})(?:/x([0-9a-f]{2}))?\s`)
	glibc := map[Set]map[[2]int]rune{SetJISX0208: {}, SetJISX0212: {}}
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		u, _ := strconv.ParseUint(m[1], 16, 32)
		b1, _ := strconv.ParseUint(m[2], 16, 8)
		b2, _ := strconv.ParseUint(m[3], 16, 8)
		switch {
		case b1 == 0x8F && m[4] != "":
			b3, _ := strconv.ParseUint(m[4], 16, 8)
			glibc[SetJISX0212][[2]int{int(b2) - 0xA0, int(b3) - 0xA0}] = rune(u)
		case b1 >= 0xA1 && m[4] == "":
			glibc[SetJISX0208][[2]int{int(b1) - 0xA0, int(b2) - 0xA0}] = rune(u)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(glibc[SetJISX0208]) != 6879 || len(glibc[SetJISX0212]) != 6067 {
		t.Fatalf("glibc charmap: %d and %d cells, want 6879 and 6067", len(glibc[SetJISX0208]), len(glibc[SetJISX0212]))
	}

	alias := map[[2]int]rune{}
	for _, m := range jisMappings {
		alias[[2]int{m.row, m.cell}] = m.r
	}
	n := 0
	eachCell(func(s Set, row, cell int, r rune) {
		at := [2]int{row, cell}
		g, ok := glibc[s][at]
		switch {
		case !ok:
			t.Errorf("%v %d-%d: x/text %U, not in glibc", s, row, cell, r)
		case s == SetJISX0208 && alias[at] != 0:
			if g != alias[at] {
				t.Errorf("%v %d-%d: glibc %U, JIS mapping %U", s, row, cell, g, alias[at])
			}
		case g != r:
			t.Errorf("%v %d-%d: x/text %U, glibc %U", s, row, cell, r, g)
		}
		n++
	})
	if n != 6879+6067 {
		t.Errorf("%d cells read, want %d", n, 6879+6067)
	}
}

// TestSuggestionTable checks the hand-written table: every key is refused,
// every substitute Allowed, different from its key and listed once.
func TestSuggestionTable(t *testing.T) {
	for k, subs := range suggestions {
		if Allowed(k) {
			t.Errorf("%U is Allowed: it needs no entry", k)
		}
		if len(subs) == 0 {
			t.Errorf("%U: empty entry", k)
		}
		seen := map[rune]bool{}
		for _, s := range subs {
			if !Allowed(s) || s == k || seen[s] {
				t.Errorf("%U: substitute %U not Allowed, unchanged or repeated", k, s)
			}
			seen[s] = true
		}
	}
}

func TestTableSize(t *testing.T) {
	if got := unsafe.Sizeof(charTable{}); got != 16<<10 {
		t.Errorf("charTable is %d bytes, want 16 KiB", got)
	}
}

// BenchmarkBuildTable measures building the sets (done once per process).
func BenchmarkBuildTable(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		buildTable()
	}
}

func BenchmarkAllowed(b *testing.B) {
	table()
	for b.Loop() {
		Allowed('\u9DD7')
	}
}

func BenchmarkCheck(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Check("東京都清瀬市中里１丁目２番３号")
	}
}
