package rulebook

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeID is how the synthetic tree's ids are written in this file, {X1}
// and expanded when the tree is written, so that the real check does not
// find them here.
var fakeID = regexp.MustCompile(`\{([A-Z]+[0-9]+)\}`)

func expand(s string) string { return fakeID.ReplaceAllString(s, "R"+"-$1") }

// repoRoot is the module root: this package is internal/rulebook.
const repoRoot = "../.."

// TestRuleBook: every R-… id cited anywhere in the repository has its
// heading in docs/rules.md, and everything docs/rules.md cites exists.
func TestRuleBook(t *testing.T) {
	problems, err := Check(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestRuleBookHasEveryRule: the rule book has a heading for each of the
// 27 rules of the domain (shared/spec/jpki.md), not only for the ids the
// code happens to cite today.
func TestRuleBookHasEveryRule(t *testing.T) {
	book, err := os.ReadFile(filepath.Join(repoRoot, Book))
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := headings(book)
	var want []string
	for _, g := range []struct {
		prefix string
		n      int
	}{{"R-P", 5}, {"R-A", 5}, {"R-V", 8}, {"R-R", 6}, {"R-K", 3}} {
		for i := 1; i <= g.n; i++ {
			want = append(want, g.prefix+string(rune('0'+i)))
		}
	}
	for _, id := range want {
		if !ids[id] {
			t.Errorf("%s has no heading %q", Book, "## "+id+" — …")
		}
	}
	if len(ids) != len(want) {
		t.Errorf("%s has %d rule headings, want %d", Book, len(ids), len(want))
	}
}

// TestCheckSynthetic runs the checker on a tree of its own, with one of
// each problem it must find, so that TestRuleBook passing means something.
func TestCheckSynthetic(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(expand(text)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.test/m\n")
	write("a/a.go", "package a\n\n// F does {X1}.\nfunc F() {}\n\ntype T struct{}\n\nfunc (t *T) M() {}\n\nconst C = 1\n")
	write("a/a_test.go", "package a\n\nimport \"testing\"\n\nfunc TestF(t *testing.T) {} // {X1}\n")
	write("b/notes.md", "# Notes\n\nSee {X1}.\nAnd {Y2}, which has no heading,\nand {Z3} twice: {Z3}.\n")
	write("Makefile", "# {Q4}\nall:\n")
	write("var/cache.go", "package cache // {W5}: var/ is skipped\n")
	write("b/image.bin", "{V6} in a file that is not scanned\n")
	write("docs/rules.md", strings.Join([]string{
		"# Rules",
		"",
		"## {X1} — the first rule",
		"",
		"Implemented in `a/a.go: F, T.M, C, T`; tested by `a/a_test.go: TestF` and `TestF`.",
		"Also `a/missing.go: F`, `a/a.go: G`, `a/a_test.go: TestGone`, `TestNowhere`, `a/` and `b/nothing.md`.",
		"",
		"## {X2} — a rule without a test",
		"",
		"Implemented in `a/a.go: F`. Mentions {Y2} here, which the book itself may.",
		"",
		"## {X1} — again",
		"",
		"Tested by `a/a_test.go: TestF`.",
		"",
	}, "\n"))
	problems, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	want := []string{
		"Makefile:1: {Q4} is cited but docs/rules.md has no heading \"## {Q4} — …\"",
		"b/notes.md:4: {Y2} is cited but docs/rules.md has no heading \"## {Y2} — …\"",
		"b/notes.md:5: {Z3} is cited but docs/rules.md has no heading \"## {Z3} — …\"",
		"b/notes.md:5: {Z3} is cited but docs/rules.md has no heading \"## {Z3} — …\"",
		"docs/rules.md:6: a/missing.go: does not exist",
		"docs/rules.md:6: a/a.go declares no G",
		"docs/rules.md:6: a/a_test.go declares no TestGone",
		"docs/rules.md:6: no test function TestNowhere in the module",
		"docs/rules.md:6: b/nothing.md does not exist",
		"docs/rules.md:8: {X2} cites no test function (`path_test.go: TestName`)",
		"docs/rules.md:12: {X1} has a second heading",
	}
	if g, w := strings.Join(got, "\n"), expand(strings.Join(want, "\n")); g != w {
		t.Errorf("problems:\n%s\nwant:\n%s", g, w)
	}
}
