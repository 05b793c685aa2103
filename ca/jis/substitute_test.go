package jis_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shomei-pki/shomei/ca/jis"
)

func TestSubstitute(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		subs     map[int]rune
		wantText string
		wantMap  string
	}{
		{"髙 → 高", "髙橋　一郎", map[int]rune{0: '高'}, "高橋　一郎", "10000"},
		{"﨑 → 崎", "山﨑　花子", map[int]rune{1: '崎'}, "山崎　花子", "01000"},
		{"𠮷 → 吉 (positions in runes)", "𠮷田", map[int]rune{0: '吉'}, "吉田", "10"},
		{"two offences", "𠮷田　髙子", map[int]rune{0: '吉', 3: '高'}, "吉田　高子", "10010"},
		{"nothing to substitute", "渡邊　一郎", nil, "渡邊　一郎", "00000"},
		{"empty", "", nil, "", ""},
		{"an allowed character substituted too", "渡邊　一郎", map[int]rune{1: '辺'}, "渡辺　一郎", "01000"},
		{"half-width to full-width", "中里1丁目", map[int]rune{2: '１'}, "中里１丁目", "00100"},
		{"ASCII space to U+3000", "山田 太郎", map[int]rune{2: '\u3000'}, "山田　太郎", "00100"},
		{"invalid UTF-8 byte replaced", "山\xff田", map[int]rune{1: '本'}, "山本田", "010"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, m, err := jis.Substitute(tt.in, tt.subs)
			if err != nil {
				t.Fatalf("Substitute: %v", err)
			}
			if text != tt.wantText || m != tt.wantMap {
				t.Errorf("Substitute = %q, %q; want %q, %q", text, m, tt.wantText, tt.wantMap)
			}
			if o := jis.Check(text); o != nil {
				t.Errorf("Check(result) = %v", o)
			}
		})
	}
}

func TestSubstituteRefused(t *testing.T) {
	type refusal struct {
		pos int
		err error
	}
	tests := []struct {
		name     string
		in       string
		subs     map[int]rune
		want     []refusal
		contains []string // in the error message
	}{
		{"substitute not allowed", "髙橋　一郎", map[int]rune{0: '\uFA11'},
			[]refusal{{0, jis.ErrSubstituteNotAllowed}},
			[]string{"position 0", "髙 (U+9AD9)", "﨑 (U+FA11)"}},
		{"offence left without substitute", "山﨑　花子", nil,
			[]refusal{{1, jis.ErrNotAllowed}},
			[]string{"position 1", "﨑 (U+FA11)", "substitute 崎 (U+5D0E)"}},
		{"one offence covered, one not", "𠮷田　髙子", map[int]rune{0: '吉'},
			[]refusal{{3, jis.ErrNotAllowed}},
			[]string{"position 3", "髙 (U+9AD9)"}},
		{"position out of range", "𠮷田", map[int]rune{0: '吉', 2: '田'},
			[]refusal{{2, jis.ErrPositionOutOfRange}},
			[]string{"position 2"}},
		{"negative position", "髙橋", map[int]rune{-1: '高', 0: '高'},
			[]refusal{{-1, jis.ErrPositionOutOfRange}},
			[]string{"position -1"}},
		{"same rune", "髙橋", map[int]rune{0: '高', 1: '橋'},
			[]refusal{{1, jis.ErrSubstituteUnchanged}},
			[]string{"position 1", "橋 (U+6A4B)"}},
		{"every problem, in position order", "髙橋﨑", map[int]rune{9: '高', 1: '橋', 0: 'A'},
			[]refusal{{0, jis.ErrSubstituteNotAllowed}, {1, jis.ErrSubstituteUnchanged}, {2, jis.ErrNotAllowed}, {9, jis.ErrPositionOutOfRange}},
			[]string{"position 0", "position 1", "position 2", "position 9"}},
		{"invalid UTF-8 left", "山\xff田", nil,
			[]refusal{{1, jis.ErrNotAllowed}},
			[]string{"position 1", "invalid UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, m, err := jis.Substitute(tt.in, tt.subs)
			if err == nil {
				t.Fatalf("Substitute = %q, %q; want an error", text, m)
			}
			if text != "" || m != "" {
				t.Errorf("Substitute returned %q, %q with an error", text, m)
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %v does not join character errors", err)
			}
			errs := joined.Unwrap()
			if len(errs) != len(tt.want) {
				t.Fatalf("error %v: %d problems, want %d", err, len(errs), len(tt.want))
			}
			for i, w := range tt.want {
				var ce *jis.CharacterError
				if !errors.As(errs[i], &ce) {
					t.Fatalf("problem %d (%v) is not a *CharacterError", i, errs[i])
				}
				if ce.Position != w.pos || !errors.Is(ce, w.err) {
					t.Errorf("problem %d = position %d %v, want %d %v", i, ce.Position, ce.Err, w.pos, w.err)
				}
			}
			if !errors.Is(err, tt.want[0].err) {
				t.Errorf("errors.Is(err, %v) is false", tt.want[0].err)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}
