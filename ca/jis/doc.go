// Package jis decides which characters may appear in the name and address of
// a signature certificate (spec R-P5, 代替文字) and builds the substitution
// maps that go with them (R-P2).
//
// # The rule
//
// A name or address may only use characters of JIS X 0208 (non-kanji rows
// 1–8, level-1 kanji rows 16–47, level-2 kanji rows 48–84) and JIS X 0212
// (補助漢字: non-kanji rows 2, 6, 7, 9–11 and kanji rows 16–77), plus U+3000,
// the full-width space between surname and given name. Everything else is
// refused unless the municipal system supplies a substitute for it:
//
//   - vendor extensions: the NEC special characters (JIS row 13: ①, Ⅰ, ㈱, ㍻ …),
//     the NEC-selected IBM extensions (rows 89–92) and the IBM extensions
//     (Shift_JIS 0xFA40–0xFC4B), e.g. 髙 U+9AD9, 﨑 U+FA11, 德 U+5FB7;
//   - characters only in JIS X 0213 (俱 U+4FF1, 𠮟 U+20B9F …) or in no JIS
//     standard at all (𠮷 U+20BB7 is CJK Extension B; it is not in JIS X 0213
//     either, so glibc's EUC-JISX0213 charmap has no code for it);
//   - JIS X 0201, which is not JIS X 0208 (decision): half-width ASCII letters,
//     digits, space and punctuation, and half-width katakana are refused.
//     Suggest offers their full-width forms (A → Ａ, 1 → １, space → U+3000,
//     ｱ → ア), which are JIS X 0208 rows 1, 3 and 5;
//   - control characters, invalid UTF-8, combining marks (send text in NFC:
//     か + U+3099 is refused, が is not) and variation selectors (葛 + U+E0100).
//     A substitute replaces one character with one character, so a variation
//     selector cannot be substituted away: the municipal system must send the
//     text without it.
//
// A character that is a vendor extension in Shift_JIS but also a JIS X 0212
// character is allowed: R-P5 admits all of JIS X 0212. 279 of the 360
// NEC-selected IBM extension kanji are such (丨 U+4E28, 濵 U+6FF5, 桒 U+6852,
// …); 髙, 﨑, 德, 郞 and the rest are not.
//
// Circled digits (decision): ①–⑳ are refused like every NEC special
// character. Suggest offers １–９ for ①–⑨ and nothing for ⑩–⑳, whose only
// reading is two characters; likewise ㈱ → 株 (the parentheses of (株) cannot
// fit one character).
//
// # The API
//
// Allowed and SetOf answer for one rune. Check lists every offending rune
// of a text with its 0-based position counted in runes (Unicode code points,
// as []rune(s) counts them: 𠮷 is one position although it is four bytes and
// two UTF-16 units; each invalid byte is one position) and the substitutes
// Suggest knows. Substitute applies the municipal system's substitutes and
// returns the certificate text with its substitution map: one digit per
// character, '1' where a character was substituted. Substitution is one rune
// for one rune, so the map lines up with both the recorded text and the
// certificate text. Substitute refuses (a *CharacterError per problem,
// joined, wrapping ErrNotAllowed, ErrPositionOutOfRange,
// ErrSubstituteNotAllowed or ErrSubstituteUnchanged; the CA maps them to
// InvalidArgument) rather than certify a character outside the sets.
//
// Offence.String and the errors contain a character of a name or address:
// they are for the municipal system that sent it, never for logs (R-P4).
//
// Invariants: Allowed(r) == (SetOf(r) != SetNone); every suggestion is
// Allowed and differs from the rune it replaces; Suggest is nil for allowed
// runes; a text Substitute returns passes Check.
//
// # How the sets are built, and what x/text's tables hold
//
// golang.org/x/text's EUC-JP encoder is no test: it encodes vendor
// extensions. The sets are built instead from x/text's decoder, cell by cell:
// every two-byte code (0xA0+row, 0xA0+cell) of JIS X 0208 rows 1–8 and 16–84
// and every three-byte code (0x8F, 0xA0+row, 0xA0+cell) of JIS X 0212 rows
// 1–77 that decodes to one rune other than U+FFFD. The tests check the result
// row by row against the standards and cell by cell against glibc's EUC-JP
// charmap, an independent table. Findings, x/text v0.43.0 (its tables are
// the WHATWG indexes, i.e. Windows code page 932 for JIS X 0208):
//
//   - Rows 1–8 hold exactly the 524 characters of the standard (94, 53, 62,
//     83, 86, 48, 66, 32 per row): no NEC additions there. Rows 16–84 hold
//     exactly 2,965 + 3,390 kanji. JIS X 0208: 6,879 cells, as the standard.
//   - The table also fills row 13 (83 NEC special characters) and rows 89–92
//     (374 NEC-selected IBM extensions), which are never read; the IBM
//     extensions of Shift_JIS 0xFA40–0xFC4B decode to the same code points.
//     Of row 13, only the 9 characters that repeat row 2 (≒≡∫√⊥∠∵∩∪) and №
//     (JIS X 0212 2-81) are allowed.
//   - JIS X 0212: 266 non-kanji + 5,801 kanji = 6,067 cells, as the standard;
//     the table has nothing beyond row 77.
//   - glibc agrees with x/text on every one of these cells except six JIS X
//     0208 cells where x/text follows code page 932 and glibc (like Unicode's
//     JIS0208.TXT) follows the JIS mapping: 1-33 ～ U+FF5E / 〜 U+301C,
//     1-34 ∥ U+2225 / ‖ U+2016, 1-61 － U+FF0D / − U+2212, 1-81 ￠ U+FFE0 /
//     ¢ U+00A2, 1-82 ￡ U+FFE1 / £ U+00A3, 2-44 ￢ U+FFE2 / ¬ U+00AC. Both code
//     points are accepted (decision): they are the same JIS X 0208 character
//     and municipal systems convert with either table. So SetOf reports
//     6,879 + 6 runes for JIS X 0208, less U+3000 (it is 1-1, but SetOf
//     reports SetSpace, as R-P5 names it on its own): 6,884.
//   - One rune is in both sets: x/text maps JIS X 0212 2-23 (TILDE) to U+FF5E
//     too. SetOf reports it as JIS X 0208, so SetOf reports 6,066 runes for
//     JIS X 0212. (JIS0212.TXT maps 2-23 to ASCII U+007E, which stays
//     refused with the rest of ASCII.)
//
// # Cost
//
// The sets are two bit sets over the Basic Multilingual Plane (all 12,946
// characters are in it): 8 KiB each, 16 KiB in all. They are built on first
// use (sync.OnceValue) in about 0.3 ms with 3 allocations (16 KiB), measured
// by BenchmarkBuildTable. Allowed is a bit test (~4 ns); Check allocates
// nothing for a text with no offence (~100 ns for a 15-character address).
// Importing x/text's japanese, norm and width packages adds about 290 KB to
// a binary.
package jis
