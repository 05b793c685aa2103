package jis_test

import (
	"testing"
	"unicode/utf8"

	"github.com/shomei-pki/shomei/ca/jis"
)

// Independent facts about the standards: JIS X 0208 defines 6,879 characters
// (524 non-kanji, 2,965 level 1, 3,390 level 2), JIS X 0212 6,067 (266
// non-kanji, 5,801 kanji).
const (
	jisx0208Chars = 524 + 2965 + 3390
	jisx0212Chars = 266 + 5801
)

// TestSetSizes counts SetOf over every code point. Per set the count is the
// standard's number of characters, adjusted for the three documented
// differences between "runes SetOf reports" and "characters of the standard"
// (see doc.go):
//   - U+3000 is JIS X 0208 1-1 but SetOf reports SetSpace;
//   - six JIS X 0208 cells are accepted under two code points (x/text's and
//     the JIS mapping's);
//   - U+FF5E is JIS X 0208 1-33 in x/text's mapping and JIS X 0212 2-23:
//     SetOf reports JIS X 0208.
func TestSetSizes(t *testing.T) {
	jisMappings := []rune{'\u301C', '\u2016', '\u2212', '\u00A2', '\u00A3', '\u00AC'}
	for _, r := range jisMappings {
		if got := jis.SetOf(r); got != jis.SetJISX0208 {
			t.Errorf("SetOf(%U) = %v, want JIS X 0208", r, got)
		}
	}
	if got := jis.SetOf('\uFF5E'); got != jis.SetJISX0208 {
		t.Errorf("SetOf(U+FF5E) = %v, want JIS X 0208", got)
	}

	counts := map[jis.Set]int{}
	for r := rune(0); r <= utf8.MaxRune; r++ {
		counts[jis.SetOf(r)]++
	}
	want := map[jis.Set]int{
		jis.SetJISX0208: jisx0208Chars - 1 + len(jisMappings), // 6,884
		jis.SetJISX0212: jisx0212Chars - 1,                    // 6,066
		jis.SetSpace:    1,
	}
	for _, s := range []jis.Set{jis.SetJISX0208, jis.SetJISX0212, jis.SetSpace} {
		if counts[s] != want[s] {
			t.Errorf("%v: %d runes, want %d", s, counts[s], want[s])
		}
	}
}

func TestSetOf(t *testing.T) {
	tests := []struct {
		name string
		r    rune
		want jis.Set
	}{
		{"full-width space", '\u3000', jis.SetSpace},
		{"hiragana あ", 'あ', jis.SetJISX0208},
		{"katakana ヴ", 'ヴ', jis.SetJISX0208},
		{"full-width digit １ (row 3)", '１', jis.SetJISX0208},
		{"level 1 亜", '亜', jis.SetJISX0208},
		{"level 2 邊 U+908A", '\u908A', jis.SetJISX0208},
		{"level 2 邉 U+9089", '\u9089', jis.SetJISX0208},
		{"level 2 齋", '齋', jis.SetJISX0208},
		{"row 84 熙 (1990 addition)", '熙', jis.SetJISX0208},
		{"鷗 U+9DD7 is 補助漢字", '\u9DD7', jis.SetJISX0212},
		{"JIS X 0212 é", 'é', jis.SetJISX0212},
		{"JIS X 0212 №", '№', jis.SetJISX0212},
		{"NEC-selected 丨 U+4E28 is also JIS X 0212", '\u4E28', jis.SetJISX0212},
		{"NEC-selected 濵 U+6FF5 is also JIS X 0212", '\u6FF5', jis.SetJISX0212},
		{"髙 U+9AD9 IBM extension", '\u9AD9', jis.SetNone},
		{"﨑 U+FA11 IBM extension", '\uFA11', jis.SetNone},
		{"德 U+5FB7 IBM extension", '\u5FB7', jis.SetNone},
		{"① NEC row 13", '①', jis.SetNone},
		{"Ⅰ NEC row 13", 'Ⅰ', jis.SetNone},
		{"ⅰ IBM extension", 'ⅰ', jis.SetNone},
		{"㈱ NEC row 13", '㈱', jis.SetNone},
		{"㍻ NEC row 13", '㍻', jis.SetNone},
		{"＂ U+FF02 IBM extension", '\uFF02', jis.SetNone},
		{"𠮷 U+20BB7", 0x20BB7, jis.SetNone},
		{"JIS X 0213 俱 U+4FF1", '\u4FF1', jis.SetNone},
		{"ASCII A (JIS X 0201)", 'A', jis.SetNone},
		{"ASCII space", ' ', jis.SetNone},
		{"half-width katakana ｱ (JIS X 0201)", 'ｱ', jis.SetNone},
		{"compatibility ideograph 塚 U+FA10", '\uFA10', jis.SetNone},
		{"unified 塚 U+585A", '\u585A', jis.SetJISX0208},
		{"replacement character", utf8.RuneError, jis.SetNone},
		{"negative", -1, jis.SetNone},
		{"beyond Unicode", utf8.MaxRune + 1, jis.SetNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jis.SetOf(tt.r); got != tt.want {
				t.Errorf("SetOf(%U) = %v, want %v", tt.r, got, tt.want)
			}
			if got, want := jis.Allowed(tt.r), tt.want != jis.SetNone; got != want {
				t.Errorf("Allowed(%U) = %v, want %v", tt.r, got, want)
			}
		})
	}
}

// TestEveryMember is the property test: every rune of the sets is Allowed and
// a text of it (alone, or among other allowed characters) has no offence;
// every other rune is one offence at its position.
func TestEveryMember(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue // surrogates: string(r) is U+FFFD
		}
		s := string(r)
		if jis.SetOf(r) != jis.SetNone {
			if !jis.Allowed(r) {
				t.Fatalf("SetOf(%U) = %v but Allowed is false", r, jis.SetOf(r))
			}
			if o := jis.Check(s); o != nil {
				t.Fatalf("Check(%U) = %v, want none", r, o)
			}
			if o := jis.Check("山" + s + "\u3000" + s); o != nil {
				t.Fatalf("Check(山%c　%c) = %v, want none", r, r, o)
			}
			continue
		}
		o := jis.Check("山" + s)
		if len(o) != 1 || o[0].Position != 1 || o[0].Rune != r {
			t.Fatalf("Check(山 + %U) = %v, want one offence at 1", r, o)
		}
	}
}
