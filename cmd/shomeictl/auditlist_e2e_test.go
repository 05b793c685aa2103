package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// TestAuditListFromTheCA: after issuance, a counter revocation and a death
// event on the real shomei-ca, audit list prints their records with the
// codes named (no kind=3 reason=5), and --json prints the same as JSON
// lines with the documented fields, the numbers kept in "code".
func TestAuditListFromTheCA(t *testing.T) {
	dir := t.TempDir()
	ca := startCA(t, dir, "ctl-audit-list", "certificates:\n  allow_ecdsa_p256: true\n")
	conn, err := grpc.NewClient(ca.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := cav1.NewCertificateAuthorityClient(conn)
	signA, _ := issueBoth(t, client, "CTL-AL-A")
	issueBoth(t, client, "CTL-AL-B")
	ctx := context.Background()
	if _, err := client.Revoke(ctx, &cav1.RevokeRequest{Serial: signA, Reason: cav1.RevocationReason_REVOCATION_REASON_AFFILIATION_CHANGED}); err != nil {
		t.Fatal(err)
	}
	if _, err := cav1.NewEventsClient(conn).ReportEvent(ctx, &cav1.ReportEventRequest{EventId: "al-death", MunicipalityCode: "13221",
		HolderId: "CTL-AL-B", Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: time.Now().Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "shomei.yaml")
	args := []string{"--config", conf, "audit", "list", "--ca", ca.grpc, "--operator", "alice"}

	r := run(t, args...)
	if r.code != 0 {
		t.Fatalf("audit list: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("audit list:\n%s", r.stdout)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\d+\t\S+\t\S+\tcertificate\.issue serial=\S+ .*applicant=APPLICANT_KIND_SELF`),
		regexp.MustCompile(`(?m)^\d+\t\S+\t\S+\tcertificate\.revoke serial=` + signA + ` reason=affiliationChanged cause="counter request"`),
		regexp.MustCompile(`(?m)\tcertificate\.revoke serial=\S+ reason=cessationOfOperation `),
		regexp.MustCompile(`(?m)\tevent\.report .*kind=EVENT_KIND_DEATH cause=CHANGE_CAUSE_UNSPECIFIED`),
	} {
		if !want.MatchString(r.stdout) {
			t.Errorf("audit list lacks a line matching %s", want)
		}
	}
	if m := regexp.MustCompile(`\b(reason|kind|cause|applicant)=\d+\b`).FindString(r.stdout); m != "" {
		t.Errorf("audit list prints a number: %s", m)
	}

	r = run(t, append(args, "--json")...)
	if r.code != 0 {
		t.Fatalf("audit list --json: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var last uint64
	codes := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e auditEntry
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.Seq <= last || e.Time == "" || e.Action == "" {
			t.Fatalf("--json line %q: %v (after seq %d)", line, err, last)
		}
		last = e.Seq
		for _, f := range e.Fields {
			if f.Code != "" {
				codes[e.Action+" "+f.Key+"="+f.Value+" ("+f.Code+")"] = true
			}
		}
	}
	for _, want := range []string{"certificate.revoke reason=affiliationChanged (3)", "certificate.revoke reason=cessationOfOperation (5)",
		"event.report kind=EVENT_KIND_DEATH (3)", "certificate.issue applicant=APPLICANT_KIND_SELF (1)"} {
		if !codes[want] {
			t.Errorf("--json lacks %s; has %v", want, codes)
		}
	}
}
