package jis_test

import (
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/shomei-pki/shomei/ca/jis"
)

func TestSuggest(t *testing.T) {
	tests := []struct {
		name string
		r    rune
		want []rune
	}{
		{"髙 → 高", '\u9AD9', []rune{'\u9AD8'}},
		{"﨑 → 崎", '\uFA11', []rune{'\u5D0E'}},
		{"𠮷 → 吉", 0x20BB7, []rune{'\u5409'}},
		{"德 → 徳", '\u5FB7', []rune{'\u5FB3'}},
		{"郞 → 郎", '\u90DE', []rune{'\u90CE'}},
		{"﨟 → 臈, 臘", '\uFA1F', []rune{'\u81C8', '\u81D8'}},
		{"compatibility ideograph 塚 U+FA10 → U+585A", '\uFA10', []rune{'\u585A'}},
		{"compatibility ideograph 晴 U+FA12 → U+6674", '\uFA12', []rune{'\u6674'}},
		{"compatibility ideograph 神 U+FA19 → U+795E", '\uFA19', []rune{'\u795E'}},
		{"CJK compatibility supplement U+2F801 → 丸", 0x2F801, []rune{'\u4E38'}},
		{"Kangxi radical ⼀ → 一", '\u2F00', []rune{'\u4E00'}},
		{"① → １", '①', []rune{'１'}},
		{"⑨ → ９", '⑨', []rune{'９'}},
		{"⑩ has no one-character substitute", '⑩', nil},
		{"⑳ has no one-character substitute", '⑳', nil},
		{"㈱ → 株", '㈱', []rune{'株'}},
		{"Ⅰ → Ｉ", 'Ⅰ', []rune{'Ｉ'}},
		{"Ⅱ has no one-character substitute", 'Ⅱ', nil},
		{"ASCII A → Ａ", 'A', []rune{'Ａ'}},
		{"ASCII 1 → １", '1', []rune{'１'}},
		{"ASCII space → U+3000", ' ', []rune{'\u3000'}},
		{"ASCII hyphen → －", '-', []rune{'－'}},
		{"half-width ｱ → ア", 'ｱ', []rune{'ア'}},
		{"half-width ﾞ → ゛", 'ﾞ', []rune{'゛'}},
		{"邊 is allowed: none needed", '\u908A', nil},
		{"邉 is allowed: none needed", '\u9089', nil},
		{"鷗 is allowed: none needed", '\u9DD7', nil},
		{"tab: none", '\t', nil},
		{"variation selector: none", 0xE0100, nil},
		{"replacement character: none", utf8.RuneError, nil},
		{"invalid rune: none", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := jis.Suggest(tt.r)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Suggest(%U) = %q, want %q", tt.r, got, tt.want)
			}
		})
	}
}

// TestSuggestionsAllowed checks every suggestion for every code point: each
// is Allowed and differs from the rune it replaces, and nothing is suggested
// for an allowed rune.
func TestSuggestionsAllowed(t *testing.T) {
	n := 0
	for r := rune(0); r <= utf8.MaxRune; r++ {
		subs := jis.Suggest(r)
		if jis.Allowed(r) && subs != nil {
			t.Fatalf("Suggest(%U) = %q for an allowed rune", r, subs)
		}
		for _, s := range subs {
			if !jis.Allowed(s) || s == r {
				t.Fatalf("Suggest(%U) includes %U: not Allowed or unchanged", r, s)
			}
		}
		if subs != nil {
			n++
		}
	}
	t.Logf("%d code points have a suggestion", n)
}

func TestSuggestReturnsACopy(t *testing.T) {
	jis.Suggest('\u9AD9')[0] = 'X'
	if got := jis.Suggest('\u9AD9'); !slices.Equal(got, []rune{'\u9AD8'}) {
		t.Fatalf("Suggest(髙) = %q after the caller changed its slice", got)
	}
}
