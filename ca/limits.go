package ca

import (
	"fmt"
	"unicode/utf8"

	"github.com/shomei-pki/shomei/ca/profile"
)

// Limits of every count and length a caller supplies. They are checked
// first, before anything parses, verifies, consults the JIS tables, lints
// or asks the HSM (checkIssueSizes, checkEventSizes), so the work a request
// can cause is bounded by these numbers, not by the bytes it sends. The API
// documents each one (api/shomei/ca/v1/ca.proto).
//
// Texts are limited in characters (Unicode code points) where the rule book
// counts characters, and first, cheaply, in bytes: a character is at most
// four bytes of UTF-8 (utf8.UTFMax).
const (
	// MaxProfiles is the number of profiles one Issue or Renew asks for:
	// SIGN and AUTH, once each (R-A5).
	MaxProfiles = 2

	// MaxCSRBytes bounds a card's PKCS#10 request (R-P1). An RSA-4096
	// request is about 1,100 bytes (a 550-byte SubjectPublicKeyInfo and a
	// 512-byte signature); the CA ignores the subject and attributes, and
	// 4 KiB leaves them three times that.
	MaxCSRBytes = 4096
	// MinRSABits and MaxRSABits are the card key sizes accepted (R-P1), as
	// the profile has them; parseCSR checks the modulus length before the
	// signature, the step whose cost grows with the key.
	MinRSABits = profile.MinRSABits
	MaxRSABits = profile.MaxRSABits

	// MaxSurnameRunes and MaxGivenNameRunes bound the parts of the name
	// (R-P2). Decision: the rule book and the seeds give no limit, and the
	// certificate's name is surname, U+3000, given name; 50 characters each
	// hold any name a resident record carries (including foreign residents'
	// names in katakana) with room to spare, and keep the name otherName at
	// most 101 characters.
	MaxSurnameRunes   = 50
	MaxGivenNameRunes = 50
	// MaxNameRunes is the name as the certificate carries it, the text
	// name_substitutions positions count in.
	MaxNameRunes = MaxSurnameRunes + 1 + MaxGivenNameRunes
	// MaxAddressRunes is R-P2's address limit.
	MaxAddressRunes = 200
	// MaxMunicipalityNameRunes bounds the Japanese prefecture and
	// municipality names (R-R5): the longest real ones are 4 and 8
	// characters; they go into the CRL distribution point.
	MaxMunicipalityNameRunes = 20
	// MaxRomajiRunes bounds the romanised names of the SIGN subject (R-P2),
	// PrintableString localityName values.
	MaxRomajiRunes = 64
	// MaxHolderIDBytes is the opaque holder id's limit (R-P4).
	MaxHolderIDBytes = 64
	// MaxDateBytes is a YYYY-MM-DD date.
	MaxDateBytes = len("2006-01-02")
	// MaxInquiryIDBytes and MaxInquiryCodeBytes bound a PROXY application's
	// inquiry (R-A2): ids are "INQ-" and 20 characters, codes 11.
	MaxInquiryIDBytes   = 64
	MaxInquiryCodeBytes = 32
	// MaxNameSubstitutions and MaxAddressSubstitutions: at most one
	// substitute per character of the text (R-P5); each substitute is one
	// character.
	MaxNameSubstitutions    = MaxNameRunes
	MaxAddressSubstitutions = MaxAddressRunes

	// MaxEventIDBytes bounds an event id (R-R1).
	MaxEventIDBytes = 128
	// MaxChangedFields: the basic 4 info, each at most once (R-R1, R-P2).
	MaxChangedFields = 4
	// MaxSerialHexBytes bounds a hex serial: 20 octets (R-P1) are 40 hex
	// digits; leading zeros are tolerated up to 64.
	MaxSerialHexBytes = 64
	// MaxTimeBytes bounds an RFC 3339 time, e.g.
	// 2026-11-21T09:00:00.123456789+09:00 (35 bytes).
	MaxTimeBytes = 64

	// MaxCertificateBytes is the largest certificate the CA signs,
	// checked on the exact certificate before it is linted, recorded or
	// signed (cycle.go). The largest valid SIGN certificate is about
	// 3,500 bytes: an RSA-4096 key (550) and issuer signature (512), the
	// name (101 characters, 303 bytes) and address (200 characters, 600
	// bytes) with their substitution maps (301), the CRL distribution
	// point's Japanese names, the CA's URLs and DNs. 8 KiB is over twice
	// that: a larger certificate means a defect or a CA configuration
	// (URLs, issuer names) out of proportion, never a request to sign.
	// Cards and relying parties keep certificates in fixed buffers.
	MaxCertificateBytes = 8192

	// MaxRequestBytes is the largest gRPC message the CA's server receives
	// (grpc.MaxRecvMsgSize). The largest request that passes the checks
	// above is an Issue or Renew with every text at its limit in four-byte
	// characters, both substitution lists full and two CSRs of MaxCSRBytes:
	// about 16 KiB (TestMaximalRequest builds it and the largest valid
	// request, and checks both fit). 64 KiB leaves four times that for
	// fields added later; every other request of the API is smaller.
	MaxRequestBytes = 64 << 10
)

// tooLong reports whether s has more than max characters, looking at its
// bytes first so that a huge string is refused without being scanned.
func tooLong(s string, max int) bool {
	return len(s) > max*utf8.UTFMax || (len(s) > max && utf8.RuneCountInString(s) > max)
}

// checkIssueSizes checks the counts and lengths of an Issue or Renew
// request, before anything else looks at it: each list is refused whole
// when too long, without looking at its entries.
func checkIssueSizes(req IssueRequest) error {
	vs := &violations{}
	text := func(field, rule, value string, max int) {
		if tooLong(value, max) {
			vs.add(field, rule, "at most %d characters", max)
		}
	}
	bytesOf := func(field, rule, value string, max int) {
		if len(value) > max {
			vs.add(field, rule, "at most %d bytes", max)
		}
	}
	m := req.Municipality
	bytesOf("municipality.code", "R-R5", m.Code, len("13221"))
	text("municipality.prefecture_romaji", "R-P2", m.PrefectureRomaji, MaxRomajiRunes)
	text("municipality.municipality_romaji", "R-P2", m.MunicipalityRomaji, MaxRomajiRunes)
	text("municipality.prefecture", "R-R5", m.Prefecture, MaxMunicipalityNameRunes)
	text("municipality.municipality", "R-R5", m.Name, MaxMunicipalityNameRunes)
	h := req.Holder
	bytesOf("holder.holder_id", "R-P4", h.ID, MaxHolderIDBytes)
	text("holder.surname", "R-P2", h.Surname, MaxSurnameRunes)
	text("holder.given_name", "R-P2", h.GivenName, MaxGivenNameRunes)
	bytesOf("holder.date_of_birth", "R-V1", h.DateOfBirth, MaxDateBytes)
	text("holder.address", "R-P2", h.Address, MaxAddressRunes)
	a := req.Application
	bytesOf("application.inquiry_id", "R-A2", a.InquiryID, MaxInquiryIDBytes)
	bytesOf("application.inquiry_code", "R-A2", a.InquiryCode, MaxInquiryCodeBytes)
	bytesOf("application.card_expiry", "R-V5", a.CardExpiry, MaxDateBytes)
	if n := len(req.Profiles); n > MaxProfiles {
		vs.add("profiles", "R-A5", "%d profiles: at most %d, SIGN and AUTH, once each", n, MaxProfiles)
	} else {
		for i, p := range req.Profiles {
			if len(p.CSR) > MaxCSRBytes {
				vs.add(fmt.Sprintf("profiles[%d].csr", i), "R-P1", "%d bytes: a card's request is at most %d bytes", len(p.CSR), MaxCSRBytes)
			}
		}
	}
	substitutions(vs, "name_substitutions", req.NameSubstitutions, MaxNameSubstitutions)
	substitutions(vs, "address_substitutions", req.AddressSubstitutions, MaxAddressSubstitutions)
	return vs.err(KindInvalid)
}

// substitutions checks the length of a substitution list (R-P5).
func substitutions(vs *violations, field string, subs []Substitution, max int) {
	// Each substitute must be exactly one character; certificateText
	// checks that in constant time per entry, so that a substitute of
	// several characters is reported with the character it leaves
	// uncovered.
	if len(subs) > max {
		vs.add(field, "R-P5", "%d substitutions: at most %d, one per character of the text", len(subs), max)
	}
}

// checkEventSizes checks the counts and lengths of a ReportEvent request,
// before anything else looks at it.
func checkEventSizes(ev Event) error {
	vs := &violations{}
	bytesOf := func(field, rule, value string, max int) {
		if len(value) > max {
			vs.add(field, rule, "at most %d bytes", max)
		}
	}
	bytesOf("event_id", "R-R1", ev.ID, MaxEventIDBytes)
	bytesOf("municipality_code", "R-R5", ev.Municipality, len("13221"))
	bytesOf("holder_id", "R-P4", ev.HolderID, MaxHolderIDBytes)
	bytesOf("serial", "R-R1", ev.Serial, MaxSerialHexBytes)
	bytesOf("effective_time", "R-R3", ev.EffectiveTime, MaxTimeBytes)
	if n := len(ev.ChangedFields); n > MaxChangedFields {
		vs.add("changed_fields", "R-R1", "%d changed fields: at most %d, the basic 4 info once each", n, MaxChangedFields)
	} else {
		for i, f := range ev.ChangedFields {
			for j := range i {
				if ev.ChangedFields[j] == f {
					vs.add(fmt.Sprintf("changed_fields[%d]", i), "R-R1", "repeats changed_fields[%d]", j)
					break
				}
			}
		}
	}
	if n := len(ev.Profiles); n > MaxProfiles {
		vs.add("profiles", "R-R1", "%d profiles: at most %d, SIGN and AUTH, once each", n, MaxProfiles)
	} else if n == 2 && ev.Profiles[0] == ev.Profiles[1] {
		vs.add("profiles[1]", "R-R1", "repeats profiles[0]")
	}
	return vs.err(KindInvalid)
}

// checkRevokeSizes checks the lengths of a Revoke request, before anything
// else looks at it.
func checkRevokeSizes(serial, effectiveTime string) error {
	vs := &violations{}
	if len(serial) > MaxSerialHexBytes {
		vs.add("serial", "R-R2", "at most %d bytes", MaxSerialHexBytes)
	}
	if len(effectiveTime) > MaxTimeBytes {
		vs.add("effective_time", "R-R3", "at most %d bytes", MaxTimeBytes)
	}
	return vs.err(KindInvalid)
}
