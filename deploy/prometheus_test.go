package deploy

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

const rulesPath = "prometheus/shomei.rules.yml"

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(tool(t, "promtool"), "check", "rules", rulesPath).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("SUCCESS")) {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// ruleTests are the promtool unit-test files.
func ruleTests(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("prometheus/tests/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests in prometheus/tests: %v", err)
	}
	return files
}

func promtoolTest(t *testing.T, files ...string) ([]byte, error) {
	t.Helper()
	return exec.Command(tool(t, "promtool"), append([]string{"test", "rules"}, files...)...).CombinedOutput()
}

func TestPromtoolTestRules(t *testing.T) {
	if out, err := promtoolTest(t, ruleTests(t)...); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// alertNames are the alerts of the rules file.
func alertNames(t *testing.T) []string {
	t.Helper()
	data, err := fs.ReadFile(FS, RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f rulesFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("no alerts")
	}
	return names
}

// ruleTestFile is the part of a promtool test file read here.
type ruleTestFile struct {
	Tests []struct {
		Name  string `yaml:"name"`
		Cases []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// Every alert is tested both ways: a time at which it fires, and one at
// which it does not (its condition not met, or not for long enough).
func TestEveryAlertTestedBothWays(t *testing.T) {
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, file := range ruleTests(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var f ruleTestFile
		if err := yaml.Unmarshal(data, &f); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, tc := range f.Tests {
			for _, c := range tc.Cases {
				if len(c.ExpAlerts) > 0 {
					fires[c.Alertname] = true
				} else {
					quiet[c.Alertname] = true
				}
			}
		}
	}
	for _, a := range alertNames(t) {
		if !fires[a] {
			t.Errorf("%s: no promtool test expects it to fire", a)
		}
		if !quiet[a] {
			t.Errorf("%s: no promtool test expects it not to fire", a)
		}
	}
}

// The promtool tests notice a broken alert: for each alert, one that
// never fires, and one that fires whatever the threshold (its top-level
// comparison removed), each fails the alert's tests.
func TestRuleTestsCatchBrokenAlerts(t *testing.T) {
	rules, err := fs.ReadFile(FS, RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := ruleTests(t)
	for _, alert := range alertNames(t) {
		t.Run(alert, func(t *testing.T) {
			var mine []string // the test files that test this alert
			for _, f := range tests {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(data, []byte("alertname: "+alert+"\n")) {
					mine = append(mine, f)
				}
			}
			if len(mine) == 0 {
				t.Fatalf("no promtool test names %s", alert)
			}
			expr := alertExpr(t, rules, alert)
			loose, err := loosened(expr)
			if err != nil {
				t.Fatal(err)
			}
			for mutant, e := range map[string]string{"never fires": "vector(1) < 0", "no threshold": loose} {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "shomei.rules.yml"), withAlertExpr(t, rules, alert, e), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(filepath.Join(dir, "tests"), 0o755); err != nil {
					t.Fatal(err)
				}
				var files []string
				for _, f := range mine {
					data, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					dst := filepath.Join(dir, "tests", filepath.Base(f))
					if err := os.WriteFile(dst, data, 0o644); err != nil {
						t.Fatal(err)
					}
					files = append(files, dst)
				}
				if out, err := promtoolTest(t, files...); err == nil {
					t.Errorf("%s with expr %q (%s) passed its tests %v:\n%s", alert, e, mutant, mine, out)
				}
			}
		})
	}
}

// alertExpr is the expression of alert in a rules file.
func alertExpr(t *testing.T, rules []byte, alert string) string {
	t.Helper()
	return exprNode(t, rules, alert, nil).Value
}

// withAlertExpr is a rules file with alert's expression replaced by expr.
func withAlertExpr(t *testing.T, rules []byte, alert, expr string) []byte {
	t.Helper()
	var doc yaml.Node
	exprNode(t, rules, alert, &doc).SetString(expr)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exprNode is the expr node of alert in rules, decoded into doc (or a
// document of its own when doc is nil).
func exprNode(t *testing.T, rules []byte, alert string, doc *yaml.Node) *yaml.Node {
	t.Helper()
	if doc == nil {
		doc = new(yaml.Node)
	}
	if err := yaml.Unmarshal(rules, doc); err != nil {
		t.Fatal(err)
	}
	var found *yaml.Node
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			var isAlert bool
			var expr *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				if k == "alert" && v.Value == alert {
					isAlert = true
				}
				if k == "expr" {
					expr = v
				}
			}
			if isAlert && expr != nil {
				found = expr
				return
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(doc)
	if found == nil {
		t.Fatalf("alert %s: no expr", alert)
	}
	return found
}

// loosened is expr without its threshold: the left side of its top-level
// comparison (in the first operand of an or), so that it selects the same
// series whatever their value.
func loosened(expr string) (string, error) {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return "", err
	}
	l, ok := loosen(e)
	if !ok {
		return "", &parser.ParseErr{Err: errNoComparison, Query: expr}
	}
	return l.String(), nil
}

var errNoComparison = errorString("no top-level comparison to remove")

type errorString string

func (e errorString) Error() string { return string(e) }

func loosen(e parser.Expr) (parser.Expr, bool) {
	switch e := e.(type) {
	case *parser.ParenExpr:
		return loosen(e.Expr)
	case *parser.BinaryExpr:
		if e.Op.IsComparisonOperator() && !e.ReturnBool {
			return e.LHS, true
		}
		if e.Op == parser.LOR {
			if l, ok := loosen(e.LHS); ok {
				return &parser.BinaryExpr{Op: e.Op, LHS: l, RHS: e.RHS, VectorMatching: e.VectorMatching}, true
			}
		}
	}
	return nil, false
}

// The mutation helpers do what TestRuleTestsCatchBrokenAlerts relies on.
func TestLoosened(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{`shomei_hsm_up == 0`, `shomei_hsm_up`},
		{`(time() - a) > 0.75 * (b - a) + 600`, `(time() - a)`},
		{`sum(x) < 1 or absent(x)`, `sum(x) or absent(x)`},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket[10m]))) > 1`, `histogram_quantile(0.99, sum by (le) (rate(h_bucket[10m])))`},
		{`rate(x[5m])`, ""},
		{`x > bool 1`, ""},
	} {
		got, err := loosened(tc.expr)
		if tc.want == "" {
			if err == nil {
				t.Errorf("loosened(%q) = %q, want an error", tc.expr, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("loosened(%q) = %q, %v; want %q", tc.expr, got, err, tc.want)
		}
	}
	rules, err := fs.ReadFile(FS, RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	changed := withAlertExpr(t, rules, "ShomeiHSMDown", "vector(1) < 0")
	if got := alertExpr(t, changed, "ShomeiHSMDown"); got != "vector(1) < 0" {
		t.Errorf("replaced expr: %q", got)
	}
	if got := alertExpr(t, changed, "ShomeiHSMSessionsExhausted"); !strings.Contains(got, "shomei_hsm_sessions_waiting") {
		t.Errorf("another alert's expr changed: %q", got)
	}
}
