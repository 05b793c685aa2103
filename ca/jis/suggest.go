package jis

import (
	"slices"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// suggestions are the hand-picked substitutes for characters that turn up in
// names and addresses but are in neither JIS X 0208 nor JIS X 0212, most
// common first. Every key is refused and every substitute is Allowed (tested).
// Characters whose compatibility decomposition or full-width form is Allowed
// need no entry: Suggest derives those (see derived).
var suggestions = map[rune][]rune{
	// NEC-selected IBM extensions (JIS X 0208 rows 89–92 in x/text's table,
	// Shift_JIS 0xED40–0xEEFC and 0xFA40–0xFC4B) that are not JIS X 0212
	// characters. The common name kanji first.
	'\u9AD9': {'\u9AD8'},           // 髙 はしご高 → 高
	'\uFA11': {'\u5D0E'},           // 﨑 たつさき (no canonical decomposition) → 崎
	'\u5FB7': {'\u5FB3'},           // 德 → 徳
	'\u6801': {'\u67F3'},           // 栁 → 柳
	'\u5BEC': {'\u5BDB'},           // 寬 → 寛
	'\u663B': {'\u6602'},           // 昻 → 昂
	'\u589E': {'\u5897'},           // 增 → 増
	'\u654E': {'\u6559'},           // 敎 → 教
	'\u6DF8': {'\u6E05'},           // 淸 → 清
	'\u6A6B': {'\u6A2A'},           // 橫 → 横
	'\u7028': {'\u702C'},           // 瀨 → 瀬
	'\u7DA0': {'\u7DD1'},           // 綠 → 緑
	'\u7DD6': {'\u7DD2'},           // 緖 → 緒
	'\u85B0': {'\u85AB'},           // 薰 → 薫
	'\u8CF4': {'\u983C'},           // 賴 → 頼
	'\u90DE': {'\u90CE'},           // 郞 (一郞) → 郎
	'\u9115': {'\u90F7'},           // 鄕 → 郷
	'\u9751': {'\u9752'},           // 靑 → 青
	'\u9ED1': {'\u9ED2'},           // 黑 → 黒
	'\u6085': {'\u60A6'},           // 悅 → 悦
	'\u7501': {'\u74F6'},           // 甁 → 瓶
	'\uFA1F': {'\u81C8', '\u81D8'}, // 﨟 (上﨟, no canonical decomposition) → 臈, 臘

	// NEC special characters (row 13) whose compatibility decomposition is
	// more than one character: a substitute is one character, so the
	// parentheses of (株) cannot be kept.
	'\u3231': {'\u682A'}, // ㈱ → 株
	'\u3232': {'\u6709'}, // ㈲ → 有
	'\u3239': {'\u4EE3'}, // ㈹ → 代
	'\u301D': {'\u201C'}, // 〝 → “
	'\u301F': {'\u201D'}, // 〟 → ”

	// Half-width (JIS X 0201) sound marks: their compatibility decompositions
	// are combining marks, which are not in JIS X 0208; the spacing marks are.
	'\uFF9E': {'\u309B'}, // ﾞ → ゛
	'\uFF9F': {'\u309C'}, // ﾟ → ゜

	// ASCII quotes: their full-width forms (U+FF02, U+FF07) are IBM
	// extensions, not JIS X 0208; JIS X 0208 has the typographic quotes.
	'\'': {'\u2019'},           // ' → ’
	'"':  {'\u201D', '\u201C'}, // " → ”, “

	// Name characters beyond JIS X 0208/0212: 𠮷 is CJK Extension B (not in
	// JIS X 0213 either), the others are JIS X 0213.
	0x20BB7:  {'\u5409'}, // 𠮷 つちよし → 吉
	0x2123D:  {'\u571F'}, // 𡈽 土 with a dot → 土
	0x20B9F:  {'\u53F1'}, // 𠮟 → 叱
	'\u4FF1': {'\u5036'}, // 俱 → 倶
	'\u525D': {'\u5265'}, // 剝 → 剥
	'\u87EC': {'\u8749'}, // 蟬 → 蝉
}

// Suggest returns common substitutes for r, most common first, each Allowed;
// nil when r is Allowed (邊 and 邉, for instance, are JIS X 0208 and need none)
// or no substitute is known. The slice is the caller's.
//
// Hand-picked substitutes (髙→高, 﨑→崎, 𠮷→吉, …) come first; otherwise r's
// compatibility decomposition (NFKC) is suggested when it is one Allowed
// character — which covers the CJK compatibility ideographs U+F900–U+FAFF
// and U+2F800–U+2FA1F that have a canonical decomposition (U+FA10 塚 → 塚
// U+585A, U+FA12 晴 → 晴 U+6674), the Kangxi radicals, half-width katakana —
// or else its full-width form, which covers ASCII (A → Ａ, space → U+3000)
// and the circled digits ①–⑨ (→ １–９). ⑩–⑳ get no suggestion: their
// decompositions are two digits and a substitute is one character.
func Suggest(r rune) []rune {
	if Allowed(r) {
		return nil
	}
	if s, ok := suggestions[r]; ok {
		return slices.Clone(s)
	}
	if d, ok := derived(r); ok {
		return []rune{d}
	}
	return nil
}

// derived returns the NFKC form of r, or the full-width form of that, when it
// is a single Allowed rune other than r.
func derived(r rune) (rune, bool) {
	if !utf8.ValidRune(r) {
		return 0, false
	}
	k := norm.NFKC.String(string(r))
	for _, cand := range []string{k, width.Widen.String(k)} {
		c, size := utf8.DecodeRuneInString(cand)
		if size == len(cand) && c != r && Allowed(c) {
			return c, true
		}
	}
	return 0, false
}
