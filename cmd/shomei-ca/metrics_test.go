package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/deploy"
	"github.com/shomei-pki/shomei/internal/metricstest"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// scrape fetches a /metrics page and parses it (Prometheus text format):
// every family by name.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	fams, err := metricstest.Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return fams, nil
}

// walkthroughFamily is a metric family the README walk-through must show:
// on the CA, the replica or both, with a non-zero sample, or present only
// where a healthy walk-through leaves it at zero (failures, queues, lag
// in sync); why says which.
type walkthroughFamily struct {
	name        string
	ca, replica bool
	present     string // why zero is the right value after the walk-through; "" when a non-zero sample is required
}

// walkthroughFamilies are the metric families of issue 13.
var walkthroughFamilies = []walkthroughFamily{
	{name: "shomei_grpc_server_started_total", ca: true},
	{name: "shomei_grpc_server_handled_total", ca: true},
	{name: "shomei_grpc_server_handling_seconds", ca: true},
	{name: "shomei_ca_revocations_total", ca: true},
	{name: "shomei_ca_events_total", ca: true},
	{name: "shomei_crl_last_success_timestamp_seconds", ca: true},
	{name: "shomei_crl_next_update_timestamp_seconds", ca: true},
	{name: "shomei_crl_entries", ca: true},
	{name: "shomei_crl_bytes", ca: true},
	{name: "shomei_crl_build_duration_seconds", ca: true},
	{name: "shomei_crl_publish_failures_total", ca: true, present: "no CRL publication fails"},
	{name: "shomei_hsm_up", ca: true},
	{name: "shomei_hsm_sessions_in_use", ca: true, present: "no signature is under way at the scrape"},
	{name: "shomei_hsm_sessions_waiting", ca: true, present: "the pool is never exhausted"},
	{name: "shomei_hsm_sign_duration_seconds", ca: true},
	{name: "shomei_hsm_errors_total", ca: true, present: "the HSM does not fail"},
	{name: "shomei_ocsp_responses_total", ca: true, replica: true},
	{name: "shomei_ocsp_cache_hits_total", replica: true},
	{name: "shomei_replica_lag_revisions", replica: true, present: "the replica is in sync"},
	{name: "shomei_replica_lag_seconds", replica: true, present: "the replica is in sync"},
	{name: "shomei_store_size_bytes", ca: true},
	{name: "shomei_audit_verify_failures_total", ca: true, present: "the audit log is intact"},
	{name: "shomei_audit_last_verified_timestamp_seconds", ca: true},
	{name: "shomei_issuer_remaining_seconds", ca: true},
}

// missingFamilies lists what fams lacks of the walk-through families for
// one binary (wants picks them).
func missingFamilies(fams map[string]*dto.MetricFamily, wants func(walkthroughFamily) bool) []string {
	var missing []string
	for _, f := range walkthroughFamilies {
		if !wants(f) {
			continue
		}
		mf := fams[f.name]
		switch {
		case mf == nil || len(mf.Metric) == 0:
			missing = append(missing, f.name+" (absent)")
		case f.present == "" && !slices.ContainsFunc(mf.Metric, func(m *dto.Metric) bool { return metricstest.Value(m) != 0 }):
			missing = append(missing, f.name+" (no non-zero sample)")
		}
	}
	return missing
}

// TestMetricsAfterWalkthrough (issue 13, "Done when" 2): after the README
// walk-through — a holder's SIGN and AUTH issued and renewed, a second
// holder, an address change (and its replay), a counter revocation, OCSP
// asked of the CA and of a replica, a CRL fetched, `shomeictl audit verify`
// through the API — each family of walkthroughFamilies shows on /metrics of
// the CA and of the replica with a non-zero sample (or is present where
// zero is right), and no label value carries the holders' personal data or
// a 12-digit number.
func TestMetricsAfterWalkthrough(t *testing.T) {
	dir := t.TempDir()
	// No clients: a development CA on loopback certifies any replica key.
	caConfig := writeConfig(t, dir, "e2e-metrics-ca", "")
	ca := startCA(t, caConfig)
	token, err := testenv.Token(testDir, "e2e-metrics-replica")
	if err != nil {
		t.Fatal(err)
	}
	replicaConfig, err := testenv.WriteFile(dir, "replica.yaml", testenv.Replica{Name: "r1", CAAddress: ca.grpc, HSM: token}.YAML())
	if err != nil {
		t.Fatal(err)
	}
	rp, addrs := startBinary(t, "shomei-ocsp", replicaConfig, testenv.ReplicaListening)
	replicaHTTP := addrs[0]
	waitSynced(t, rp, replicaHTTP, 30*time.Second, "the replica")

	ctx := context.Background()
	cl := ca.client(t)
	today := time.Now().In(time.FixedZone("JST", 9*3600))
	const first, second = "WALK-1", "WALK-2"
	// A card expiring in 60 days puts the certificates in their renewal
	// window at once (as TestIssueRenewList).
	_, err = cl.Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: holder(first),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: today.AddDate(0, 0, 60).Format(time.DateOnly)},
		Profiles:    bothProfiles(t)})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	renewed, err := cl.Renew(ctx, &cav1.RenewRequest{Municipality: kiyose, Holder: holder(first),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: today.AddDate(10, 0, 0).Format(time.DateOnly)},
		Profiles:    bothProfiles(t)})
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	sign2, auth2 := issuePair(t, cl, second)

	// An address change ends the first holder's SIGN; its replay changes
	// nothing.
	events := cav1.NewEventsClient(ca.conn(t))
	move := &cav1.ReportEventRequest{EventId: "move-1", MunicipalityCode: "13221", HolderId: first, Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE,
		ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}, Cause: cav1.ChangeCause_CHANGE_CAUSE_MOVE,
		EffectiveTime: time.Now().Format(time.RFC3339)}
	for range 2 {
		if _, err := events.ReportEvent(ctx, move); err != nil {
			t.Fatalf("ReportEvent: %v", err)
		}
	}
	// A counter revocation of the second holder's AUTH.
	if _, err := cl.Revoke(ctx, &cav1.RevokeRequest{Serial: auth2.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}

	// OCSP, of the CA and of the replica, three times each: a response
	// pre-signed or signed for the first is cached when asked for again
	// (ocsp admit.go), and the third comes from the cache.
	work := t.TempDir()
	signIssuer := writeCertPEM(t, filepath.Join(work, "sign-ca.pem"), fetchIssuer(t, ca, "shomei-sign-g1").Raw)
	signPEM := filepath.Join(work, "sign2.pem")
	if err := os.WriteFile(signPEM, []byte(sign2.Pem), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{ocspURLOf(t, ca, sign2), "http://" + replicaHTTP + "/ocsp"} {
		for range 3 {
			if got := ocspStatus(t, work, "POST", url, signIssuer, signPEM); got != "good" {
				t.Errorf("openssl ocsp at %s says the second holder's SIGN is %q, want good", url, got)
			}
		}
	}

	// The CRL of the first holder's SIGN partition, from the URL in the
	// certificate, until it lists the revocations.
	cert, err := x509.ParseCertificate(renewed.Certificates[0].Der)
	if err != nil || len(cert.CRLDistributionPoints) != 1 {
		t.Fatalf("certificate CRL DP: %v %v", cert.CRLDistributionPoints, err)
	}
	crlURL := strings.Replace(cert.CRLDistributionPoints[0], "127.0.0.1:8080", ca.http, 1)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(crlURL)
		if err != nil {
			t.Fatal(err)
		}
		var der []byte
		if resp.StatusCode == http.StatusOK {
			der, err = io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		if crl, perr := x509.ParseRevocationList(der); err == nil && perr == nil && len(crl.RevokedCertificateEntries) >= 2 {
			break // the superseded SIGN and the one the address change ended
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no CRL listing the first holder's revoked SIGN certificates within 30 s", crlURL)
		}
	}

	// The operator verifies the audit log through the running CA.
	if got, err := shomeictl(caConfig, "audit", "verify", "--ca", ca.grpc, "--operator", "alice"); err != nil || !strings.Contains(got, "intact") {
		t.Fatalf("shomeictl audit verify: %v\n%s", err, got)
	}

	// The metrics: polled until complete (the CRL and the replica follow
	// within seconds), so a failure lists what never came.
	var caFams, rpFams map[string]*dto.MetricFamily
	var missing []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if caFams, err = scrape("http://" + ca.http + "/metrics"); err != nil {
			t.Fatal(err)
		}
		if rpFams, err = scrape("http://" + replicaHTTP + "/metrics"); err != nil {
			t.Fatal(err)
		}
		missing = append(missingFamilies(caFams, func(f walkthroughFamily) bool { return f.ca }),
			missingFamilies(rpFams, func(f walkthroughFamily) bool { return f.replica })...)
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, m := range missing {
		t.Errorf("after the walk-through: %s", m)
	}
	// Every metric the Grafana dashboard queries or an alert or recording
	// rule reads (deploy/) is one that a live CA or replica exports: a
	// dashboard panel or an alert over a misspelt or removed name would
	// show nothing, and an alert that can never fire tells no truth.
	named, err := deploy.DashboardMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if len(named) < 20 {
		t.Errorf("deploy.DashboardMetrics names %d metrics only: %v", len(named), named)
	}
	for _, name := range named {
		if caFams[name] == nil && rpFams[name] == nil {
			t.Errorf("deploy/ (dashboard or rules) names %s, which neither the CA's nor the replica's /metrics exports", name)
		}
	}
	// The counts the walk-through makes, exactly: revocations by source.
	wantRevocations := map[string]float64{
		`reason="superseded",source="renewal"`:               2, // SIGN and AUTH renewed
		`reason="affiliationChanged",source="record_change"`: 1, // the address change, once though reported twice
		`reason="keyCompromise",source="counter"`:            1,
	}
	gotRevocations := metricstest.Family(caFams["shomei_ca_revocations_total"])
	for series, want := range wantRevocations {
		if gotRevocations[series] != want {
			t.Errorf("shomei_ca_revocations_total{%s} = %v, want %v (all: %v)", series, gotRevocations[series], want, gotRevocations)
		}
	}
	gotEvents := metricstest.Family(caFams["shomei_ca_events_total"])
	for _, series := range []string{`kind="record_change",outcome="applied"`, `kind="record_change",outcome="duplicate"`} {
		if gotEvents[series] != 1 {
			t.Errorf("shomei_ca_events_total{%s} = %v, want 1 (all: %v)", series, gotEvents[series], gotEvents)
		}
	}

	// No personal data, and no 12-digit number, in any label value (R-P4).
	personal := personalData([]*cav1.Holder{holder(first), holder(second)})
	// A 12-digit number standing alone (not digits inside a hex key id,
	// where twelve in a row happen by chance).
	twelve := regexp.MustCompile(`(?:^|[^0-9A-Za-z０-９])[0-9０-９]{12}(?:$|[^0-9A-Za-z０-９])`)
	scanned := 0
	for who, fams := range map[string]map[string]*dto.MetricFamily{"CA": caFams, "replica": rpFams} {
		for name, mf := range fams {
			for _, m := range mf.Metric {
				for _, lp := range m.Label {
					v := lp.GetValue()
					scanned++
					for _, p := range personal {
						if strings.Contains(v, p) {
							t.Errorf("%s metric %s{%s=%q} carries personal data %q", who, name, lp.GetName(), v, p)
						}
					}
					if twelve.MatchString(v) {
						t.Errorf("%s metric %s{%s=%q} carries a 12-digit number", who, name, lp.GetName(), v)
					}
				}
			}
		}
	}
	if scanned < 100 {
		t.Errorf("scanned %d label values only: the scrape is not what the walk-through makes", scanned)
	}
	rp.stop(t)
	ca.stop(t)
}

// personalData is what no metric label may carry: each holder's names,
// address and birth date in the forms it is written (ISO, compact,
// slashed, the Japanese era), and the holder ids.
func personalData(holders []*cav1.Holder) []string {
	var out []string
	for _, h := range holders {
		out = append(out, h.Surname, h.GivenName, h.Address, h.HolderId)
		if d, err := time.Parse(time.DateOnly, h.DateOfBirth); err == nil {
			out = append(out, d.Format("2006-01-02"), d.Format("20060102"), d.Format("2006/01/02"), d.Format("2006/1/2"),
				d.Format("060102"), d.Format("2006年1月2日"), fmt.Sprintf("%d年%d月%d日", d.Year()-1988, d.Month(), d.Day()), // Heisei
				fmt.Sprintf("H%02d.%02d.%02d", d.Year()-1988, d.Month(), d.Day()))
		}
	}
	return out
}
