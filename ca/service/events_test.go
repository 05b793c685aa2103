package service_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// TestEvents checks every row of the R-R1 table: exactly which certificates
// an event revokes, with which reason code and invalidityDate, in one
// transaction; replays and out-of-order events change nothing twice; and a
// key from a loss report is never certified again (R-V8).
func TestEvents(t *testing.T) {
	t.Parallel()
	h := start(t, tokenEvents, options{})
	ctx := context.Background()
	const card = "2035-01-01"
	n := 0
	// holder issues SIGN+AUTH to a new adult resident and returns their serials.
	// Certificates are issued at 10:00 JST; events take effect at 11:00 and
	// reach the CA at 12:00.
	holder := func(t *testing.T) (string, string, string, [][]byte) {
		t.Helper()
		h.setDate(t, ceremonyDay)
		defer h.clock.Set(at(t, ceremonyDay).Add(2 * time.Hour))
		n++
		id := fmt.Sprintf("EV-%d", n)
		csrs := [][]byte{holderKeys.csr(t), holderKeys.csr(t)}
		out := h.issue(t, request(resident(id, "1980-04-01"), application(cav1.ApplicantKind_APPLICANT_KIND_SELF, card),
			sign(csrs[0]), auth(csrs[1])))
		return id, out.certs[0].Serial, out.certs[1].Serial, csrs
	}
	effective := "2026-11-21T11:00:00+09:00"
	report := func(t *testing.T, req *cav1.ReportEventRequest) *cav1.ReportEventResponse {
		t.Helper()
		req.MunicipalityCode = kiyose.Code
		if req.EffectiveTime == "" {
			req.EffectiveTime = effective
		}
		resp, err := h.events.ReportEvent(ctx, req)
		if err != nil {
			t.Fatalf("ReportEvent: %v", describe(err))
		}
		return resp
	}
	// expect checks the response and the certificates' stored status.
	expect := func(t *testing.T, resp *cav1.ReportEventResponse, revoked map[string]string, kept ...string) {
		t.Helper()
		var got []string
		for _, r := range resp.Revoked {
			got = append(got, r.Serial)
			want, ok := revoked[r.Serial]
			if !ok {
				t.Errorf("revoked %s, which should be kept", r.Serial)
				continue
			}
			if r.Reason != want || r.InvalidityDate != "2026-11-21T02:00:00Z" || r.AlreadyRevoked {
				t.Errorf("%s: reason %q invalidity %s already %v; want %s, 2026-11-21T02:00:00Z (the effective time, R-R3)",
					r.Serial, r.Reason, r.InvalidityDate, r.AlreadyRevoked, want)
			}
			c := h.get(t, r.Serial)
			if c.Status != cav1.Status_STATUS_REVOKED || c.RevocationReason != want {
				t.Errorf("%s stored as %v %q", r.Serial, c.Status, c.RevocationReason)
			}
		}
		if len(got) != len(revoked) {
			t.Errorf("revoked %v, want %d certificates", got, len(revoked))
		}
		for _, s := range kept {
			if c := h.get(t, s); c.Status != cav1.Status_STATUS_VALID {
				t.Errorf("%s should stay valid, is %v", s, c.Status)
			}
		}
	}

	rows := []struct {
		name    string
		req     func(signSerial string) *cav1.ReportEventRequest
		sign    string // reason for SIGN, "" = kept
		auth    string
		blocked bool
	}{
		{"address change (move)", func(string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE,
				ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}, Cause: cav1.ChangeCause_CHANGE_CAUSE_MOVE}
		}, "affiliationChanged", "", false},
		{"name change by marriage", func(string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE,
				ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_NAME}, Cause: cav1.ChangeCause_CHANGE_CAUSE_MARRIAGE}
		}, "affiliationChanged", "", false},
		{"name change by adoption", func(string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE,
				ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_NAME}, Cause: cav1.ChangeCause_CHANGE_CAUSE_ADOPTION}
		}, "affiliationChanged", "", false},
		{"date of birth and sex corrected", func(string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE, Cause: cav1.ChangeCause_CHANGE_CAUSE_CORRECTION,
				ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_DATE_OF_BIRTH, cav1.ChangedField_CHANGED_FIELD_SEX}}
		}, "affiliationChanged", "", false},
		{"marriage without a change of name", func(string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE, Cause: cav1.ChangeCause_CHANGE_CAUSE_MARRIAGE}
		}, "", "", false},
		{"moved abroad", func(string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_MOVED_ABROAD}
		}, "affiliationChanged", "", false},
		{"death", func(string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_DEATH}
		}, "cessationOfOperation", "cessationOfOperation", false},
		{"loss or theft", func(string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_LOSS_REPORT}
		}, "keyCompromise", "keyCompromise", true},
		{"card invalidated", func(string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_CARD_INVALIDATED}
		}, "cessationOfOperation", "cessationOfOperation", false},
		{"stop using AUTH", func(string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_STOP_USING, Profiles: []cav1.Profile{authProfile}}
		}, "", "cessationOfOperation", false},
		{"record error in the SIGN certificate", func(signSerial string) *cav1.ReportEventRequest {
			return &cav1.ReportEventRequest{Kind: cav1.EventKind_EVENT_KIND_RECORD_ERROR, Serial: signSerial}
		}, "affiliationChanged", "", false},
	}
	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			id, signSerial, authSerial, csrs := holder(t)
			req := row.req(signSerial)
			req.EventId, req.HolderId = fmt.Sprintf("row-%d", i), id
			revoked, kept := map[string]string{}, []string{}
			for serial, reason := range map[string]string{signSerial: row.sign, authSerial: row.auth} {
				if reason != "" {
					revoked[serial] = reason
				} else {
					kept = append(kept, serial)
				}
			}
			resp := report(t, req)
			if resp.Replayed {
				t.Fatal("a new event reported as replayed")
			}
			expect(t, resp, revoked, kept...)

			// The same event again: the first result, nothing changed.
			again := report(t, req)
			if !again.Replayed || len(again.Revoked) != len(resp.Revoked) {
				t.Fatalf("replay: replayed %v, %d revoked; want the first result", again.Replayed, len(again.Revoked))
			}
			for j := range again.Revoked {
				if again.Revoked[j].RevokedAt != resp.Revoked[j].RevokedAt || again.Revoked[j].Reason != resp.Revoked[j].Reason {
					t.Errorf("replay changed %s", again.Revoked[j].Serial)
				}
			}

			// R-V8: the keys of a loss report are blocked forever, the
			// others may be used... never again anyway (R-P1), but the
			// refusal names the right rule.
			for j, csr := range csrs {
				sum := sha256.Sum256(spkiOf(t, csr))
				blocked, err := h.store.KeyBlocked(sum[:])
				if err != nil || blocked != row.blocked {
					t.Errorf("key %d blocked = %v (%v), want %v", j, blocked, err, row.blocked)
				}
			}
			if row.blocked {
				hol := resident(id+"-new", "1980-04-01")
				req := request(hol, application(cav1.ApplicantKind_APPLICANT_KIND_SELF, card), auth(csrs[1]))
				h.refused(t, codes.FailedPrecondition, []violation{{field: "profiles[0].csr", rule: "R-V8"}},
					func() error { _, err := h.call(false, req); return err }, req)
			}
		})
	}

	t.Run("out of order: a late death after a renewal", func(t *testing.T) {
		// A death recorded before an address change arrives after it: the
		// address change then finds SIGN already revoked (R-R2) and
		// changes nothing.
		id, signSerial, authSerial, _ := holder(t)
		death := report(t, &cav1.ReportEventRequest{EventId: "late-death", HolderId: id, Kind: cav1.EventKind_EVENT_KIND_DEATH})
		expect(t, death, map[string]string{signSerial: "cessationOfOperation", authSerial: "cessationOfOperation"})
		move := report(t, &cav1.ReportEventRequest{EventId: "late-move", HolderId: id, Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE,
			ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}})
		if len(move.Revoked) != 1 || !move.Revoked[0].AlreadyRevoked || move.Revoked[0].Reason != "cessationOfOperation" {
			t.Fatalf("the later address change: %v; want SIGN reported already revoked for cessationOfOperation", move.Revoked)
		}
	})

	t.Run("an event effective before a certificate was issued spares it", func(t *testing.T) {
		id, signSerial, _, _ := holder(t)
		resp := report(t, &cav1.ReportEventRequest{EventId: "before-issuance", HolderId: id, Kind: cav1.EventKind_EVENT_KIND_MOVED_ABROAD,
			EffectiveTime: "2026-11-21T09:00:00+09:00"})
		if len(resp.Revoked) != 0 {
			t.Fatalf("an event effective yesterday revoked today's certificate: %v", resp.Revoked)
		}
		if c := h.get(t, signSerial); c.Status != cav1.Status_STATUS_VALID {
			t.Fatalf("SIGN is %v", c.Status)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		id, _, _, _ := holder(t)
		cases := []struct {
			name  string
			req   *cav1.ReportEventRequest
			field string
		}{
			{"no event id", &cav1.ReportEventRequest{HolderId: id, Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: effective}, "event_id"},
			{"no kind", &cav1.ReportEventRequest{EventId: "r1", HolderId: id, EffectiveTime: effective}, "kind"},
			{"future effective time", &cav1.ReportEventRequest{EventId: "r2", HolderId: id, Kind: cav1.EventKind_EVENT_KIND_DEATH,
				EffectiveTime: "2026-11-21T13:00:00+09:00"}, "effective_time"},
			{"stop using nothing", &cav1.ReportEventRequest{EventId: "r3", HolderId: id, Kind: cav1.EventKind_EVENT_KIND_STOP_USING,
				EffectiveTime: effective}, "profiles"},
			{"record error without serial", &cav1.ReportEventRequest{EventId: "r4", HolderId: id, Kind: cav1.EventKind_EVENT_KIND_RECORD_ERROR,
				EffectiveTime: effective}, "serial"},
			{"individual number as holder id", &cav1.ReportEventRequest{EventId: "r5", HolderId: "123456789012",
				Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: effective}, "holder_id"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.req.MunicipalityCode = kiyose.Code
				_, err := h.events.ReportEvent(ctx, tc.req)
				if got := fieldsOf(err); codeOf(err) != codes.InvalidArgument || !slices.Contains(got, tc.field) {
					t.Fatalf("ReportEvent = %v, want InvalidArgument naming %s", describe(err), tc.field)
				}
			})
		}
	})

	t.Run("counter request by serial", func(t *testing.T) {
		_, signSerial, authSerial, csrs := holder(t)
		resp, err := h.client.Revoke(ctx, &cav1.RevokeRequest{Serial: authSerial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE})
		if err != nil {
			t.Fatal(describe(err))
		}
		if resp.Revoked.Serial != authSerial || resp.Revoked.Reason != "keyCompromise" || resp.Revoked.AlreadyRevoked {
			t.Fatalf("Revoke: %v", resp.Revoked)
		}
		again, err := h.client.Revoke(ctx, &cav1.RevokeRequest{Serial: authSerial, Reason: cav1.RevocationReason_REVOCATION_REASON_CESSATION_OF_OPERATION})
		if err != nil || !again.Revoked.AlreadyRevoked || again.Revoked.Reason != "keyCompromise" {
			t.Fatalf("revoking again: %v %v; want the first revocation (R-R2)", again, err)
		}
		sum := sha256.Sum256(spkiOf(t, csrs[1]))
		if blocked, _ := h.store.KeyBlocked(sum[:]); !blocked {
			t.Fatal("keyCompromise did not block the key (R-V8)")
		}
		if c := h.get(t, signSerial); c.Status != cav1.Status_STATUS_VALID {
			t.Fatalf("revoking AUTH touched SIGN: %v", c.Status)
		}
		if _, err := h.client.Revoke(ctx, &cav1.RevokeRequest{Serial: "abcdef", Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); codeOf(err) != codes.NotFound {
			t.Fatalf("unknown serial: %v", describe(err))
		}
	})

	// Every revocation is in the audit log, which still verifies (R-K3).
	if _, err := h.store.VerifyAudit(); err != nil {
		t.Fatal(err)
	}
}

func spkiOf(t testing.TB, csrDER []byte) []byte {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	return csr.RawSubjectPublicKeyInfo
}

func codeOf(err error) codes.Code { return status.Code(err) }

// fieldsOf lists the fields of a refusal's BadRequest violations.
func fieldsOf(err error) []string {
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				out = append(out, v.Field)
			}
		}
	}
	return out
}
