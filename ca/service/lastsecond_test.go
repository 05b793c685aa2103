package service_test

import (
	"context"
	"crypto/x509"
	"log/slog"
	"math/big"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/ocsp"
)

// tokenLastSecond is TestLastSecond's token, made in TestMain with the
// others.
const tokenLastSecond = "rules-last-second"

func init() { tokens = append(tokens, tokenLastSecond) }

// TestLastSecond checks every path that decides whether a certificate has
// expired at the two instants either side of the end of its expiry date.
// A certificate is valid through the whole last second of its notAfter,
// 23:59:59 JST of the expiry date (R-P1; RFC 5280 validity is inclusive),
// and expired from 00:00:00 JST the next day (R-V6). At 23:59:59 (and
// 23:59:59.999) issuance, renewal, revocation, events, GetCertificate, CRLs
// and OCSP agree that it is valid; at 00:00:00 they agree that it has
// expired.
func TestLastSecond(t *testing.T) {
	t.Parallel()
	h := start(t, tokenLastSecond, options{})
	ctx := context.Background()
	// Born on Mar 15: every certificate issued on 2026-11-21 expires on
	// 2031-03-15, notAfter 2031-03-15T14:59:59Z.
	const born, expiry = "1980-03-15", "2031-03-15"
	lastSecond := endOfDay(t, expiry)                         // 23:59:59 JST
	lastMillisecond := lastSecond.Add(999 * time.Millisecond) // 23:59:59.999 JST
	nextDay := lastSecond.Add(time.Second)                    // 00:00:00 JST the next day
	app := application(self, cardLater)

	// Everyone gets SIGN+AUTH (or AUTH) on the ceremony day.
	holders := map[string]issued{}
	for _, id := range []string{"ls-renew", "ls-renew-ms", "ls-death", "ls-death-late", "ls-counter", "ls-get"} {
		holders[id] = h.issue(t, request(resident(id, born), app, sign(holderKeys.csr(t)), auth(holderKeys.csr(t))))
	}
	for _, id := range []string{"ls-double", "ls-renew-late"} {
		holders[id] = h.issue(t, request(resident(id, born), app, auth(holderKeys.csr(t))))
	}
	for id, out := range holders {
		for _, c := range out.certs {
			if c.ExpiryDate != expiry {
				t.Fatalf("%s: %v expires %s, want %s", id, c.Profile, c.ExpiryDate, expiry)
			}
		}
	}
	publisher, err := crl.NewPublisher(crl.PublisherConfig{Source: h.store, Issuers: h.ca.IssuerSigner, Now: h.clock.Now,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}

	// renewBoth renews the holder's SIGN and AUTH on their expiry date:
	// the new ones expire on the 5th birthday after it (R-V4).
	renewBoth := func(t *testing.T, id string) issued {
		t.Helper()
		old := holders[id]
		out := h.grant(t, true, request(resident(id, born), app, sign(holderKeys.csr(t)), auth(holderKeys.csr(t))))
		for _, c := range out.certs {
			if c.ExpiryDate != "2036-03-15" {
				t.Errorf("renewed %v expires %s, want 2036-03-15 (renewed on the expiry date: the 5th birthday, R-V4)", c.Profile, c.ExpiryDate)
			}
		}
		h.supersedes(&old)(t, out)
		return out
	}

	// At 23:59:59 JST on the expiry date: valid.
	h.clock.Set(lastSecond)
	t.Run("23:59:59 GetCertificate says VALID", func(t *testing.T) {
		h.wantUnrevoked(t, holders["ls-get"].certs, cav1.Status_STATUS_VALID)
	})
	t.Run("23:59:59 the valid certificate blocks a new issuance (R-A4)", func(t *testing.T) {
		h.refusedFor(t, false, request(resident("ls-double", born), app, auth(holderKeys.csr(t))), "R-A4")
	})
	t.Run("23:59:59 renewal of SIGN and AUTH (R-V4)", func(t *testing.T) {
		holders["ls-renew new"] = renewBoth(t, "ls-renew")
	})
	t.Run("23:59:59 a death revokes both (R-R1)", func(t *testing.T) {
		resp, err := h.events.ReportEvent(ctx, &cav1.ReportEventRequest{EventId: "ls-death", MunicipalityCode: kiyose.Code,
			HolderId: "ls-death", Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: lastSecond.Format(time.RFC3339)})
		if err != nil {
			t.Fatal(describe(err))
		}
		h.wantRevokedNow(t, resp.Revoked, holders["ls-death"].certs, "cessationOfOperation")
	})
	t.Run("23:59:59 a counter request revokes (R-R1)", func(t *testing.T) {
		c := holders["ls-counter"].certs[1]
		resp, err := h.client.Revoke(ctx, &cav1.RevokeRequest{Serial: c.Serial,
			Reason: cav1.RevocationReason_REVOCATION_REASON_CESSATION_OF_OPERATION})
		if err != nil {
			t.Fatal(describe(err))
		}
		h.wantRevokedNow(t, []*cav1.RevokedCertificate{resp.Revoked}, []*cav1.Certificate{c}, "cessationOfOperation")
	})
	t.Run("23:59:59 the CRLs list the revoked certificates (R-R5)", func(t *testing.T) {
		listed := h.publishCRLs(t, publisher)
		for _, c := range slices.Concat(holders["ls-death"].certs, holders["ls-counter"].certs[1:], holders["ls-renew"].certs) {
			if !listed[c.Serial] {
				t.Errorf("revoked %v %s is not on its CRL at its notAfter", c.Profile, c.Serial)
			}
		}
	})

	// At 23:59:59.999 JST: still valid.
	h.clock.Set(lastMillisecond)
	t.Run("23:59:59.999 GetCertificate says VALID", func(t *testing.T) {
		h.wantUnrevoked(t, holders["ls-get"].certs, cav1.Status_STATUS_VALID)
	})
	t.Run("23:59:59.999 renewal of SIGN and AUTH (R-V4)", func(t *testing.T) {
		renewBoth(t, "ls-renew-ms")
	})

	// At 00:00:00 JST the next day: expired.
	h.clock.Set(nextDay)
	t.Run("00:00:00 GetCertificate says EXPIRED", func(t *testing.T) {
		h.wantUnrevoked(t, holders["ls-get"].certs, cav1.Status_STATUS_EXPIRED)
	})
	t.Run("00:00:00 renewal is refused: it is a new issuance (R-V4)", func(t *testing.T) {
		h.refusedFor(t, true, request(resident("ls-renew-late", born), app, auth(holderKeys.csr(t))), "R-V4")
	})
	t.Run("00:00:00 the expired certificate no longer blocks issuance (R-A4)", func(t *testing.T) {
		for _, id := range []string{"ls-double", "ls-renew-late"} {
			out := h.issue(t, request(resident(id, born), app, auth(holderKeys.csr(t))))
			if got := out.certs[0].ExpiryDate; got != "2036-03-15" {
				t.Errorf("%s: new AUTH expires %s, want 2036-03-15 (R-V1)", id, got)
			}
		}
	})
	t.Run("00:00:00 a death revokes nothing that expired (R-R1)", func(t *testing.T) {
		resp, err := h.events.ReportEvent(ctx, &cav1.ReportEventRequest{EventId: "ls-death-late", MunicipalityCode: kiyose.Code,
			HolderId: "ls-death-late", Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: nextDay.Format(time.RFC3339)})
		if err != nil {
			t.Fatal(describe(err))
		}
		if len(resp.Revoked) != 0 {
			t.Errorf("the death revoked %d expired certificates, want none", len(resp.Revoked))
		}
		h.wantUnrevoked(t, holders["ls-death-late"].certs, cav1.Status_STATUS_EXPIRED)
	})
	t.Run("00:00:00 the CRLs drop the expired certificates (R-R5)", func(t *testing.T) {
		// A revocation in each partition, so that both CRLs are published
		// again.
		renewed := holders["ls-renew new"].certs
		if len(renewed) != 2 {
			t.Skip("the renewal at 23:59:59 failed")
		}
		for _, c := range renewed {
			if _, err := h.client.Revoke(ctx, &cav1.RevokeRequest{Serial: c.Serial,
				Reason: cav1.RevocationReason_REVOCATION_REASON_AFFILIATION_CHANGED}); err != nil {
				t.Fatal(describe(err))
			}
		}
		listed := h.publishCRLs(t, publisher)
		for _, c := range renewed {
			if !listed[c.Serial] {
				t.Errorf("revoked %v %s, valid until 2036, is not on its CRL", c.Profile, c.Serial)
			}
		}
		for _, c := range slices.Concat(holders["ls-death"].certs, holders["ls-counter"].certs[1:], holders["ls-renew"].certs) {
			if listed[c.Serial] {
				t.Errorf("%v %s expired at 23:59:59 and is still on its CRL", c.Profile, c.Serial)
			}
			// OCSP keeps saying revoked after expiry.
			h.wantOCSP(t, c, ocsp.Revoked, -1)
		}
	})
}

// wantUnrevoked checks that GetCertificate says want (VALID or EXPIRED,
// R-V6) of each of certs, and OCSP good: expiry does not change what OCSP
// says (ocsp.RecordedStatus).
func (h *harness) wantUnrevoked(t *testing.T, certs []*cav1.Certificate, want cav1.Status) {
	t.Helper()
	for _, c := range certs {
		if got := h.get(t, c.Serial); got.Status != want {
			t.Errorf("%v %s is %v, want %v (R-V6)", c.Profile, c.Serial, got.Status, want)
		}
		h.wantOCSP(t, c, ocsp.Good, 0)
	}
}

// refusedFor makes an Issue or Renew call that must be refused with
// FailedPrecondition for rule, on the request's one profile, changing
// nothing.
func (h *harness) refusedFor(t *testing.T, renew bool, req *cav1.IssueRequest, rule string) {
	t.Helper()
	h.refused(t, codes.FailedPrecondition, []violation{{"profiles[0].profile", rule, nil}}, func() error {
		_, err := h.call(renew, req)
		return err
	}, req)
}

// wantRevokedNow checks that got revokes exactly certs, now, for reason,
// and that GetCertificate and OCSP say so.
func (h *harness) wantRevokedNow(t *testing.T, got []*cav1.RevokedCertificate, certs []*cav1.Certificate, reason string) {
	t.Helper()
	now := h.clock.Now().UTC().Format(time.RFC3339)
	var serials, want []string
	for _, r := range got {
		serials = append(serials, r.Serial)
		if r.Reason != reason || r.AlreadyRevoked {
			t.Errorf("%s: reason %q already %v, want %s, revoked now", r.Serial, r.Reason, r.AlreadyRevoked, reason)
		}
	}
	for _, c := range certs {
		want = append(want, c.Serial)
		if g := h.get(t, c.Serial); g.Status != cav1.Status_STATUS_REVOKED || g.RevocationReason != reason || g.RevokedAt != now {
			t.Errorf("%v %s: %v %q revoked at %q, want REVOKED %s at %s", c.Profile, c.Serial, g.Status, g.RevocationReason, g.RevokedAt, reason, now)
		}
		h.wantOCSP(t, c, ocsp.Revoked, -1)
	}
	slices.Sort(serials)
	slices.Sort(want)
	if !slices.Equal(serials, want) {
		t.Errorf("revoked %v, want %v", serials, want)
	}
}

// wantOCSP checks the CA's OCSP status of c; reason is checked when not
// negative and the status is revoked.
func (h *harness) wantOCSP(t *testing.T, c *cav1.Certificate, want ocsp.CertStatus, reason int) {
	t.Helper()
	serial, ok := new(big.Int).SetString(c.Serial, 16)
	if !ok {
		t.Fatalf("serial %q is not hex", c.Serial)
	}
	st, err := h.ca.OCSPSource().Status(context.Background(), &ocsp.Issuer{Certificate: h.issuers[c.Profile]}, serial)
	if err != nil {
		t.Fatalf("OCSP status of %s: %v", c.Serial, err)
	}
	if st.Status != want || (want == ocsp.Revoked && reason >= 0 && st.Reason != reason) {
		t.Errorf("OCSP says %v %s is %v (reason %d), want %v", c.Profile, c.Serial, st.Status, st.Reason, want)
	}
}

// publishCRLs publishes every CRL that is due and returns the serials (hex,
// as the API writes them) listed on the CA's CRLs, each of which must verify
// against its issuer.
func (h *harness) publishCRLs(t *testing.T, p *crl.Publisher) map[string]bool {
	t.Helper()
	if err := p.PublishDue(context.Background()); err != nil {
		t.Fatalf("publishing CRLs: %v", err)
	}
	parts, err := h.store.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, part := range parts {
		der, err := h.store.CRL(part.Name)
		if err != nil || der == nil {
			t.Fatalf("CRL of %s: %v (published: %v)", part.Name, err, der != nil)
		}
		list, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatalf("CRL of %s: %v", part.Name, err)
		}
		if !list.ThisUpdate.Equal(h.clock.Now().Truncate(time.Second)) {
			t.Errorf("CRL of %s: thisUpdate %v, want now %v (not published again)", part.Name, list.ThisUpdate, h.clock.Now())
		}
		if err := list.CheckSignatureFrom(h.issuers[cav1.Profile(part.Profile)]); err != nil {
			t.Errorf("CRL of %s: %v", part.Name, err)
		}
		for _, e := range list.RevokedCertificateEntries {
			listed[e.SerialNumber.Text(16)] = true
		}
	}
	return listed
}
