package service_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// R-V1 (5th birthday after issuance), R-V2 (Feb 29), R-V5 (caps), R-V7
// (issuer outlives).
func TestValidity(t *testing.T) {
	t.Parallel()
	h := start(t, tokenValidity, options{})
	capped := resident("v5-auth-cap", "1982-09-09")
	h.run(t, []step{
		{name: "5th birthday after issuance", req: request(resident("v1-spring", "1980-03-15"), application(self, cardLater), auth(holderKeys.csr(t))),
			expiry: []string{"2031-03-15"}, check: all(because("5th birthday"), func(t *testing.T, out issued) {
				if want := time.Date(2031, 3, 15, 14, 59, 59, 0, time.UTC); !out.x509[0].NotAfter.Equal(want) {
					t.Errorf("notAfter %v, want %v", out.x509[0].NotAfter, want)
				}
			})},
		{name: "birthday on the issuance date does not count", req: request(resident("v1-today", "1990-11-21"), application(self, cardLater),
			sign(holderKeys.csr(t)), auth(holderKeys.csr(t))), expiry: []string{"2031-11-21", "2031-11-21"}},
		{name: "birthday the day after issuance", req: request(resident("v1-tomorrow", "1990-11-22"), application(self, cardLater),
			auth(holderKeys.csr(t))), expiry: []string{"2030-11-22"}},
		{name: "Feb 29 birthday expires on Feb 28", req: request(resident("v1-leap", "1988-02-29"), application(self, cardLater),
			sign(holderKeys.csr(t))), expiry: []string{"2031-02-28"}},
		{name: "date of birth in the future", req: request(resident("v1-unborn", "2027-01-01"), application(legal, cardLater), auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.date_of_birth", "R-V1", nil}}},
		{name: "date of birth that does not exist", req: request(resident("v1-no-date", "1990-02-30"), application(self, cardLater), auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.date_of_birth", "R-V1", nil}}},
		{name: "card expires first", req: request(resident("v5-card", "1975-08-01"), application(self, "2029-04-30"), auth(holderKeys.csr(t))),
			expiry: []string{"2029-04-30"}, check: because("card")},
		{name: "AUTH with a short card", req: request(capped, application(self, "2028-06-30"), auth(holderKeys.csr(t))),
			expiry: []string{"2028-06-30"}},
		{name: "SIGN capped by the holder's AUTH", req: request(capped, application(self, cardLater), sign(holderKeys.csr(t))),
			expiry: []string{"2028-06-30"}, check: because("AUTH")},
		{name: "card already expired", req: request(resident("v5-expired", "1975-08-01"), application(self, "2026-11-20"), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.card_expiry", "R-V5", []string{"2026-11-20"}}}},
		{name: "card expiry not a date", req: request(resident("v5-bad-card", "1975-08-01"), application(self, "2031-13-01"), auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"application.card_expiry", "R-V5", nil}}},
		{name: "5th birthday after the issuer's end", date: "2032-06-01",
			req:  request(resident("v7-late", "1990-11-21"), application(self, cardLater), sign(holderKeys.csr(t)), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{
				{"profiles[0].profile", "R-V7", []string{"2036-11-21", "rotate"}}, {"profiles[1].profile", "R-V7", nil}}},
		{name: "5th birthday the day before the issuer's end", req: request(resident("v7-inside", "1990-11-20"), application(self, cardLater),
			auth(holderKeys.csr(t))), expiry: []string{"2036-11-20"}},
		{name: "card caps below the issuer's end", req: request(resident("v7-card", "1990-11-21"), application(self, "2036-11-20"),
			auth(holderKeys.csr(t))), expiry: []string{"2036-11-20"}, check: because("card")},
	})
}

// R-V3 (renewal window), R-V4 (renewal expiry, superseded, no renewal after
// expiry).
func TestRenewal(t *testing.T) {
	t.Parallel()
	h := start(t, tokenRenewal, options{})
	// Born on Mar 15: every certificate issued on 2026-11-21 expires on
	// 2031-03-15, whose renewal window opens on 2030-12-16.
	const born = "1980-03-15"
	window := resident("v3-window", born)
	abroad := resident("v3-abroad", born)
	abroad.LivingAbroad = true
	onExpiry := resident("v4-on-expiry", born)
	late := resident("v4-late", born)
	oldKey := resident("v4-old-key", born)
	oldKeyCSR := holderKeys.csr(t)
	app := application(self, cardLater)
	var windowOld, windowNew, abroadOld, onExpiryOld issued

	h.run(t, []step{
		{name: "issue AUTH", req: request(window, app, auth(holderKeys.csr(t))), expiry: []string{"2031-03-15"}, check: keep(&windowOld)},
		{name: "issue AUTH, living abroad", req: request(abroad, app, auth(holderKeys.csr(t))), expiry: []string{"2031-03-15"}, check: keep(&abroadOld)},
		{name: "issue SIGN and AUTH", req: request(onExpiry, app, sign(holderKeys.csr(t)), auth(holderKeys.csr(t))),
			expiry: []string{"2031-03-15", "2031-03-15"}, check: keep(&onExpiryOld)},
		{name: "issue AUTH to renew late", req: request(late, app, auth(holderKeys.csr(t))), expiry: []string{"2031-03-15"}},
		{name: "issue AUTH to renew with its key", req: request(oldKey, app, auth(oldKeyCSR)), expiry: []string{"2031-03-15"}},
		{name: "renew nothing", renew: true, req: request(resident("v4-none", born), app, auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-V4", []string{"Issue"}}}},
		{name: "renew at once", renew: true, req: request(window, app, auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-V3", []string{"2030-12-16"}}}},

		{name: "living abroad: the day before the window opens", date: "2030-03-15", renew: true, req: request(abroad, app, auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-V3", []string{"2030-03-16"}}}},
		{name: "living abroad: first day of the window", date: "2030-03-16", renew: true, req: request(abroad, app, auth(holderKeys.csr(t))),
			expiry: []string{"2036-03-15"}, check: all(because("6th birthday"), h.supersedes(&abroadOld))},

		{name: "the day before the window opens", date: "2030-12-15", renew: true, req: request(window, app, auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-V3", []string{"2030-12-16"}}}},
		{name: "first day of the window", date: "2030-12-16", renew: true, req: request(window, app, auth(holderKeys.csr(t))),
			expiry: []string{"2036-03-15"}, check: all(because("6th birthday"), h.supersedes(&windowOld), keep(&windowNew))},
		{name: "renew the renewed certificate", renew: true, req: request(window, app, auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-V3", []string{"2035-12-16"}}}},
		{name: "issue while the renewed certificate is valid", req: request(window, app, auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-A4", nil}}},
		{name: "renew with the old key", renew: true, req: request(oldKey, app, auth(oldKeyCSR)),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].csr", "R-P1", nil}}},
		{name: "renew with a card expiring before the new expiry", renew: true, req: request(oldKey, application(self, "2035-01-31"), auth(holderKeys.csr(t))),
			expiry: []string{"2035-01-31"}, check: because("card")},

		{name: "on the expiry date", date: "2031-03-15", renew: true, req: request(onExpiry, app, sign(holderKeys.csr(t)), auth(holderKeys.csr(t))),
			expiry: []string{"2036-03-15", "2036-03-15"}, check: all(because("5th birthday"), h.supersedes(&onExpiryOld))},

		{name: "the day after expiry", date: "2031-03-16", renew: true, req: request(late, app, auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-V4", nil}}},
		{name: "the day after expiry, a new issuance", req: request(late, app, auth(holderKeys.csr(t))),
			expiry: []string{"2036-03-15"}, check: because("5th birthday")},
	})

	t.Run("list after renewal", func(t *testing.T) {
		if len(windowNew.certs) == 0 {
			t.Skip("the renewal failed")
		}
		got := h.list(t, window.HolderId)
		if len(got) != 2 || got[0].Serial != windowNew.certs[0].Serial || got[0].Status != cav1.Status_STATUS_VALID ||
			got[1].Serial != windowOld.certs[0].Serial || got[1].Status != cav1.Status_STATUS_REVOKED {
			t.Errorf("list %v, want the renewal VALID, then the old one REVOKED", summary(got))
		}
	})
}
