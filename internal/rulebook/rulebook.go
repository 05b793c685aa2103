package rulebook

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Book is the rule book's path, relative to the repository root.
const Book = "docs/rules.md"

// Problem is one broken reference.
type Problem struct {
	// File is relative to the root, slash-separated; Line counts from 1.
	File string
	Line int
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

var (
	idRE      = regexp.MustCompile(`\bR-[A-Z]+[0-9]+\b`)
	headingRE = regexp.MustCompile(`^## (R-[A-Z]+[0-9]+) — \S`)
	spanRE    = regexp.MustCompile("`([^`\n]+)`")
	// A cited path: relative, slash-separated, no spaces.
	pathRE = regexp.MustCompile(`^[A-Za-z][\w.-]*(/[\w.-]+)+/?$`)
	// A cited Go file with the declarations it holds.
	declsRE = regexp.MustCompile(`^([A-Za-z][\w./-]*\.go): *([\w.]+(, *[\w.]+)*)$`)
	testRE  = regexp.MustCompile(`^(Test|Benchmark|Fuzz|Example)[A-Z_]\w*$`)
)

// skipDirs are never walked: not the project's own text.
var skipDirs = map[string]bool{".git": true, "vendor": true, "var": true, "bin": true, "node_modules": true}

// scanned says whether a file is text the project writes and may cite
// rules in.
func scanned(name string) bool {
	switch filepath.Ext(name) {
	case ".go", ".proto", ".md", ".yaml", ".yml", ".sql", ".sh", ".json", ".txt", ".tmpl", ".html", ".toml", ".service", ".rules":
		return true
	}
	return name == "Makefile" || name == "Dockerfile"
}

// Check reports the problems of the repository at root.
func Check(root string) ([]Problem, error) {
	book, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(Book)))
	if err != nil {
		return nil, fmt.Errorf("rulebook: %w", err)
	}
	ids, problems := headings(book)
	cited, err := citations(root, ids)
	if err != nil {
		return nil, err
	}
	problems = append(problems, cited...)
	c := &checker{root: root, decls: map[string]map[string]bool{}}
	problems = append(problems, c.bookCitations(book)...)
	sort.SliceStable(problems, func(i, j int) bool {
		if problems[i].File != problems[j].File {
			return problems[i].File < problems[j].File
		}
		return problems[i].Line < problems[j].Line
	})
	return problems, nil
}

// headings returns the ids the rule book has a heading for, and a problem
// for each heading given twice.
func headings(book []byte) (map[string]bool, []Problem) {
	ids := map[string]bool{}
	var problems []Problem
	for i, line := range lines(book) {
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if ids[m[1]] {
			problems = append(problems, Problem{Book, i + 1, m[1] + " has a second heading"})
		}
		ids[m[1]] = true
	}
	return ids, problems
}

// citations walks root and reports each id cited without a heading.
func citations(root string, ids map[string]bool) ([]Problem, error) {
	var problems []Problem
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == Book || !d.Type().IsRegular() || !scanned(d.Name()) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, []byte("R-")) {
			return nil
		}
		for i, line := range lines(data) {
			for _, id := range idRE.FindAllString(line, -1) {
				if !ids[id] {
					problems = append(problems, Problem{rel, i + 1, id + " is cited but " + Book + " has no heading \"## " + id + " — …\""})
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rulebook: %w", err)
	}
	return problems, nil
}

type checker struct {
	root  string
	decls map[string]map[string]bool // Go file → its top-level names
	tests map[string]bool            // every test function of the module
}

// bookCitations checks every backquoted path, declaration and test name in
// the rule book, and that each rule cites a test.
func (c *checker) bookCitations(book []byte) []Problem {
	var problems []Problem
	add := func(line int, format string, a ...any) {
		problems = append(problems, Problem{Book, line, fmt.Sprintf(format, a...)})
	}
	current, currentLine, tested := "", 0, false
	endRule := func() {
		if current != "" && !tested {
			add(currentLine, "%s cites no test function (`path_test.go: TestName`)", current)
		}
	}
	for i, line := range lines(book) {
		n := i + 1
		if m := headingRE.FindStringSubmatch(line); m != nil {
			endRule()
			current, currentLine, tested = m[1], n, false
			continue
		}
		if strings.HasPrefix(line, "## ") {
			endRule()
			current = ""
		}
		for _, m := range spanRE.FindAllStringSubmatch(line, -1) {
			span := strings.TrimSpace(m[1])
			if dm := declsRE.FindStringSubmatch(span); dm != nil {
				file := dm[1]
				names, err := c.fileDecls(file)
				if err != nil {
					add(n, "%s: %v", file, err)
					continue
				}
				for _, name := range strings.Split(dm[2], ",") {
					name = strings.TrimSpace(name)
					if !names[name] {
						add(n, "%s declares no %s", file, name)
						continue
					}
					if strings.HasSuffix(file, "_test.go") && testRE.MatchString(name) {
						tested = true
					}
				}
				continue
			}
			if testRE.MatchString(span) {
				if !c.isTest(span) {
					add(n, "no test function %s in the module", span)
				} else {
					tested = true
				}
				continue
			}
			if pathRE.MatchString(span) {
				if _, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(span))); err != nil {
					add(n, "%s does not exist", span)
				}
			}
		}
	}
	endRule()
	return problems
}

// fileDecls returns the top-level names a Go file declares, methods as
// Type.Method.
func (c *checker) fileDecls(rel string) (map[string]bool, error) {
	if d, ok := c.decls[rel]; ok {
		return d, nil
	}
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(c.root, filepath.FromSlash(rel)), nil, parser.SkipObjectResolution)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("does not exist")
		}
		return nil, err
	}
	names := map[string]bool{}
	for _, d := range f.Decls {
		switch x := d.(type) {
		case *ast.FuncDecl:
			names[funcName(x)] = true
		case *ast.GenDecl:
			for _, s := range x.Specs {
				switch y := s.(type) {
				case *ast.TypeSpec:
					names[y.Name.Name] = true
				case *ast.ValueSpec:
					for _, id := range y.Names {
						names[id.Name] = true
					}
				}
			}
		}
	}
	c.decls[rel] = names
	return names, nil
}

// isTest says whether any _test.go file of the module declares name.
func (c *checker) isTest(name string) bool {
	if c.tests == nil {
		c.tests = map[string]bool{}
		_ = filepath.WalkDir(c.root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				if path != c.root && (skipDirs[d.Name()] || d.Name() == "testdata") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil
			}
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
					c.tests[fd.Name.Name] = true
				}
			}
			return nil
		})
	}
	return c.tests[name]
}

func funcName(f *ast.FuncDecl) string {
	if f.Recv == nil || len(f.Recv.List) == 0 {
		return f.Name.Name
	}
	t := f.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + f.Name.Name
	}
	return f.Name.Name
}

func lines(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
