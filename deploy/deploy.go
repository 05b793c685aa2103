package deploy

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// FS holds the deployment files, by their paths under deploy/.
//
//go:embed systemd/*.service systemd/*.conf prometheus/*.yml prometheus/tests/*.yml grafana/*.json
var FS embed.FS

// The embedded files DashboardMetrics reads.
const (
	// RulesFile holds the Prometheus recording and alert rules.
	RulesFile = "prometheus/shomei.rules.yml"
	// DashboardFile is the Grafana dashboard.
	DashboardFile = "grafana/shomei.json"
)

// MaxExposure is the highest systemd-analyze security exposure score the
// units may have (0 to 10, lower is safer; "OK" is below 4.5). The units
// score 1.2; a change that weakens their sandbox past this fails the test.
const MaxExposure = 1.5

// DashboardMetrics is every metric family a query of the dashboard (panel
// targets and template variables) or an expression of the rules names,
// sorted, each once. Histogram series (_bucket, _sum, _count) count as
// their family; names of recording rules are not metrics and are left
// out, as are functions, label names and Grafana's variables.
func DashboardMetrics() ([]string, error) {
	rules, err := fs.ReadFile(FS, RulesFile)
	if err != nil {
		return nil, err
	}
	dash, err := fs.ReadFile(FS, DashboardFile)
	if err != nil {
		return nil, err
	}
	return metricsOf(rules, dash)
}

// metricsOf is DashboardMetrics of a rules file and a dashboard.
func metricsOf(rulesYAML, dashboardJSON []byte) ([]string, error) {
	recorded, ruleExprs, err := ruleQueries(rulesYAML)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", RulesFile, err)
	}
	dashExprs, err := dashboardQueries(dashboardJSON)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", DashboardFile, err)
	}
	seen := map[string]bool{}
	for _, q := range append(ruleExprs, dashExprs...) {
		names, err := metricNames(q)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if !recorded[n] {
				seen[n] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// rulesFile is the part of a Prometheus rules file read here.
type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleQueries are the names a rules file records and its expressions.
func ruleQueries(data []byte) (recorded map[string]bool, exprs []string, err error) {
	var f rulesFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, nil, err
	}
	recorded = map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if strings.TrimSpace(r.Expr) == "" {
				return nil, nil, fmt.Errorf("group %s: rule %s%s has no expression", g.Name, r.Record, r.Alert)
			}
			if r.Record != "" {
				recorded[r.Record] = true
			}
			exprs = append(exprs, r.Expr)
		}
	}
	if len(exprs) == 0 {
		return nil, nil, errors.New("no rules")
	}
	return recorded, exprs, nil
}

// labelValues is Grafana's label_values(metric, label) variable query.
var labelValues = regexp.MustCompile(`^\s*label_values\((.+),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

// dashboardQueries are the PromQL expressions of a Grafana dashboard: every
// "expr" string (panel targets, in rows or not) and the queries of its
// template variables (label_values(…) and query_result(…) read as the
// expression they hold).
func dashboardQueries(data []byte) ([]string, error) {
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		return nil, err
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && k == "expr" {
					exprs = append(exprs, s)
					continue
				}
				if k == "templating" {
					continue
				}
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(dash)
	if len(exprs) == 0 {
		return nil, errors.New("no queries")
	}
	templating, _ := dash["templating"].(map[string]any)
	list, _ := templating["list"].([]any)
	for _, v := range list {
		tv, _ := v.(map[string]any)
		if tv["type"] != "query" {
			continue
		}
		q := tv["query"]
		if m, ok := q.(map[string]any); ok {
			q = m["query"]
		}
		s, _ := q.(string)
		switch m := labelValues.FindStringSubmatch(s); {
		case m != nil:
			exprs = append(exprs, m[1])
		case strings.HasPrefix(strings.TrimSpace(s), "query_result("):
			s = strings.TrimSpace(s)
			exprs = append(exprs, strings.TrimSuffix(strings.TrimPrefix(s, "query_result("), ")"))
		case strings.HasPrefix(strings.TrimSpace(s), "label_values("), strings.HasPrefix(strings.TrimSpace(s), "label_names("):
			// label_values(label) and label_names() name no metric.
		default:
			return nil, fmt.Errorf("template variable %v: query %q is not label_values, label_names or query_result", tv["name"], s)
		}
	}
	return exprs, nil
}

// grafanaIntervals are Grafana's built-in duration variables; a query holds
// them where PromQL wants a duration.
var grafanaIntervals = regexp.MustCompile(`\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}`)

// histogramSuffix ends the series of a histogram or summary family.
var histogramSuffix = regexp.MustCompile(`_(bucket|sum|count)$`)

// metricNames are the metric names expr selects, histogram suffixes
// removed, in order of appearance (with repeats). Grafana's interval
// variables are read as a duration; any other variable must be inside a
// label matcher's string.
func metricNames(expr string) ([]string, error) {
	e, err := parser.ParseExpr(grafanaIntervals.ReplaceAllString(expr, "5m"))
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name != "" {
			names = append(names, histogramSuffix.ReplaceAllString(name, ""))
		}
		return nil
	})
	return names, nil
}
