package ca

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/validity"
)

// planCase is one Issue or Renew request and what the issuance plan makes
// of it: the certificates, with their expiry and its reason, or the
// refusal.
type planCase struct {
	name     string
	date     string // of the request, at 10:00 JST; ceremonyDay when empty
	profiles []Profile
	// before runs earlier requests on the CA, and may change the request.
	before func(t *testing.T, c *testCA, req *IssueRequest)
	edit   func(req *IssueRequest)
	want   []wantCert // in request order
	// refused is the refusal when the request must be refused.
	refused *refusal
	// check looks further at what was issued.
	check func(t *testing.T, out *Issued)
}

type wantCert struct {
	profile        Profile
	expiry, reason string
}

const (
	reasonV1         = "5th birthday after issuance (R-V1)"
	reasonCard       = "card expiry (R-V5)"
	reasonAuth       = "AUTH certificate expiry (R-V5)"
	reasonRenewal    = "6th birthday after renewal (R-V4)"
	reasonOnExpiry   = "5th birthday after renewal on the expiry date (R-V4)"
	renewalCardLater = "2040-01-01"
)

// issuedBefore issues profiles to the holder on date, the card expiring on
// card ("" for the default, 2035-06-15).
func issuedBefore(date, card string, profiles ...Profile) func(*testing.T, *testCA, *IssueRequest) {
	return func(t *testing.T, c *testCA, _ *IssueRequest) {
		req := request(t, profiles...)
		req.Application.CardExpiry = cmp.Or(card, req.Application.CardExpiry)
		c.mustIssue(t, date, false, req)
	}
}

func TestIssuePlan(t *testing.T) {
	sign, auth := ProfileSign, ProfileAuth
	refuse := func(kind Kind, field, rule, says string) *refusal { return &refusal{kind, field, rule, says} }
	runPlanCases(t, false, []planCase{
		{name: "SIGN and AUTH: 5th birthday after issuance (R-V1)", profiles: []Profile{sign, auth},
			want: []wantCert{{sign, "2031-06-15", reasonV1}, {auth, "2031-06-15", reasonV1}}},
		{name: "a birthday on the issuance date does not count (R-V1)", date: "2027-06-15", profiles: []Profile{auth},
			want: []wantCert{{auth, "2032-06-15", reasonV1}}},
		{name: "Feb 29 birthday: Feb 28 in a non-leap year (R-V2)", profiles: []Profile{auth},
			edit: func(r *IssueRequest) { r.Holder.DateOfBirth = "2000-02-29" },
			want: []wantCert{{auth, "2031-02-28", reasonV1}}},
		{name: "capped by the card (R-V5)", profiles: []Profile{auth, sign},
			edit: func(r *IssueRequest) { r.Application.CardExpiry = "2029-01-10" },
			want: []wantCert{{auth, "2029-01-10", reasonCard}, {sign, "2029-01-10", reasonCard}}},
		{name: "SIGN capped by the holder's AUTH (R-V5)", profiles: []Profile{sign},
			before: issuedBefore(ceremonyDay, "2028-03-01", auth),
			want:   []wantCert{{sign, "2028-03-01", reasonAuth}}},
		{name: "an AUTH expiring today leaves SIGN nothing (R-V5)", date: "2027-01-10", profiles: []Profile{sign},
			before:  issuedBefore(ceremonyDay, "2027-01-10", auth),
			refused: refuse(KindPrecondition, "profiles[0].profile", "R-V5", "by the auth")},
		{name: "the card expires today (R-V5)", profiles: []Profile{auth},
			edit:    func(r *IssueRequest) { r.Application.CardExpiry = ceremonyDay },
			refused: refuse(KindPrecondition, "application.card_expiry", "R-V5", "the card expires on "+ceremonyDay)},
		{name: "beyond the issuer's validity (R-V7)", date: "2032-01-05", profiles: []Profile{auth},
			edit:    func(r *IssueRequest) { r.Holder.DateOfBirth, r.Application.CardExpiry = "1990-12-01", "2040-01-01" },
			refused: refuse(KindPrecondition, "profiles[0].profile", "R-V7", "2036-12-01, after its issuer")},

		{name: "double issuance (R-A4)", profiles: []Profile{auth},
			before:  issuedBefore(ceremonyDay, "", auth),
			refused: refuse(KindPrecondition, "profiles[0].profile", "R-A4", "renew it instead")},
		{name: "double issuance inside the renewal window (R-A4)", date: "2031-04-01", profiles: []Profile{sign, auth},
			before:  issuedBefore(ceremonyDay, "", auth),
			refused: refuse(KindPrecondition, "profiles[1].profile", "R-A4", "already has a valid AUTH")},
		{name: "the other profile is no double issuance (R-A4)", profiles: []Profile{sign},
			before: issuedBefore(ceremonyDay, "", auth),
			want:   []wantCert{{sign, "2031-06-15", reasonV1}}},
		{name: "a revoked certificate is no double issuance (R-A4)", profiles: []Profile{auth},
			before: revokedBefore(auth),
			want:   []wantCert{{auth, "2031-06-15", reasonV1}}},
		{name: "an expired certificate is no double issuance (R-A4)", date: "2027-01-11", profiles: []Profile{auth},
			before: issuedBefore(ceremonyDay, "2027-01-10", auth),
			want:   []wantCert{{auth, "2031-06-15", reasonV1}}},

		{name: "under 15: no SIGN (R-A3)", profiles: []Profile{sign},
			edit: func(r *IssueRequest) {
				r.Holder.DateOfBirth, r.Application.Kind = "2015-03-01", ApplicantLegalRepresentative
			},
			refused: refuse(KindPrecondition, "holder.date_of_birth", "R-A3", "under 15")},
		{name: "under 15: the legal representative applies (R-A1)", profiles: []Profile{auth},
			edit:    func(r *IssueRequest) { r.Holder.DateOfBirth = "2015-03-01" },
			refused: refuse(KindPrecondition, "application.applicant_kind", "R-A1", "under 15")},
		{name: "under 15: AUTH by the legal representative", profiles: []Profile{auth},
			edit: func(r *IssueRequest) {
				r.Holder.DateOfBirth, r.Application.Kind = "2015-03-01", ApplicantLegalRepresentative
			},
			want: []wantCert{{auth, "2031-03-01", reasonV1}}},
		{name: "15 on the issuance date: SIGN (R-A3)", profiles: []Profile{sign},
			edit: func(r *IssueRequest) { r.Holder.DateOfBirth = "2011-11-21" },
			want: []wantCert{{sign, "2031-11-21", reasonV1}}},
		{name: "15 tomorrow: no SIGN (R-A3)", profiles: []Profile{sign},
			edit: func(r *IssueRequest) {
				r.Holder.DateOfBirth, r.Application.Kind = "2011-11-22", ApplicantLegalRepresentative
			},
			refused: refuse(KindPrecondition, "holder.date_of_birth", "R-A3", "")},
		{name: "Feb 29: 15 on Mar 1 of a non-leap year (R-V2, R-A3)", date: "2027-03-01", profiles: []Profile{sign},
			edit: func(r *IssueRequest) { r.Holder.DateOfBirth = "2012-02-29" },
			want: []wantCert{{sign, "2032-02-29", reasonV1}}},
		{name: "Feb 29: still 14 on Feb 28 of a non-leap year (R-V2, R-A3)", date: "2027-02-28", profiles: []Profile{sign},
			edit: func(r *IssueRequest) {
				r.Holder.DateOfBirth, r.Application.Kind = "2012-02-29", ApplicantLegalRepresentative
			},
			refused: refuse(KindPrecondition, "holder.date_of_birth", "R-A3", "")},
		{name: "adult ward: no SIGN (R-A3)", profiles: []Profile{auth, sign},
			edit:    func(r *IssueRequest) { r.Holder.AdultWard, r.Application.Kind = true, ApplicantLegalRepresentative },
			refused: refuse(KindPrecondition, "holder.adult_ward", "R-A3", "profiles[1]")},
		{name: "adult ward: the legal representative applies (R-A1)", profiles: []Profile{auth},
			edit:    func(r *IssueRequest) { r.Holder.AdultWard = true },
			refused: refuse(KindPrecondition, "application.applicant_kind", "R-A1", "adult ward")},

		{name: "PROXY needs an inquiry (R-A2)", profiles: []Profile{auth},
			edit:    func(r *IssueRequest) { r.Application.Kind = ApplicantProxy },
			refused: refuse(KindInvalid, "application.inquiry_code", "R-A2", "OpenInquiry")},
		{name: "an inquiry is only for PROXY (R-A2)", profiles: []Profile{auth},
			edit:    func(r *IssueRequest) { r.Application.InquiryID, r.Application.InquiryCode = "INQ-1", "ABCDE-FGHIJ" },
			refused: refuse(KindInvalid, "application.inquiry_code", "R-A2", "only for PROXY")},
		{name: "PROXY with the mailed code (R-A2)", profiles: []Profile{auth},
			before: proxy(ceremonyDay, false),
			want:   []wantCert{{auth, "2031-06-15", reasonV1}}},
		{name: "PROXY with a wrong code (R-A2)", profiles: []Profile{auth},
			before:  proxy(ceremonyDay, true),
			refused: refuse(KindPrecondition, "application.inquiry_code", "R-A2", "does not match")},
		{name: "PROXY after 30 days (R-A2)", date: "2026-12-22", profiles: []Profile{auth},
			before:  proxy(ceremonyDay, false),
			refused: refuse(KindPrecondition, "application.inquiry_code", "R-A2", "expired after 30 days")},
		{name: "PROXY with a used code (R-A2)", profiles: []Profile{sign},
			before: func(t *testing.T, c *testCA, req *IssueRequest) {
				proxy(ceremonyDay, false)(t, c, req)
				first := request(t, ProfileAuth)
				first.Application = req.Application
				c.mustIssue(t, ceremonyDay, false, first)
			},
			refused: refuse(KindPrecondition, "application.inquiry_code", "R-A2", "")},

		{name: "a vendor character needs a substitute (R-P5)", profiles: []Profile{sign},
			edit:    func(r *IssueRequest) { r.Holder.Surname = "髙橋" },
			refused: refuse(KindInvalid, "holder.surname", "R-P5", "U+9AD9")},
		{name: "a vendor character with its substitute (R-P5)", profiles: []Profile{sign},
			edit: func(r *IssueRequest) {
				r.Holder.Surname, r.NameSubstitutions = "髙橋", []Substitution{{Position: 0, Character: "高"}}
			},
			want: []wantCert{{sign, "2031-06-15", reasonV1}},
			check: func(t *testing.T, out *Issued) {
				der := out.Certificates[0].Der
				if !bytes.Contains(der, []byte("高橋\u3000花子")) || bytes.Contains(der, []byte("髙")) {
					t.Error("the certificate does not carry the substitute in place of the vendor character")
				}
			}},
		{name: "a JIS X 0213 character in the address (R-P5)", profiles: []Profile{sign},
			edit:    func(r *IssueRequest) { r.Holder.Address = "東京都清瀬市中里𠮷８４２番地" },
			refused: refuse(KindInvalid, "holder.address", "R-P5", "U+20BB7")},
		{name: "AUTH carries no personal data, so needs no JIS check (R-P3)", profiles: []Profile{auth},
			edit: func(r *IssueRequest) { r.Holder.Surname = "髙橋" },
			want: []wantCert{{auth, "2031-06-15", reasonV1}}},

		{name: "no profile (R-A5)",
			refused: refuse(KindInvalid, "profiles", "R-A5", "SIGN, AUTH or both")},
		{name: "a profile twice (R-A5)", profiles: []Profile{auth, auth},
			refused: refuse(KindInvalid, "profiles[1].profile", "R-A5", "twice")},
		{name: "municipality code (R-R5)", profiles: []Profile{auth},
			edit:    func(r *IssueRequest) { r.Municipality.Code = "1322" },
			refused: refuse(KindInvalid, "municipality.code", "R-R5", "5-digit")},
		{name: "a holder id like an individual number (R-P4)", profiles: []Profile{auth},
			edit:    func(r *IssueRequest) { r.Holder.ID = "123456789012" },
			refused: refuse(KindInvalid, "holder.holder_id", "R-P4", "individual number")},
		{name: "born in the future (R-V1)", profiles: []Profile{auth},
			edit:    func(r *IssueRequest) { r.Holder.DateOfBirth = "2027-01-01" },
			refused: refuse(KindInvalid, "holder.date_of_birth", "R-V1", "future")},
		{name: "one key for two profiles (R-P1)", profiles: []Profile{sign, auth},
			edit:    func(r *IssueRequest) { r.Profiles[1].CSR = r.Profiles[0].CSR },
			refused: refuse(KindInvalid, "profiles[1].csr", "R-P1", "key of profiles[0]")},
		{name: "a key certified before (R-P1)", profiles: []Profile{auth},
			before:  keyUsedBefore(false),
			refused: refuse(KindPrecondition, "profiles[0].csr", "R-P1", "already certified")},
		{name: "a key reported lost (R-V8)", profiles: []Profile{auth},
			before:  keyUsedBefore(true),
			refused: refuse(KindPrecondition, "profiles[0].csr", "R-V8", "lost or compromised")},
	})
}

func TestRenewPlan(t *testing.T) {
	sign, auth := ProfileSign, ProfileAuth
	refuse := func(kind Kind, field, rule, says string) *refusal { return &refusal{kind, field, rule, says} }
	later := func(r *IssueRequest) { r.Application.CardExpiry = renewalCardLater }
	// The holder's certificates, issued on ceremonyDay, expire on
	// 2031-06-15; the window opens on 2031-03-16 (R-V3).
	runPlanCases(t, true, []planCase{
		{name: "nothing to renew (R-V4)", date: "2031-04-01", profiles: []Profile{auth},
			refused: refuse(KindPrecondition, "profiles[0].profile", "R-V4", "no valid AUTH certificate to renew")},
		{name: "the day before the window (R-V3)", date: "2031-03-15", profiles: []Profile{auth},
			before: issuedBefore(ceremonyDay, "", auth), edit: later,
			refused: refuse(KindPrecondition, "profiles[0].profile", "R-V3", "opens on 2031-03-16")},
		{name: "the window's first day: 6th birthday (R-V3, R-V4)", date: "2031-03-16", profiles: []Profile{auth},
			before: issuedBefore(ceremonyDay, "", auth), edit: later,
			want: []wantCert{{auth, "2036-06-15", reasonRenewal}}},
		{name: "on the expiry date: 5th birthday (R-V4)", date: "2031-06-15", profiles: []Profile{auth},
			before: issuedBefore(ceremonyDay, "", auth), edit: later,
			want: []wantCert{{auth, "2036-06-15", reasonOnExpiry}}},
		{name: "after expiry: a new issuance (R-V4)", date: "2031-06-16", profiles: []Profile{auth},
			before: issuedBefore(ceremonyDay, "", auth), edit: later,
			refused: refuse(KindPrecondition, "profiles[0].profile", "R-V4", "after expiry")},
		{name: "living abroad: a year before (R-V3)", date: "2030-06-16", profiles: []Profile{auth},
			before: issuedBefore(ceremonyDay, "", auth),
			edit:   func(r *IssueRequest) { later(r); r.Holder.LivingAbroad = true },
			want:   []wantCert{{auth, "2036-06-15", reasonRenewal}}},
		{name: "not abroad: a year before is too early (R-V3)", date: "2030-06-16", profiles: []Profile{auth},
			before: issuedBefore(ceremonyDay, "", auth), edit: later,
			refused: refuse(KindPrecondition, "profiles[0].profile", "R-V3", "")},
		{name: "SIGN and AUTH together, capped by the card (R-V5)", date: "2031-04-01", profiles: []Profile{sign, auth},
			before: issuedBefore(ceremonyDay, "", sign, auth),
			want:   []wantCert{{sign, "2035-06-15", reasonCard}, {auth, "2035-06-15", reasonCard}}},
		{name: "SIGN alone, capped by the current AUTH (R-V5)", date: "2031-04-01", profiles: []Profile{sign},
			before: issuedBefore(ceremonyDay, "", sign, auth), edit: later,
			want: []wantCert{{sign, "2031-06-15", reasonAuth}}},
		{name: "a revoked certificate is not renewed (R-V4)", date: "2031-04-01", profiles: []Profile{auth},
			before:  revokedBefore(auth),
			edit:    later,
			refused: refuse(KindPrecondition, "profiles[0].profile", "R-V4", "")},
		{name: "one profile outside its window refuses both (R-A5)", date: "2031-04-01", profiles: []Profile{sign, auth},
			before: func(t *testing.T, c *testCA, req *IssueRequest) {
				issuedBefore(ceremonyDay, "", sign)(t, c, req)
				issuedBefore("2027-06-16", "", auth)(t, c, req) // expires 2032-06-15
			},
			edit:    later,
			refused: refuse(KindPrecondition, "profiles[1].profile", "R-V3", "AUTH certificate")},
	})
}

// After an issuer key compromise (R-K2) its certificates are revoked
// (cACompromise) and a CA that starts issues nothing of that profile until
// a new generation is made; the other profile is issued as before.
func TestCompromisedIssuer(t *testing.T) {
	c := newTestCA(t, caOptions{})
	old := c.mustIssue(t, ceremonyDay, false, request(t, ProfileSign, ProfileAuth))
	c.setDate(t, "2027-01-05")
	if _, err := c.store.CompromiseIssuer(ProfileSign, 1, c.clock, c.clock.Add(-time.Hour), "operator"); err != nil {
		t.Fatal(err)
	}
	c.restart(t)
	for _, rec := range old.Certificates {
		now, err := c.Certificate(serialHex(rec))
		if err != nil {
			t.Fatal(err)
		}
		if revoked := now.Revocation != nil && now.Revocation.Reason == reasonCACompromise; revoked != (rec.Profile == ProfileSign) {
			t.Errorf("%v: revocation %v; only SIGN is revoked, as cACompromise (R-K2)", rec.Profile, now.Revocation)
		}
	}
	req := request(t, ProfileSign)
	_, err := c.Issue(context.Background(), req)
	refusal{KindPrecondition, "profiles[0].profile", "R-K2", "compromised"}.check(t, err)

	other := request(t, ProfileAuth, ProfileSign)
	other.Holder.ID = "holder-2"
	_, err = c.Issue(context.Background(), other)
	refusal{KindPrecondition, "profiles[1].profile", "R-K2", "new key generation"}.check(t, err)
	other.Profiles = other.Profiles[:1]
	out, err := c.Issue(context.Background(), other)
	if err != nil {
		t.Fatalf("AUTH of another holder: %v", err)
	}
	checkIssued(t, c, false, out, []wantCert{{ProfileAuth, "2031-06-15", reasonV1}})
}

// revokedBefore issues the profile to the holder on ceremonyDay and revokes
// it at a counter request.
func revokedBefore(p Profile) func(*testing.T, *testCA, *IssueRequest) {
	return func(t *testing.T, c *testCA, _ *IssueRequest) {
		out := c.mustIssue(t, ceremonyDay, false, request(t, p))
		if _, err := c.Revoke(context.Background(), serialHex(out.Certificates[0]), reasonCessationOfOperation, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// proxy opens an inquiry for the holder on date and puts it in the request
// as a PROXY application, with the code mailed or a wrong one.
func proxy(date string, wrong bool) func(*testing.T, *testCA, *IssueRequest) {
	return func(t *testing.T, c *testCA, req *IssueRequest) {
		c.setDate(t, date)
		inq, err := c.OpenInquiry("13221", req.Holder.ID)
		if err != nil {
			t.Fatal(err)
		}
		code := inq.Code
		if wrong {
			code = code[:len(code)-1] + map[bool]string{true: "A", false: "B"}[code[len(code)-1] != 'A']
		}
		req.Application = Application{Kind: ApplicantProxy, InquiryID: inq.ID, InquiryCode: code, CardExpiry: req.Application.CardExpiry}
	}
}

// keyUsedBefore has another holder certified with the request's first key,
// and, when lost, report that holder's keys lost (R-V8).
func keyUsedBefore(lost bool) func(*testing.T, *testCA, *IssueRequest) {
	return func(t *testing.T, c *testCA, req *IssueRequest) {
		other := request(t, ProfileAuth)
		other.Holder.ID, other.Profiles[0].CSR = "holder-2", req.Profiles[0].CSR
		c.mustIssue(t, ceremonyDay, false, other)
		if !lost {
			return
		}
		if _, err := c.ReportEvent(context.Background(), Event{ID: "loss-1", Municipality: "13221", HolderID: "holder-2",
			Kind: EventLossReport, EffectiveTime: c.clock.Format(time.RFC3339)}); err != nil {
			t.Fatal(err)
		}
	}
}

func runPlanCases(t *testing.T, renew bool, cases []planCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCA(t, caOptions{})
			req := request(t, tc.profiles...)
			if tc.before != nil {
				tc.before(t, c, &req)
			}
			if tc.edit != nil {
				tc.edit(&req)
			}
			c.setDate(t, cmp.Or(tc.date, ceremonyDay))
			recorded := len(c.holderCerts(t, req.Holder.ID))
			do := c.Issue
			if renew {
				do = c.Renew
			}
			out, err := do(context.Background(), req)
			if tc.refused != nil {
				tc.refused.check(t, err)
				if out != nil {
					t.Error("a refused request returned certificates")
				}
				if n := len(c.holderCerts(t, req.Holder.ID)); n != recorded {
					t.Errorf("the refusal recorded %d certificates", n-recorded)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkIssued(t, c, renew, out, tc.want)
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

// checkIssued checks each certificate against its plan: profile, expiry
// date and reason, notBefore now, notAfter 23:59:59 JST of the expiry date
// (R-P1), signed by the active issuer; and for a renewal, the old one
// revoked as superseded (R-V4).
func checkIssued(t *testing.T, c *testCA, renew bool, out *Issued, want []wantCert) {
	t.Helper()
	if len(out.Certificates) != len(want) {
		t.Fatalf("%d certificates, want %d", len(out.Certificates), len(want))
	}
	now := c.clock
	for i, w := range want {
		rec := out.Certificates[i]
		if rec.Profile != w.profile || rec.ExpiryDate != w.expiry || rec.ExpiryReason != w.reason {
			t.Errorf("certificate %d: %v until %s (%s), want %v until %s (%s)", i, rec.Profile, rec.ExpiryDate, rec.ExpiryReason, w.profile, w.expiry, w.reason)
		}
		if rec.State != storev1.CertState_CERT_STATE_ISSUED {
			t.Errorf("certificate %d: state %v", i, rec.State)
		}
		expiry, err := validity.ParseDate(w.expiry)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(rec.Der)
		if err != nil {
			t.Fatalf("certificate %d: %v", i, err)
		}
		if !cert.NotBefore.Equal(now) || !cert.NotAfter.Equal(expiry.EndOfDay()) || !cert.NotAfter.Add(time.Second).Equal(expiry.AddDays(1).Start()) {
			t.Errorf("certificate %d: valid %s to %s, want from %s to the end of %s JST", i, cert.NotBefore, cert.NotAfter, now, w.expiry)
		}
		if err := cert.CheckSignatureFrom(c.IssuerCertificate(w.profile, rec.IssuerGeneration)); err != nil {
			t.Errorf("certificate %d: %v", i, err)
		}
	}
	if !renew {
		if len(out.Superseded) != 0 {
			t.Errorf("an issuance superseded %x", out.Superseded)
		}
		return
	}
	if len(out.Superseded) != len(want) {
		t.Fatalf("%d superseded, want %d", len(out.Superseded), len(want))
	}
	for _, sn := range out.Superseded {
		old, err := c.store.Certificate(sn)
		if err != nil {
			t.Fatal(err)
		}
		if r := old.Revocation; r == nil || r.Reason != reasonSuperseded || !r.RevokedAt.AsTime().Equal(now) {
			t.Errorf("superseded %x: revocation %v, want superseded at %s (R-V4)", sn, r, now)
		}
	}
}
