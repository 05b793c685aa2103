package jis_test

import (
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/shomei-pki/shomei/ca/jis"
)

func TestCheckRefused(t *testing.T) {
	type off struct {
		pos int
		r   rune
	}
	tests := []struct {
		name string
		in   string
		want []off
	}{
		{"髙 はしご高", "髙橋　一郎", []off{{0, '\u9AD9'}}},
		{"﨑 たつさき", "山﨑　花子", []off{{1, '\uFA11'}}},
		// 𠮷 is 4 bytes in UTF-8 and 2 UTF-16 units: positions count runes.
		{"𠮷 つちよし", "𠮷田　太郎", []off{{0, 0x20BB7}}},
		{"after 𠮷", "𠮷田　髙子", []off{{0, 0x20BB7}, {3, '\u9AD9'}}},
		{"德", "德川　家康", []off{{0, '\u5FB7'}}},
		{"JIS X 0213 俱", "俱知安町", []off{{0, '\u4FF1'}}},
		{"circled digit", "中里①丁目", []off{{2, '①'}}},
		{"roman numeral", "コーポⅠ", []off{{3, 'Ⅰ'}}},
		{"㈱", "㈱東京", []off{{0, '㈱'}}},
		{"half-width ASCII", "ABC", []off{{0, 'A'}, {1, 'B'}, {2, 'C'}}},
		{"half-width digits in an address", "中里1丁目", []off{{2, '1'}}},
		{"ASCII space between names", "山田 太郎", []off{{2, ' '}}},
		{"half-width katakana", "ﾔﾏﾀﾞ", []off{{0, 'ﾔ'}, {1, 'ﾏ'}, {2, 'ﾀ'}, {3, 'ﾞ'}}},
		{"tab", "山田\t太郎", []off{{2, '\t'}}},
		{"newline", "山田\n", []off{{2, '\n'}}},
		{"NUL", "\x00山田", []off{{0, 0}}},
		{"DEL", "山\x7f", []off{{1, 0x7F}}},
		{"C1 control", "山\u0085", []off{{1, 0x85}}},
		{"invalid UTF-8", "山\xff田", []off{{1, utf8.RuneError}}},
		{"truncated UTF-8 counts per byte", "\xe5\xb1田", []off{{0, utf8.RuneError}, {1, utf8.RuneError}}},
		{"variation selector", "葛\U000E0100城", []off{{1, 0xE0100}}},
		{"compatibility ideograph 塚", "\uFA10本", []off{{0, '\uFA10'}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := jis.Check(tt.in)
			if len(got) != len(tt.want) {
				t.Fatalf("Check(%q) = %v, want %d offences", tt.in, got, len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].Position != w.pos || got[i].Rune != w.r {
					t.Errorf("offence %d = %d %U, want %d %U", i, got[i].Position, got[i].Rune, w.pos, w.r)
				}
				for _, s := range got[i].Suggestions {
					if !jis.Allowed(s) {
						t.Errorf("offence %d: suggestion %U is not Allowed", i, s)
					}
				}
			}
		})
	}
}

func TestCheckAccepted(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"渡邊 (邊 U+908A level 2)", "渡邊　一郎"},
		{"渡邉 (邉 U+9089 level 2)", "渡邉　花子"},
		{"齋藤", "齋藤　次郎"},
		{"鷗 JIS X 0212", "鷗"},
		{"森鷗外's full name", "森　林太郎"},
		{"森鷗外's pen name", "森　鷗外"},
		{"address with full-width digits (row 3)", "東京都清瀬市中里１丁目"},
		{"address with a full-width hyphen (x/text mapping)", "東京都清瀬市中里１－２－３"},
		{"address with a minus sign (JIS mapping)", "東京都清瀬市中里１−２−３"},
		{"hiragana", "やまだ　はなこ"},
		{"katakana with long vowel", "スミス　ジョン"},
		{"full-width Latin", "ＳＭＩＴＨ　ＪＯＨＮ"},
		{"full-width space", "\u3000"},
		{"NEC-selected but JIS X 0212 濵", "濵田　一郎"},
		{"JIS X 0208 full-width Latin with JIS X 0212 ü", "Ｍüｌｌｅｒ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jis.Check(tt.in); got != nil {
				t.Errorf("Check(%q) = %v, want nil", tt.in, got)
			}
		})
	}
}

func TestOffenceString(t *testing.T) {
	tests := []struct {
		name string
		o    jis.Offence
		want string
	}{
		{"one suggestion", jis.Offence{Position: 2, Rune: '\u9AD9', Suggestions: []rune{'\u9AD8'}},
			"position 2: 髙 (U+9AD9) is not in JIS X 0208/0212; substitute 高 (U+9AD8)"},
		{"two suggestions", jis.Offence{Position: 0, Rune: '\uFA1F', Suggestions: []rune{'\u81C8', '\u81D8'}},
			"position 0: 﨟 (U+FA1F) is not in JIS X 0208/0212; substitute 臈 (U+81C8) or 臘 (U+81D8)"},
		{"none known", jis.Offence{Position: 5, Rune: '⑩'},
			"position 5: ⑩ (U+2469) is not in JIS X 0208/0212; no common substitute known"},
		{"control character is not printed raw", jis.Offence{Position: 1, Rune: '\t'},
			"position 1: U+0009 (control character) is not in JIS X 0208/0212; no common substitute known"},
		{"invalid UTF-8", jis.Offence{Position: 3, Rune: utf8.RuneError},
			"position 3: U+FFFD (invalid UTF-8 or replacement character) is not in JIS X 0208/0212; no common substitute known"},
		{"variation selector is not printed raw", jis.Offence{Position: 1, Rune: 0xE0100},
			"position 1: U+E0100 is not in JIS X 0208/0212; no common substitute known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.String(); got != tt.want {
				t.Errorf("String() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestCheckSuggests(t *testing.T) {
	got := jis.Check("髙橋　一郎")
	if len(got) != 1 || !slices.Equal(got[0].Suggestions, []rune{'高'}) {
		t.Fatalf("Check(髙橋　一郎) = %v, want one offence suggesting 高", got)
	}
	if want := "position 0: 髙 (U+9AD9) is not in JIS X 0208/0212; substitute 高 (U+9AD8)"; got[0].String() != want {
		t.Errorf("String() = %q, want %q", got[0].String(), want)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"髙橋　一郎", "山﨑　花子", "𠮷田　太郎", "渡邊", "ABC", "ﾔﾏﾀﾞ", "\xff\xfe", "\xe5\xb1", "葛\U000E0100", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs := []rune(s)
		offences := jis.Check(s)
		last := -1
		for _, o := range offences {
			if o.Position <= last || o.Position >= len(rs) {
				t.Fatalf("offence position %d out of order or range (%d runes)", o.Position, len(rs))
			}
			last = o.Position
			if rs[o.Position] != o.Rune {
				t.Fatalf("offence at %d is %U, rune there is %U", o.Position, o.Rune, rs[o.Position])
			}
			if jis.Allowed(o.Rune) {
				t.Fatalf("offence %U is Allowed", o.Rune)
			}
			for _, sub := range o.Suggestions {
				if !jis.Allowed(sub) {
					t.Fatalf("suggestion %U for %U is not Allowed", sub, o.Rune)
				}
			}
			_ = o.String()
		}
		// Every rune that is not an offence is Allowed.
		n := 0
		for i, r := range rs {
			if n < len(offences) && offences[n].Position == i {
				n++
				continue
			}
			if !jis.Allowed(r) {
				t.Fatalf("rune %U at %d is not Allowed and not reported", r, i)
			}
		}
		// Substituting every offence with its first suggestion gives a text
		// with no offence, or fails naming an offence without suggestion.
		subs := map[int]rune{}
		for _, o := range offences {
			if len(o.Suggestions) > 0 {
				subs[o.Position] = o.Suggestions[0]
			}
		}
		text, m, err := jis.Substitute(s, subs)
		if err != nil {
			if len(subs) == len(offences) {
				t.Fatalf("Substitute with every offence covered: %v", err)
			}
			return
		}
		if utf8.RuneCountInString(text) != len(rs) || len(m) != len(rs) {
			t.Fatalf("Substitute: %d runes, map %q, want %d", utf8.RuneCountInString(text), m, len(rs))
		}
		if o := jis.Check(text); o != nil {
			t.Fatalf("Check(Substitute(...)) = %v", o)
		}
	})
}
