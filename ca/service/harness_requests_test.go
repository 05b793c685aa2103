package service_test

import (
	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// Requests: builders of the Issue and Renew requests the rule tests send.

// kiyose is the issuing municipality of every request.
var kiyose = &cav1.Municipality{Code: "13221", PrefectureRomaji: "Tokyo-to", MunicipalityRomaji: "Kiyose-shi",
	Prefecture: "東京都", Municipality: "清瀬市"}

// defaultAddress is every resident's address unless a test says otherwise.
const defaultAddress = "東京都清瀬市中里五丁目１２番地"

// resident is a holder with a name and address that need no substitute.
func resident(id, dateOfBirth string) *cav1.Holder {
	return &cav1.Holder{HolderId: id, Surname: "山田", GivenName: "太郎", DateOfBirth: dateOfBirth,
		Sex: cav1.Sex_SEX_MALE, Address: defaultAddress}
}

// adultWard is resident recorded as an adult ward.
func adultWard(id, dateOfBirth string) *cav1.Holder {
	h := resident(id, dateOfBirth)
	h.AdultWard = true
	return h
}

// named is resident with another name.
func named(id, dateOfBirth, surname, givenName string) *cav1.Holder {
	h := resident(id, dateOfBirth)
	h.Surname, h.GivenName = surname, givenName
	return h
}

const (
	self  = cav1.ApplicantKind_APPLICANT_KIND_SELF
	legal = cav1.ApplicantKind_APPLICANT_KIND_LEGAL_REPRESENTATIVE
	proxy = cav1.ApplicantKind_APPLICANT_KIND_PROXY

	signProfile = cav1.Profile_PROFILE_SIGN
	authProfile = cav1.Profile_PROFILE_AUTH
)

func sign(csr []byte) *cav1.ProfileRequest {
	return &cav1.ProfileRequest{Profile: signProfile, Csr: csr}
}

func auth(csr []byte) *cav1.ProfileRequest {
	return &cav1.ProfileRequest{Profile: authProfile, Csr: csr}
}

func application(kind cav1.ApplicantKind, cardExpiry string) *cav1.Application {
	return &cav1.Application{ApplicantKind: kind, CardExpiry: cardExpiry}
}

func request(hol *cav1.Holder, app *cav1.Application, profiles ...*cav1.ProfileRequest) *cav1.IssueRequest {
	return &cav1.IssueRequest{Municipality: kiyose, Holder: hol, Application: app, Profiles: profiles}
}

func renewal(r *cav1.IssueRequest) *cav1.RenewRequest {
	return &cav1.RenewRequest{Municipality: r.Municipality, Holder: r.Holder, Application: r.Application, Profiles: r.Profiles,
		NameSubstitutions: r.NameSubstitutions, AddressSubstitutions: r.AddressSubstitutions}
}
