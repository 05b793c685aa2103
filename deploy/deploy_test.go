package deploy

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// issue13Metrics are the metric families issue 13 adds to the binaries
// (written against by the rules and dashboard while they are being added):
// the dashboard and the rules together show every one of them.
var issue13Metrics = []string{
	"shomei_grpc_server_handled_total", "shomei_grpc_server_handling_seconds",
	"shomei_ca_revocations_total", "shomei_ca_events_total",
	"shomei_crl_last_success_timestamp_seconds", "shomei_crl_next_update_timestamp_seconds",
	"shomei_crl_entries", "shomei_crl_bytes", "shomei_crl_build_duration_seconds", "shomei_crl_publish_failures_total",
	"shomei_hsm_up", "shomei_hsm_sessions_in_use", "shomei_hsm_sessions_waiting",
	"shomei_hsm_sign_duration_seconds", "shomei_hsm_errors_total",
	"shomei_ocsp_responses_total", "shomei_ocsp_cache_hits_total", "shomei_ocsp_cache_misses_total",
	"shomei_replica_lag_revisions", "shomei_replica_lag_seconds", "shomei_replica_connected",
	"shomei_store_size_bytes", "shomei_audit_verify_failures_total", "shomei_audit_last_verified_timestamp_seconds",
	"shomei_issuer_remaining_seconds", "shomei_revocation_visible_seconds",
	"shomei_ca_certificates_issued_total", "shomei_ca_leader",
}

// metricLiteral is a metric name as Go source spells it in a string.
var metricLiteral = regexp.MustCompile(`"(shomei_[a-z0-9_]+)"`)

// sourceMetrics are the shomei_ names the module's non-test Go sources
// spell out: the metrics the binaries define (apart from those named from
// parts, as the gRPC provider's namespace).
func sourceMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != ".." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "var" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricLiteral.FindAllSubmatch(data, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !names["shomei_ca_certificates_issued_total"] {
		t.Fatal("the source scan found no metric names (run from deploy/)")
	}
	return names
}

func TestDashboardMetrics(t *testing.T) {
	names, err := DashboardMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d metric families: %s", len(names), strings.Join(names, " "))
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("not sorted, or repeats: %v", names)
	}
	known := sourceMetrics(t)
	for _, n := range issue13Metrics {
		known[n] = true
	}
	for _, n := range names {
		switch {
		case strings.Contains(n, ":"):
			t.Errorf("%s: a recording rule's name, not a metric", n)
		case histogramSuffix.MatchString(n):
			t.Errorf("%s: a histogram series, not its family", n)
		case !known[n]:
			t.Errorf("%s: named by a query, but neither defined in the Go sources nor announced by issue 13", n)
		}
	}
	for _, n := range issue13Metrics {
		if !slices.Contains(names, n) {
			t.Errorf("%s: shown nowhere in the dashboard or the rules", n)
		}
	}
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`shomei_hsm_up == 0`, []string{"shomei_hsm_up"}},
		// Histogram series count as their family; functions, label
		// names in by/without/on and strings are not metrics.
		{`histogram_quantile(0.99, sum by (via, le) (rate(shomei_revocation_visible_seconds_bucket{via="shomei_fake"}[5m])))`,
			[]string{"shomei_revocation_visible_seconds"}},
		{`sum(rate(a_sum[1m])) / sum(rate(a_count[1m]))`, []string{"a", "a"}},
		{`sum without (instance) (x) / on (job) group_left (crl) y offset 5m`, []string{"x", "y"}},
		{`{__name__="by_name", crl="x"}`, []string{"by_name"}},
		{`{__name__=~"shomei_.*"}`, nil},
		{`max_over_time(z[1h:5m])`, []string{"z"}},
		{`time() - 3`, nil},
		// Grafana's interval variables stand for a duration; other
		// variables sit in label strings.
		{`rate(c_total{crl=~"$crl"}[$__rate_interval])`, []string{"c_total"}},
		{`increase(c_total[${__range}])`, []string{"c_total"}},
		{`shomei:recorded:rate5m > 1`, []string{"shomei:recorded:rate5m"}},
	} {
		got, err := metricNames(tc.expr)
		if err != nil {
			t.Errorf("metricNames(%q): %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`rate(x[$interval])`, `sum(`, `x{`, ``} {
		if got, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%q) = %q, want an error", bad, got)
		}
	}
}

func TestMetricsOf(t *testing.T) {
	rules := []byte(`groups:
  - name: g
    rules:
      - record: job:a:rate5m
        expr: sum by (job) (rate(a_total[5m]))
      - alert: A
        expr: job:a:rate5m > 1 and on (job) b_bucket > 0
`)
	dash := []byte(`{"panels": [
	  {"type": "row", "panels": [{"targets": [{"expr": "c / d"}]}]},
	  {"targets": [{"expr": "job:a:rate5m"}, {"expr": "rate(e_count[$__rate_interval])"}]}],
	 "templating": {"list": [
	  {"type": "datasource", "query": "prometheus"},
	  {"type": "query", "query": {"query": "label_values(f{x=\"1\"}, crl)"}},
	  {"type": "query", "query": "query_result(topk(3, g))"},
	  {"type": "query", "query": "label_values(crl)"}]}}`)
	got, err := metricsOf(rules, dash)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a_total", "b", "c", "d", "e", "f", "g"}; !slices.Equal(got, want) {
		t.Errorf("metricsOf = %q, want %q", got, want)
	}
	for name, tc := range map[string]struct{ rules, dash string }{
		"no rules":          {`groups: []`, `{"panels": [{"targets": [{"expr": "x"}]}]}`},
		"rule without expr": {"groups:\n  - name: g\n    rules:\n      - alert: A\n", `{"panels": [{"targets": [{"expr": "x"}]}]}`},
		"no queries":        {string(rules), `{"panels": []}`},
		"bad query":         {string(rules), `{"panels": [{"targets": [{"expr": "rate(x[5m]"}]}]}`},
		"bad variable":      {string(rules), `{"panels": [{"targets": [{"expr": "x"}]}], "templating": {"list": [{"type": "query", "query": "up"}]}}`},
		"not JSON":          {string(rules), `{`},
	} {
		if got, err := metricsOf([]byte(tc.rules), []byte(tc.dash)); err == nil {
			t.Errorf("%s: metricsOf = %q, want an error", name, got)
		}
	}
}

// The dashboard's panels each query the dashboard's Prometheus variable
// and are laid out without overlap.
func TestDashboardPanels(t *testing.T) {
	data, err := fs.ReadFile(FS, DashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			GridPos struct{ H, W, X, Y int } `json:"gridPos"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" {
		t.Error("no uid: an import would make a new dashboard each time")
	}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Errorf("panel %q overlaps %q at (%d, %d)", p.Title, other, x, y)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %q, want the ${datasource} variable", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		for _, q := range p.Targets {
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q: empty query", p.Title)
			}
		}
	}
}
