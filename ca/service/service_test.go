package service_test

import (
	"context"
	"crypto/elliptic"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
)

// The rule tests of the CA, through its gRPC API. Each test runs a CA of its
// own (harness_test.go) whose clock starts at 10:00 JST on 2026-11-21, the
// day of its key ceremony; its issuers are valid until 2036-11-21T01:00Z.
// Unless a case says otherwise the card expires long after everything else
// (cardLater), so that the 5th birthday decides (R-V1).

const cardLater = "2040-01-01"

// keep stores what a step issued, for later steps.
func keep(dst *issued) func(*testing.T, issued) {
	return func(_ *testing.T, out issued) { *dst = out }
}

// all runs several checks.
func all(checks ...func(*testing.T, issued)) func(*testing.T, issued) {
	return func(t *testing.T, out issued) {
		t.Helper()
		for _, c := range checks {
			c(t, out)
		}
	}
}

// because checks that every issued certificate's expiry reason says why.
func because(why string) func(*testing.T, issued) {
	return func(t *testing.T, out issued) {
		t.Helper()
		for _, c := range out.certs {
			if !strings.Contains(c.ExpiryReason, why) {
				t.Errorf("%v expiry reason %q does not say %q", c.Profile, c.ExpiryReason, why)
			}
		}
	}
}

// supersedes checks a renewal of old (R-V4): the response names old's
// certificates as superseded, in order; each is now REVOKED as superseded
// by the new certificate of its profile, revoked at the renewal, and the
// new ones are VALID.
func (h *harness) supersedes(old *issued) func(*testing.T, issued) {
	return func(t *testing.T, out issued) {
		t.Helper()
		var want []string
		for _, c := range old.certs {
			want = append(want, c.Serial)
		}
		if !slices.Equal(out.superseded, want) {
			t.Errorf("superseded serials %v, want %v", out.superseded, want)
		}
		now := h.clock.Now().UTC().Format(time.RFC3339)
		for i, c := range old.certs {
			got := h.get(t, c.Serial)
			if got.Status != cav1.Status_STATUS_REVOKED || got.RevocationReason != "superseded" ||
				got.SupersededBy != out.certs[i].Serial || got.RevokedAt != now {
				t.Errorf("old %v certificate %s: status %v reason %q superseded by %q revoked at %q; want REVOKED superseded by %s at %s",
					c.Profile, c.Serial, got.Status, got.RevocationReason, got.SupersededBy, got.RevokedAt, out.certs[i].Serial, now)
			}
			if fresh := h.get(t, out.certs[i].Serial); fresh.Status != cav1.Status_STATUS_VALID {
				t.Errorf("new certificate %s is %v", fresh.Serial, fresh.Status)
			}
		}
	}
}

// R-A1: who may apply.
func TestApplicantKinds(t *testing.T) {
	t.Parallel()
	h := start(t, tokenApplicant, options{})
	child := resident("a1-child", "2015-04-01") // 11 years old
	ward := adultWard("a1-ward", "1950-06-10")
	h.run(t, []step{
		{name: "under 15, SELF, AUTH", req: request(child, application(self, "2031-04-01"), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.applicant_kind", "R-A1", []string{"under 15", "legal representative"}}}},
		{name: "under 15, LEGAL_REPRESENTATIVE, AUTH", req: request(child, application(legal, "2031-04-01"), auth(holderKeys.csr(t))),
			expiry: []string{"2031-04-01"}},
		{name: "adult ward, SELF, AUTH", req: request(ward, application(self, cardLater), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.applicant_kind", "R-A1", []string{"adult ward"}}}},
		{name: "adult ward, LEGAL_REPRESENTATIVE, AUTH", req: request(ward, application(legal, cardLater), auth(holderKeys.csr(t))),
			expiry: []string{"2031-06-10"}},
		{name: "adult, SELF, SIGN and AUTH", req: request(resident("a1-adult", "1980-01-20"), application(self, cardLater),
			sign(holderKeys.csr(t)), auth(holderKeys.csr(t))), expiry: []string{"2031-01-20", "2031-01-20"}},
		{name: "unspecified applicant kind", req: request(resident("a1-unspecified", "1980-01-20"),
			application(cav1.ApplicantKind_APPLICANT_KIND_UNSPECIFIED, cardLater), auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"application.applicant_kind", "R-A1", nil}}},
		{name: "unknown applicant kind", req: request(resident("a1-unknown", "1980-01-20"),
			application(cav1.ApplicantKind(9), cardLater), auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"application.applicant_kind", "R-A1", nil}}},
		{name: "no application", req: request(resident("a1-none", "1980-01-20"), nil, auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{
				{"application.applicant_kind", "R-A1", nil}, {"application.card_expiry", "R-V5", nil}}},
	})
}

// R-A2: a PROXY application completes only with the inquiry code, within
// 30 days, once.
func TestProxyInquiry(t *testing.T) {
	t.Parallel()
	h := start(t, tokenInquiry, options{})
	a := resident("a2-holder-a", "1981-05-05")
	b := resident("a2-holder-b", "1982-06-06")
	late := resident("a2-holder-late", "1983-07-07")
	inTime := resident("a2-holder-in-time", "1984-08-08")
	inqA, inqB := h.openInquiry(t, a.HolderId), h.openInquiry(t, b.HolderId)
	inqLate, inqInTime := h.openInquiry(t, late.HolderId), h.openInquiry(t, inTime.HolderId)
	guessed := resident("a2-holder-guessed", "1985-09-09")
	inqGuessed, inqAgain := h.openInquiry(t, guessed.HolderId), h.openInquiry(t, guessed.HolderId)
	if want := "2026-12-21T01:00:00Z"; inqA.ExpiresAt != want {
		t.Errorf("inquiry opened at 2026-11-21 10:00 JST expires at %s, want %s (30 days)", inqA.ExpiresAt, want)
	}
	if inqA.Code == "" || inqA.Code == inqB.Code || inqA.InquiryId == inqB.InquiryId {
		t.Fatalf("inquiries %+v and %+v are not distinct", inqA, inqB)
	}
	withCode := func(inq *cav1.OpenInquiryResponse, code, card string) *cav1.Application {
		return &cav1.Application{ApplicantKind: proxy, InquiryId: inq.InquiryId, InquiryCode: code, CardExpiry: card}
	}
	// A code of the right shape that is not inqA's.
	wrong := []byte(inqA.Code)
	wrong[0] = map[bool]byte{true: 'B', false: 'A'}[wrong[0] == 'A']
	var first issued

	// Guessing: wrong codes are counted, and the fifth locks the inquiry
	// for good, its own code included; a new inquiry works.
	var guesses []step
	for i := 1; i < store.MaxInquiryAttempts; i++ {
		code := fmt.Sprintf("WRONG-%05d", i)
		guesses = append(guesses, step{name: fmt.Sprintf("guess %d", i), date: "2026-11-22", req: request(guessed, withCode(inqGuessed, code, cardLater), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.inquiry_code", "R-A2",
				[]string{"does not match", fmt.Sprintf("%d of %d attempts left", store.MaxInquiryAttempts-i, store.MaxInquiryAttempts)}}}})
	}
	guesses = append(guesses,
		step{name: "the last guess locks the inquiry", req: request(guessed, withCode(inqGuessed, "WRONG-LAST", cardLater), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.inquiry_code", "R-A2", []string{"does not match", "now locked"}}}},
		step{name: "the right code on the locked inquiry", req: request(guessed, withCode(inqGuessed, inqGuessed.Code, cardLater), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.inquiry_code", "R-A2", []string{"locked after", "OpenInquiry"}}}},
		step{name: "a new inquiry after the lock", req: request(guessed, withCode(inqAgain, inqAgain.Code, cardLater), auth(holderKeys.csr(t))),
			expiry: []string{"2031-09-09"}},
	)

	h.run(t, append([]step{
		{name: "PROXY without an inquiry", req: request(a, application(proxy, cardLater), auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"application.inquiry_code", "R-A2", []string{"OpenInquiry"}}}},
		{name: "PROXY with a code but no inquiry id",
			req:  request(a, &cav1.Application{ApplicantKind: proxy, InquiryCode: inqA.Code, CardExpiry: cardLater}, auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"application.inquiry_code", "R-A2", nil}}},
		{name: "SELF with an inquiry", req: request(a, &cav1.Application{ApplicantKind: self, InquiryId: inqA.InquiryId,
			InquiryCode: inqA.Code, CardExpiry: cardLater}, auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"application.inquiry_code", "R-A2", []string{"only for PROXY"}}}},
		{name: "wrong code", req: request(a, withCode(inqA, string(wrong), cardLater), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.inquiry_code", "R-A2", nil}}},
		{name: "inquiry of another holder", req: request(a, withCode(inqB, inqB.Code, cardLater), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.inquiry_code", "R-A2", nil}}},
		{name: "right code, card already expired", req: request(a, withCode(inqA, inqA.Code, "2026-11-20"), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.card_expiry", "R-V5", nil}}},
		{name: "right code", req: request(a, withCode(inqA, inqA.Code, cardLater), auth(holderKeys.csr(t))),
			expiry: []string{"2031-05-05"}, check: keep(&first)},
		{name: "same code again for another profile", req: request(a, withCode(inqA, inqA.Code, cardLater), sign(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.inquiry_code", "R-A2", nil}}},
		{name: "another holder's own inquiry is still unused", req: request(b, withCode(inqB, inqB.Code, cardLater),
			sign(holderKeys.csr(t)), auth(holderKeys.csr(t))), expiry: []string{"2031-06-06", "2031-06-06"}},
		{name: "29 days after the inquiry", date: "2026-12-20",
			req:    request(inTime, withCode(inqInTime, inqInTime.Code, cardLater), auth(holderKeys.csr(t))),
			expiry: []string{"2031-08-08"}},
		{name: "31 days after the inquiry", date: "2026-12-22",
			req:  request(late, withCode(inqLate, inqLate.Code, cardLater), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"application.inquiry_code", "R-A2", nil}}},
	}, guesses...))

	t.Run("inquiry records its certificate", func(t *testing.T) {
		if len(first.certs) != 1 {
			t.Skip("nothing issued with the inquiry")
		}
		inq, err := h.store.Inquiry(inqA.InquiryId)
		if err != nil {
			t.Fatal(err)
		}
		if inq.UsedAt == nil || len(inq.UsedBy) != 1 || first.x509[0].SerialNumber.Cmp(bigOf(inq.UsedBy[0])) != 0 {
			t.Errorf("inquiry used at %v by %x, want by %s", inq.UsedAt, inq.UsedBy, first.certs[0].Serial)
		}
	})
}

// R-A3: no SIGN under 15 on the issuance date (Feb 29 births reach 15 on
// Mar 1 in non-leap years, R-V2) or for an adult ward; AUTH is fine.
func TestSignAge(t *testing.T) {
	t.Parallel()
	h := start(t, tokenAge, options{})
	fourteen := resident("a3-fourteen", "2011-11-22") // 15 tomorrow
	fifteen := resident("a3-fifteen", "2011-11-21")   // 15 today
	ward := adultWard("a3-ward", "1960-02-02")
	leap := resident("a3-leap", "2012-02-29")
	h.run(t, []step{
		{name: "SIGN the day before the 15th birthday", req: request(fourteen, application(legal, "2031-11-22"), sign(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"holder.date_of_birth", "R-A3", []string{"under 15", "2026-11-21"}}}},
		{name: "SIGN the day before the 15th birthday, SELF", req: request(fourteen, application(self, "2031-11-22"), sign(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"holder.date_of_birth", "R-A3", nil}, {"application.applicant_kind", "R-A1", nil}}},
		{name: "AUTH the day before the 15th birthday", req: request(fourteen, application(legal, "2031-11-22"), auth(holderKeys.csr(t))),
			expiry: []string{"2030-11-22"}}, // the first birthday after is tomorrow
		{name: "SIGN on the 15th birthday", req: request(fifteen, application(self, "2031-11-21"), sign(holderKeys.csr(t))),
			expiry: []string{"2031-11-21"}},
		{name: "SIGN the next day, capped by the AUTH", date: "2026-11-22",
			req:    request(fourteen, application(self, "2031-11-22"), sign(holderKeys.csr(t))),
			expiry: []string{"2030-11-22"}, check: because("AUTH")},
		{name: "adult ward SIGN", req: request(ward, application(legal, cardLater), sign(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"holder.adult_ward", "R-A3", []string{"adult ward"}}}},
		{name: "adult ward SIGN, SELF", req: request(ward, application(self, cardLater), sign(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"holder.adult_ward", "R-A3", nil}, {"application.applicant_kind", "R-A1", nil}}},
		{name: "adult ward AUTH", req: request(ward, application(legal, cardLater), auth(holderKeys.csr(t))),
			expiry: []string{"2031-02-02"}},
		{name: "Feb 29 birth on Feb 28 of the 15th year", date: "2027-02-28",
			req:  request(leap, application(legal, "2032-02-29"), sign(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"holder.date_of_birth", "R-A3", []string{"2027-02-28"}}}},
		{name: "Feb 29 birth on Mar 1 of the 15th year", date: "2027-03-01",
			req:    request(leap, application(self, "2032-02-29"), sign(holderKeys.csr(t))),
			expiry: []string{"2032-02-29"}},
	})
}

// R-A4: no second valid certificate of a profile; after expiry a new one.
func TestDoubleIssuance(t *testing.T) {
	t.Parallel()
	h := start(t, tokenDouble, options{})
	holder := resident("a4-holder", "1985-07-07")
	const card = "2027-01-31"
	h.run(t, []step{
		{name: "SIGN and AUTH", req: request(holder, application(self, card), sign(holderKeys.csr(t)), auth(holderKeys.csr(t))),
			expiry: []string{card, card}, check: because("card")},
		{name: "SIGN again", req: request(holder, application(self, card), sign(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-A4", []string{"SIGN", "renew"}}}},
		{name: "AUTH again", req: request(holder, application(self, card), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-A4", []string{"AUTH"}}}},
		{name: "both again", req: request(holder, application(self, card), auth(holderKeys.csr(t)), sign(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-A4", nil}, {"profiles[1].profile", "R-A4", nil}}},
		{name: "SIGN again on the expiry date", date: card, req: request(holder, application(self, cardLater), sign(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-A4", nil}}},
		{name: "SIGN and AUTH the day after expiry", date: "2027-02-01",
			req:    request(holder, application(self, cardLater), sign(holderKeys.csr(t)), auth(holderKeys.csr(t))),
			expiry: []string{"2031-07-07", "2031-07-07"}},
		{name: "SIGN and AUTH once more", req: request(holder, application(self, cardLater), sign(holderKeys.csr(t)), auth(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].profile", "R-A4", nil}, {"profiles[1].profile", "R-A4", nil}}},
	})
}

// R-A5: SIGN and AUTH together, both or neither, each once.
func TestIssueTogether(t *testing.T) {
	t.Parallel()
	h := start(t, tokenTogether, options{})
	child := resident("a5-child", "2014-05-05")
	twice := resident("a5-twice", "1975-03-03")
	firstKey := holderKeys.csr(t)
	sameKey := holderKeys.csr(t)
	h.run(t, []step{
		{name: "SIGN refused, so AUTH is not issued", req: request(child, application(legal, "2031-05-05"), auth(holderKeys.csr(t)), sign(holderKeys.csr(t))),
			code: codes.FailedPrecondition, want: []violation{{"holder.date_of_birth", "R-A3", []string{"profiles[1]"}}}},
		{name: "AUTH alone", req: request(child, application(legal, "2031-05-05"), auth(holderKeys.csr(t))),
			expiry: []string{"2031-05-05"}},
		{name: "same profile twice", req: request(twice, application(self, cardLater), auth(holderKeys.csr(t)), auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"profiles[1].profile", "R-A5", []string{"twice"}}}},
		{name: "no profile", req: request(twice, application(self, cardLater)),
			code: codes.InvalidArgument, want: []violation{{"profiles", "R-A5", nil}}},
		{name: "three profiles", req: request(twice, application(self, cardLater), sign(holderKeys.csr(t)), auth(holderKeys.csr(t)), sign(holderKeys.csr(t))),
			// Refused whole by the count, before any profile is looked at (ca/limits.go).
			code: codes.InvalidArgument, want: []violation{{"profiles", "R-A5", []string{"at most 2"}}}},
		{name: "unspecified profile", req: request(twice, application(self, cardLater), &cav1.ProfileRequest{Csr: holderKeys.csr(t)}),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].profile", "R-A5", nil}}},
		{name: "one key for both", req: request(twice, application(self, cardLater), sign(sameKey), auth(sameKey)),
			code: codes.InvalidArgument, want: []violation{{"profiles[1].csr", "R-P1", nil}}},
		{name: "AUTH for another holder", req: request(resident("a5-first", "1975-03-03"), application(self, cardLater), auth(firstKey)),
			expiry: []string{"2031-03-03"}},
		{name: "AUTH key already certified, so SIGN is not issued", req: request(twice, application(self, cardLater), sign(holderKeys.csr(t)), auth(firstKey)),
			code: codes.FailedPrecondition, want: []violation{{"profiles[1].csr", "R-P1", nil}}},
		{name: "SIGN and AUTH together", req: request(twice, application(self, cardLater), sign(holderKeys.csr(t)), auth(holderKeys.csr(t))),
			expiry: []string{"2031-03-03", "2031-03-03"}, check: func(t *testing.T, out issued) {
				if out.x509[0].NotAfter.After(out.x509[1].NotAfter) {
					t.Errorf("SIGN outlives AUTH (R-V5)")
				}
				if !out.x509[0].NotBefore.Equal(out.x509[1].NotBefore) {
					t.Errorf("issued together at different times: %v, %v", out.x509[0].NotBefore, out.x509[1].NotBefore)
				}
			}},
		{name: "SIGN and AUTH capped by the card", req: request(resident("a5-card", "1970-01-15"), application(self, "2029-09-30"),
			auth(holderKeys.csr(t)), sign(holderKeys.csr(t))),
			expiry: []string{"2029-09-30", "2029-09-30"}, check: because("card")},
	})
}

// R-P1 (card keys), R-P4 (holder ids), R-V8 (blocked keys).
func TestHolderKeys(t *testing.T) {
	t.Parallel()
	h := start(t, tokenKeys, options{})
	holder := resident("p1-holder", "1979-10-10")
	app := application(self, cardLater)
	issuedKey := holderKeys.csr(t)

	// A key reported lost: blocked before it was ever certified.
	blockedKey := holderKeys.csr(t)
	holderKeys.certified(t, blockedKey) // it must never come back to the pool
	err := h.store.BlockKey(&storev1.BlockedKey{PublicKeySha256: spkiHash(t, blockedKey),
		BlockedAt: timestamppb.New(h.clock.Now()), Cause: "loss report"})
	if err != nil {
		t.Fatal(err)
	}
	blocked := resident("p1-blocked", "1979-10-10")

	h.run(t, []step{
		{name: "signature does not verify", req: request(holder, app, auth(tampered(holderKeys.csr(t)))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", []string{"signature"}}}},
		{name: "second request's signature does not verify", req: request(holder, app, auth(holderKeys.csr(t)), sign(tampered(holderKeys.csr(t)))),
			code: codes.InvalidArgument, want: []violation{{"profiles[1].csr", "R-P1", []string{"signature"}}}},
		{name: "not a PKCS#10 request", req: request(holder, app, auth([]byte("-----BEGIN CERTIFICATE REQUEST-----"))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", nil}}},
		{name: "no request", req: request(holder, app, auth(nil)),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", nil}}},
		{name: "RSA-1024", req: request(holder, app, auth(rsa1024CSR(t))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", []string{"1024"}}}},
		{name: "ECDSA P-256 not enabled", req: request(holder, app, auth(ecdsaCSR(t, elliptic.P256()))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", []string{"ECDSA"}}}},
		{name: "Ed25519", req: request(holder, app, auth(ed25519CSR(t))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", nil}}},
		{name: "12-digit holder id", req: request(resident("123456789012", "1979-10-10"), app, auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.holder_id", "R-P4", []string{"individual number"}}}},
		{name: "holder id with a space", req: request(resident("p1 holder", "1979-10-10"), app, auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.holder_id", "R-P4", nil}}},
		{name: "RSA-2048", req: request(holder, app, auth(issuedKey)), expiry: []string{"2031-10-10"}},
		{name: "key certified for another holder", req: request(resident("p1-other", "1979-10-10"), app, auth(issuedKey)),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].csr", "R-P1", []string{"already certified"}}}},
		{name: "key certified for the other profile", req: request(holder, app, sign(issuedKey)),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].csr", "R-P1", nil}}},
		{name: "blocked key", req: request(blocked, app, auth(blockedKey)),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].csr", "R-V8", []string{"lost or compromised"}}}},
		{name: "blocked key for the second profile", req: request(blocked, app, auth(holderKeys.csr(t)), sign(blockedKey)),
			code: codes.FailedPrecondition, want: []violation{{"profiles[1].csr", "R-V8", nil}}},
	})
}

// R-P1: ECDSA P-256 card keys when the CA is configured for them.
func TestECDSAP256Keys(t *testing.T) {
	t.Parallel()
	h := start(t, tokenKeysP256, options{allowP256: true})
	app := application(self, cardLater)
	h.run(t, []step{
		{name: "ECDSA P-384", req: request(resident("p1-p384", "1979-10-10"), app, auth(ecdsaCSR(t, elliptic.P384()))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", []string{"P-256"}}}},
		{name: "ECDSA P-256", req: request(resident("p1-p256", "1979-10-10"), app, sign(ecdsaCSR(t, elliptic.P256())), auth(ecdsaCSR(t, elliptic.P256()))),
			expiry: []string{"2031-10-10", "2031-10-10"}},
		{name: "RSA-2048 still", req: request(resident("p1-rsa", "1979-10-10"), app, auth(holderKeys.csr(t))),
			expiry: []string{"2031-10-10"}},
	})
}

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

// R-P5: characters outside JIS X 0208/0212 are refused unless substituted;
// the substitution map marks them.
func TestCharacters(t *testing.T) {
	t.Parallel()
	h := start(t, tokenCharacters, options{})
	const born = "1980-03-15"
	app := application(self, cardLater)
	takahashi := named("p5-takahashi", born, "髙橋", "一郎")
	yoshio := named("p5-yoshio", born, "田中", "𠮷男")
	address := resident("p5-address", born)
	address.Address = "東京都清瀬市髙田一丁目１番"
	subs := func(req *cav1.IssueRequest, name, addr []*cav1.Substitution) *cav1.IssueRequest {
		req.NameSubstitutions, req.AddressSubstitutions = name, addr
		return req
	}
	sub := func(pos uint32, char string) []*cav1.Substitution {
		return []*cav1.Substitution{{Position: pos, Character: char}}
	}
	// signed checks the SIGN certificate's name or address and its
	// substitution map.
	signed := func(oid, mapOID string, text, smap string) func(*testing.T, issued) {
		return func(t *testing.T, out issued) {
			values := map[string]string{}
			for _, n := range otherNames(t, out.x509[0]) {
				values[n.oid.String()] = n.value
			}
			if values[oid] != text || values[mapOID] != smap {
				t.Errorf("certificate has %q with map %q, want %q with map %q", values[oid], values[mapOID], text, smap)
			}
		}
	}

	h.run(t, []step{
		{name: "髙 in the surname", req: request(takahashi, app, sign(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.surname", "R-P5", []string{"髙", "U+9AD9", "position 0", "高"}}}},
		{name: "﨑 in the surname", req: request(named("p5-yamasaki", born, "山﨑", "花子"), app, sign(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.surname", "R-P5", []string{"﨑", "U+FA11", "position 1", "崎"}}}},
		{name: "𠮷 in the given name", req: request(yoshio, app, sign(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.given_name", "R-P5", []string{"𠮷", "U+20BB7", "position 0", "position 3 in name_substitutions", "吉"}}}},
		{name: "two characters", req: request(named("p5-two", born, "髙﨑", "一郎"), app, sign(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{
				{"holder.surname", "R-P5", []string{"髙", "position 0"}}, {"holder.surname", "R-P5", []string{"﨑", "position 1"}}}},
		{name: "髙 in the address", req: request(address, app, sign(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.address", "R-P5", []string{"髙", "position 6"}}}},
		{name: "substitute out of range", req: subs(request(takahashi, app, sign(holderKeys.csr(t))), sub(5, "高"), nil),
			code: codes.InvalidArgument, want: []violation{{"name_substitutions[0].position", "R-P5", nil}, {"holder.surname", "R-P5", nil}}},
		{name: "substitute of two characters", req: subs(request(takahashi, app, sign(holderKeys.csr(t))), sub(0, "高木"), nil),
			code: codes.InvalidArgument, want: []violation{{"name_substitutions[0].character", "R-P5", nil}, {"holder.surname", "R-P5", nil}}},
		{name: "substitute outside JIS X 0208/0212", req: subs(request(takahashi, app, sign(holderKeys.csr(t))), sub(0, "﨑"), nil),
			code: codes.InvalidArgument, want: []violation{{"name_substitutions", "R-P5", nil}}},
		{name: "AUTH carries no name", req: request(takahashi, app, auth(holderKeys.csr(t))), expiry: []string{"2031-03-15"}},
		{name: "JIS X 0208 level 2 and JIS X 0212", req: request(named("p5-watanabe", born, "渡邊", "鷗外"), app, sign(holderKeys.csr(t))),
			expiry: []string{"2031-03-15"}},
		{name: "齋藤", req: request(named("p5-saito", born, "齋藤", "健"), app, sign(holderKeys.csr(t))), expiry: []string{"2031-03-15"}},
		{name: "高 for 髙", req: subs(request(takahashi, app, sign(holderKeys.csr(t))), sub(0, "高"), nil),
			check: signed(oidName.String(), oidNameMap.String(), "高橋\u3000一郎", "10000")},
		{name: "吉 for 𠮷", req: subs(request(yoshio, app, sign(holderKeys.csr(t))), sub(3, "吉"), nil),
			check: signed(oidName.String(), oidNameMap.String(), "田中\u3000吉男", "00010")},
		{name: "高 for 髙 in the address", req: subs(request(address, app, sign(holderKeys.csr(t))), nil, sub(6, "高")),
			check: all(
				signed(oidAddress.String(), oidAddressMap.String(), "東京都清瀬市高田一丁目１番", "0000001000000"),
				signed(oidName.String(), oidNameMap.String(), "山田\u3000太郎", "00000"))},
	})

	cases := []struct {
		text     string
		ok       bool
		offences []*cav1.Offence
	}{
		{"髙橋\u3000一郎", false, []*cav1.Offence{{Position: 0, Character: "髙", CodePoint: "U+9AD9", Suggestions: []string{"高"}}}},
		{"山﨑\u3000花子", false, []*cav1.Offence{{Position: 1, Character: "﨑", CodePoint: "U+FA11", Suggestions: []string{"崎"}}}},
		{"田中\u3000𠮷男", false, []*cav1.Offence{{Position: 3, Character: "𠮷", CodePoint: "U+20BB7", Suggestions: []string{"吉"}}}},
		{"渡邊\u3000鷗外", true, nil},
		{"東京都清瀬市中里五丁目１２番地", true, nil},
	}
	for _, tc := range cases {
		t.Run("CheckCharacters "+tc.text, func(t *testing.T) {
			resp, err := h.client.CheckCharacters(context.Background(), &cav1.CheckCharactersRequest{Text: tc.text})
			if err != nil {
				t.Fatal(describe(err))
			}
			if resp.Ok != tc.ok || len(resp.Offences) != len(tc.offences) {
				t.Fatalf("ok %v, offences %v; want ok %v, %v", resp.Ok, resp.Offences, tc.ok, tc.offences)
			}
			for i, o := range resp.Offences {
				w := tc.offences[i]
				if o.Position != w.Position || o.Character != w.Character || o.CodePoint != w.CodePoint || !slices.Equal(o.Suggestions, w.Suggestions) {
					t.Errorf("offence %v, want %v", o, w)
				}
			}
		})
	}
	t.Run("CheckCharacters empty", func(t *testing.T) {
		_, err := h.client.CheckCharacters(context.Background(), &cav1.CheckCharactersRequest{})
		checkRefusal(t, err, codes.InvalidArgument, []violation{{"text", "R-P5", nil}})
	})
}

// R-V6: statuses, look-ups, newest first.
func TestLookup(t *testing.T) {
	t.Parallel()
	h := start(t, tokenLookup, options{})
	holder := resident("v6-holder", "1980-03-15")
	var authOld, signShort, authNew issued
	h.run(t, []step{
		{name: "AUTH", req: request(holder, application(self, cardLater), auth(holderKeys.csr(t))),
			expiry: []string{"2031-03-15"}, check: keep(&authOld)},
		{name: "SIGN a day later, with a short card", date: "2026-11-22", req: request(holder, application(self, "2027-01-31"), sign(holderKeys.csr(t))),
			expiry: []string{"2027-01-31"}, check: keep(&signShort)},
	})
	if len(signShort.certs) == 0 {
		return
	}
	statusAt := func(t *testing.T, when time.Time, serial string, want cav1.Status) *cav1.Certificate {
		t.Helper()
		h.clock.set(when)
		got := h.get(t, serial)
		if got.Status != want {
			t.Errorf("at %v: %s is %v, want %v", when, serial, got.Status, want)
		}
		return got
	}

	t.Run("GetCertificate", func(t *testing.T) {
		got := statusAt(t, time.Date(2027, 1, 31, 23, 59, 59, 0, jst), signShort.certs[0].Serial, cav1.Status_STATUS_VALID)
		if string(got.Der) != string(signShort.certs[0].Der) || got.Pem != signShort.certs[0].Pem {
			t.Error("GetCertificate returns another DER or PEM than Issue")
		}
		if got.ExpiryDate != "2027-01-31" || got.HolderId != holder.HolderId || got.MunicipalityCode != kiyose.Code ||
			got.Profile != signProfile || got.RevokedAt != "" || got.RevocationReason != "" || got.SupersededBy != "" {
			t.Errorf("GetCertificate %+v", got)
		}
	})
	t.Run("EXPIRED from midnight after the expiry date", func(t *testing.T) {
		statusAt(t, time.Date(2027, 2, 1, 0, 0, 0, 0, jst), signShort.certs[0].Serial, cav1.Status_STATUS_EXPIRED)
		statusAt(t, time.Date(2027, 2, 1, 0, 0, 0, 0, jst), authOld.certs[0].Serial, cav1.Status_STATUS_VALID)
	})
	t.Run("serial in capitals with leading zeros", func(t *testing.T) {
		if got := h.get(t, "00"+strings.ToUpper(authOld.certs[0].Serial)); got.Serial != authOld.certs[0].Serial {
			t.Errorf("got %s", got.Serial)
		}
	})
	t.Run("unknown serial", func(t *testing.T) {
		_, err := h.client.GetCertificate(context.Background(), &cav1.GetCertificateRequest{Serial: "5eed0123456789abcdef"})
		checkRefusal(t, err, codes.NotFound, []violation{{"serial", "R-P1", nil}})
	})
	t.Run("serial that is not hex", func(t *testing.T) {
		_, err := h.client.GetCertificate(context.Background(), &cav1.GetCertificateRequest{Serial: "not-a-serial"})
		checkRefusal(t, err, codes.InvalidArgument, []violation{{"serial", "R-P1", nil}})
	})

	h.run(t, []step{
		{name: "renew AUTH", date: "2030-12-16", renew: true, req: request(holder, application(self, cardLater), auth(holderKeys.csr(t))),
			expiry: []string{"2036-03-15"}, check: all(h.supersedes(&authOld), keep(&authNew))},
	})
	if len(authNew.certs) == 0 {
		return
	}
	t.Run("ListCertificates newest first", func(t *testing.T) {
		got := h.list(t, holder.HolderId)
		want := []string{
			authNew.certs[0].Serial + " STATUS_VALID",
			signShort.certs[0].Serial + " STATUS_EXPIRED",
			authOld.certs[0].Serial + " STATUS_REVOKED superseded by " + authNew.certs[0].Serial,
		}
		if !slices.Equal(summary(got), want) {
			t.Errorf("list\n%q\nwant\n%q", summary(got), want)
		}
		for _, c := range got {
			if len(c.Der) != 0 || c.Pem != "" {
				t.Errorf("list carries the DER of %s", c.Serial)
			}
		}
	})
	t.Run("ListCertificates of a holder without certificates", func(t *testing.T) {
		if got := h.list(t, "v6-nobody"); len(got) != 0 {
			t.Errorf("list %v", summary(got))
		}
	})
	t.Run("ListCertificates with a 12-digit holder id", func(t *testing.T) {
		_, err := h.client.ListCertificates(context.Background(), &cav1.ListCertificatesRequest{MunicipalityCode: kiyose.Code, HolderId: "123456789012"})
		checkRefusal(t, err, codes.InvalidArgument, []violation{{"holder_id", "R-P4", nil}})
	})
}

// bigOf reads a serial as the store keeps it.
func bigOf(serial []byte) *big.Int { return new(big.Int).SetBytes(serial) }

// summary renders listed certificates for messages.
func summary(certs []*cav1.Certificate) []string {
	var out []string
	for _, c := range certs {
		s := c.Serial + " " + c.Status.String()
		if c.RevocationReason != "" {
			s += " " + c.RevocationReason + " by " + c.SupersededBy
		}
		out = append(out, s)
	}
	return out
}
