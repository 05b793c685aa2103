package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
)

// auditRecord is a record with fields given as key, value, key, value….
func auditRecord(seq uint64, action string, kv ...string) *opsv1.AuditRecord {
	r := &opsv1.AuditRecord{Seq: seq, Time: "2026-12-06T10:00:00.5+09:00", Actor: "operator:alice", Action: action}
	for i := 0; i < len(kv); i += 2 {
		r.Fields = append(r.Fields, &opsv1.AuditField{Key: kv[i], Value: kv[i+1]})
	}
	return r
}

// TestAuditListNames: audit list names the numbers records hold — the
// reason of a revocation (RFC 5280's names), an event's kind and cause and
// an issuance's applicant (the CA API's enum names) — leaves alone the
// same keys in other actions and numbers that name nothing, and quotes
// values so that a line splits back into its fields.
func TestAuditListNames(t *testing.T) {
	for _, c := range []struct {
		name string
		rec  *opsv1.AuditRecord
		line string
	}{
		{"revocation", auditRecord(7, "certificate.revoke", "serial", "1a2b", "reason", "3", "cause", "counter request", "key_blocked", "false"),
			`certificate.revoke serial=1a2b reason=affiliationChanged cause="counter request" key_blocked=false`},
		{"responder revocation", auditRecord(8, "ocsp.responder.revoke", "serial", "0f", "reason", "1"),
			`ocsp.responder.revoke serial=0f reason=keyCompromise`},
		{"event", auditRecord(9, "event.report", "event_id", "move-1", "municipality", "13221", "kind", "3", "cause", "1", "effective", "2026-12-06T01:00:00Z"),
			`event.report event_id=move-1 municipality=13221 kind=EVENT_KIND_DEATH cause=CHANGE_CAUSE_MOVE effective=2026-12-06T01:00:00Z`},
		{"issuance", auditRecord(10, "certificate.issue", "serial", "ab", "profile", "sign", "applicant", "2"),
			`certificate.issue serial=ab profile=sign applicant=APPLICANT_KIND_LEGAL_REPRESENTATIVE`},
		{"renewal", auditRecord(11, "certificate.renew", "applicant", "3"), `certificate.renew applicant=APPLICANT_KIND_PROXY`},
		{"no such code", auditRecord(12, "certificate.revoke", "reason", "7", "cause", ""), `certificate.revoke reason=7 cause=""`},
		{"not a number", auditRecord(13, "event.report", "kind", "x=1"), `event.report kind="x=1"`},
		{"free text reason", auditRecord(14, "approval.propose", "kind", "ISSUER_COMPROMISE", "reason", "3 keys lost"),
			`approval.propose kind=ISSUER_COMPROMISE reason="3 keys lost"`},
		{"no fields", auditRecord(15, "audit.verify"), `audit.verify`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := writeAuditLine(&out, namedAuditRecord(c.rec)); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%d\t%s\toperator:alice\t%s\n", c.rec.Seq, c.rec.Time, c.line)
			if out.String() != want {
				t.Errorf("line %q, want %q", out.String(), want)
			}
		})
	}
}

// TestAuditListJSON: --json is one object a line with the documented,
// stable field names; "code" keeps the number a name replaced and is
// absent elsewhere; a record without fields has an empty list, not null.
func TestAuditListJSON(t *testing.T) {
	var out bytes.Buffer
	for _, r := range []*opsv1.AuditRecord{
		auditRecord(7, "certificate.revoke", "serial", "1a2b", "reason", "5"),
		auditRecord(8, "audit.verify"),
	} {
		if err := writeAuditJSON(&out, namedAuditRecord(r)); err != nil {
			t.Fatal(err)
		}
	}
	want := `{"seq":7,"time":"2026-12-06T10:00:00.5+09:00","actor":"operator:alice","action":"certificate.revoke","fields":[{"key":"serial","value":"1a2b"},{"key":"reason","value":"cessationOfOperation","code":"5"}]}
{"seq":8,"time":"2026-12-06T10:00:00.5+09:00","actor":"operator:alice","action":"audit.verify","fields":[]}
`
	if out.String() != want {
		t.Errorf("--json:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e auditEntry
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Errorf("%s: %v", line, err)
		}
	}
}
