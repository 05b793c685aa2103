package configdoc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestConfigurationUpToDate regenerates docs/configuration.md in memory
// from the config structs and fails when the committed file differs.
func TestConfigurationUpToDate(t *testing.T) {
	root := moduleRoot(t)
	res, err := Generate(root, Roots)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, Output))
	if err != nil {
		t.Fatalf("%v: run make config-docs", err)
	}
	want := append(res.Markdown, '\n')
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s is not what the config structs say (first difference at line %d):\n have: %s\n want: %s\nrun make config-docs", Output, i+1, g, w)
			}
		}
	}
}

// TestEveryFieldDocumented: every setting's meaning lives in its struct's
// doc comment, the one home the reference is generated from.
func TestEveryFieldDocumented(t *testing.T) {
	res, err := Generate(moduleRoot(t), Roots)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range res.Undocumented {
		t.Errorf("%s has no doc comment in its struct", k)
	}
}

// TestEverySettingListed: every setting a real configuration file of each
// binary decodes appears in the reference (the example files exercise the
// keys a new user copies).
func TestEverySettingListed(t *testing.T) {
	res, err := Generate(moduleRoot(t), Roots)
	if err != nil {
		t.Fatal(err)
	}
	md := string(res.Markdown)
	for _, key := range []string{
		"`server.grpc_listen`", "`server.http_listen`", "`server.public_url`", "`hsm.pin_file`", "`hsm.pin_env`",
		"`server.grpc_limits.max_connections`", "`server.http_limits.read_header_timeout`", "`ocsp.presign.budget`",
		"`clients[].name`", "`http_access.relying_parties[].token_file`", "`store.postgres.dsn_file`",
	} {
		if !strings.Contains(md, key) {
			t.Errorf("the reference lacks %s", key)
		}
	}
	for _, heading := range []string{"## shomei-ca", "## shomei-ocsp", "### `ca` (shomei-ocsp)", "### `http_limits` (shomei-ocsp)"} {
		if !strings.Contains(md, heading) {
			t.Errorf("the reference lacks the heading %q", heading)
		}
	}
}

// TestGenerateSynthetic runs the generator on a small module of its own:
// keys from tags (and from field names without one), inline structs from
// another package, pointers, lists and maps, skipped fields, nested
// sections, and an undocumented field reported.
func TestGenerateSynthetic(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.test/m\n\ngo 1.26\n")
	write("conf/conf.go", `// Package conf is a test.
//
// Paths are relative to the file.
package conf

import (
	"time"

	"example.test/m/other"
)

// File is the file.
type File struct {
	// Listen is where it listens; default :80.
	Listen string `+"`yaml:\"listen\"`"+`
	// Timeout | bounds things.
	Timeout time.Duration `+"`yaml:\"timeout\"`"+`
	Bare int
	// Nested says more.
	Nested *Nested `+"`yaml:\"nested\"`"+`
	// Items are items.
	Items []other.Item `+"`yaml:\"items\"`"+`
	// Env is the environment.
	Env map[string]string `+"`yaml:\"env\"`"+`
	// Path is not in the file.
	Path string `+"`yaml:\"-\"`"+`
	hidden int
}

// Nested is nested.
type Nested struct {
	// Inline fields come from another package.
	other.Pair `+"`yaml:\",inline\"`"+`
	// Count counts.
	Count int32 `+"`yaml:\"count\"`"+`
}
`)
	write("other/other.go", `package other

// Pair is a pair.
type Pair struct {
	// A and B are a and b.
	A string `+"`yaml:\"a\"`"+`
	// Whether B is set: another field's name inside the text stays.
	B bool `+"`yaml:\"b\"`"+`
}

// Item is an item.
type Item struct {
	// Name names it.
	Name string `+"`yaml:\"name\"`"+`
	// Weight weighs.
	Weight float64 `+"`yaml:\"weight\"`"+`
}
`)
	res, err := Generate(root, []Root{{Binary: "thing", Dir: "conf", Type: "File"}})
	if err != nil {
		t.Fatal(err)
	}
	md := string(res.Markdown)
	for _, want := range []string{
		"Paths are relative to the file.",
		"| `listen` | string | `listen` is where it listens; default :80. |",
		"| `timeout` | duration | `timeout` \\| bounds things. |",
		"| `bare` | integer |  |",
		"| `nested` | section, optional | `nested` says more.",
		"### `nested` (thing)",
		"| `nested.a` | string | `a` and `b` are a and b. |",
		"| `nested.b` | boolean | Whether B is set: another field's name inside the text stays. |",
		"| `nested.count` | integer | `count` counts. |",
		"| `items` | list of section |",
		"### `items[]` (thing)",
		"| `items[].weight` | number | `weight` weighs. |",
		"| `env` | map of string to string | `env` is the environment. |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
	for _, not := range []string{"`path`", "hidden", "Package conf"} {
		if strings.Contains(md, not) {
			t.Errorf("%q should not be in the reference", not)
		}
	}
	if len(res.Undocumented) != 1 || res.Undocumented[0] != "thing: bare" {
		t.Errorf("undocumented = %q, want [thing: bare]", res.Undocumented)
	}
}
