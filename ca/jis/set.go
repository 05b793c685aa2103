package jis

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/transform"
)

// Set says which standard a rune belongs to: JIS X 0208, JIS X 0212, the
// U+3000 space, or none.
type Set int

// The sets of R-P5.
const (
	SetNone     Set = iota // in neither standard: needs a substitute
	SetJISX0208            // JIS X 0208: non-kanji rows 1–8, level 1 and level 2 kanji
	SetJISX0212            // JIS X 0212 (補助漢字), not also in JIS X 0208
	SetSpace               // U+3000, the full-width space between surname and given name
)

// String names the set as an error message or a log line would.
func (s Set) String() string {
	switch s {
	case SetNone:
		return "none"
	case SetJISX0208:
		return "JIS X 0208"
	case SetJISX0212:
		return "JIS X 0212"
	case SetSpace:
		return "U+3000 space"
	}
	return fmt.Sprintf("Set(%d)", int(s))
}

// ideographicSpace is U+3000. It is JIS X 0208 row 1 cell 1, but R-P5 names it
// on its own (the separator of surname and given name), so SetOf reports it
// as SetSpace.
const ideographicSpace = '\u3000'

// SetOf says which set r belongs to. A rune in both standards (only U+FF5E,
// see doc.go) is reported as JIS X 0208.
func SetOf(r rune) Set {
	if r == ideographicSpace {
		return SetSpace
	}
	t := table()
	switch {
	case t.jisx0208.has(r):
		return SetJISX0208
	case t.jisx0212.has(r):
		return SetJISX0212
	}
	return SetNone
}

// Allowed reports whether r may appear in a name or address (R-P5).
func Allowed(r rune) bool { return SetOf(r) != SetNone }

// rowRange is an inclusive range of rows (区) of a 94×94 character set.
type rowRange struct{ first, last int }

// The rows read from x/text's tables. JIS X 0208 leaves rows 9–15 and 85–94
// empty; x/text's table (the WHATWG index, i.e. Windows code page 932) fills
// row 13 with the NEC special characters and rows 89–92 with the
// NEC-selected IBM extensions, so those rows are never read. Within the rows
// read, every cell the x/text table defines is a cell the standard defines
// (checked by the tests against the standards' per-row counts).
var (
	rowsJISX0208 = []rowRange{{1, 8}, {16, 84}}
	rowsJISX0212 = []rowRange{{1, 15}, {16, 77}}
)

// jisMappings are the Unicode code points the JIS mapping (Unicode's
// JIS0208.TXT, also glibc's EUC-JP) gives to the six JIS X 0208 cells where
// x/text's table follows Windows code page 932 instead. Both are accepted:
// the character is the same JIS X 0208 character either way, and municipal
// systems convert with either table.
var jisMappings = []struct {
	row, cell int
	r         rune // JIS mapping; x/text's rune for the cell in the comment
}{
	{1, 33, '\u301C'}, // WAVE DASH 〜 (x/text: U+FF5E FULLWIDTH TILDE ～)
	{1, 34, '\u2016'}, // DOUBLE VERTICAL LINE ‖ (x/text: U+2225 PARALLEL TO ∥)
	{1, 61, '\u2212'}, // MINUS SIGN − (x/text: U+FF0D FULLWIDTH HYPHEN-MINUS －)
	{1, 81, '\u00A2'}, // CENT SIGN ¢ (x/text: U+FFE0 FULLWIDTH CENT SIGN ￠)
	{1, 82, '\u00A3'}, // POUND SIGN £ (x/text: U+FFE1 FULLWIDTH POUND SIGN ￡)
	{2, 44, '\u00AC'}, // NOT SIGN ¬ (x/text: U+FFE2 FULLWIDTH NOT SIGN ￢)
}

// bmpSet is a bit set over the Basic Multilingual Plane: every JIS X 0208
// and JIS X 0212 character maps into it. 8 KiB.
type bmpSet [(0xFFFF + 1) / 64]uint64

func (b *bmpSet) has(r rune) bool {
	return r >= 0 && r <= 0xFFFF && b[r>>6]&(1<<(r&63)) != 0
}

func (b *bmpSet) add(r rune) { b[r>>6] |= 1 << (r & 63) }

// charTable is the membership structure: two bit sets, 16 KiB in all.
type charTable struct {
	jisx0208, jisx0212 bmpSet
}

// table builds the sets on first use; later calls return the same table.
var table = sync.OnceValue(buildTable)

func buildTable() *charTable {
	t := new(charTable)
	eachCell(func(s Set, _, _ int, r rune) {
		if r > 0xFFFF {
			panic(fmt.Sprintf("jis: x/text maps a %v cell to %U, outside the BMP", s, r))
		}
		if s == SetJISX0208 {
			t.jisx0208.add(r)
		} else {
			t.jisx0212.add(r)
		}
	})
	for _, m := range jisMappings {
		t.jisx0208.add(m.r)
	}
	return t
}

// eachCell calls f for every cell of the rows read (rowsJISX0208,
// rowsJISX0212) that x/text's EUC-JP decoder maps to exactly one character,
// with its row and cell (1-based) and the character. JIS X 0208 row r cell c
// is the EUC-JP code (0xA0+r, 0xA0+c); JIS X 0212 is (0x8F, 0xA0+r, 0xA0+c).
func eachCell(f func(s Set, row, cell int, r rune)) {
	dec := japanese.EUCJP.NewDecoder()
	buf := make([]byte, 3+2*utf8.UTFMax) // one code, then its decoding: no allocation per cell
	for _, p := range []struct {
		set  Set
		rows []rowRange
	}{{SetJISX0208, rowsJISX0208}, {SetJISX0212, rowsJISX0212}} {
		for _, rr := range p.rows {
			for row := rr.first; row <= rr.last; row++ {
				for cell := 1; cell <= 94; cell++ {
					code := buf[:0]
					if p.set == SetJISX0212 {
						code = append(code, 0x8F)
					}
					code = append(code, byte(0xA0+row), byte(0xA0+cell))
					if r, ok := decodeOne(dec, code, buf[3:]); ok {
						f(p.set, row, cell, r)
					}
				}
			}
		}
	}
}

// decodeOne decodes one EUC-JP code into dst. It reports false unless the
// whole code decodes to one rune other than U+FFFD (x/text's mark for an
// undefined cell).
func decodeOne(dec transform.Transformer, code, dst []byte) (rune, bool) {
	dec.Reset()
	nDst, nSrc, err := dec.Transform(dst, code, true)
	if err != nil || nSrc != len(code) {
		return 0, false
	}
	r, size := utf8.DecodeRune(dst[:nDst])
	if r == utf8.RuneError || size != nDst {
		return 0, false
	}
	return r, true
}
