package service_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/ca/store"
)

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
