package ca

import (
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// Profile is SIGN or AUTH.
type Profile = storev1.Profile

// The two profiles.
const (
	ProfileSign = storev1.Profile_PROFILE_SIGN
	ProfileAuth = storev1.Profile_PROFILE_AUTH
)

// Sex as the resident record has it (R-P2): its certificate encoding is the
// number.
type Sex int

// The recorded sexes.
const (
	SexUnspecified Sex = iota
	SexMale
	SexFemale
	SexNotRecorded
)

// ApplicantKind is who applies (R-A1).
type ApplicantKind int

// The applicant kinds.
const (
	ApplicantUnspecified ApplicantKind = iota
	ApplicantSelf
	ApplicantLegalRepresentative
	ApplicantProxy
)

// Municipality is the issuing municipality.
type Municipality struct {
	Code               string // 5 digits
	PrefectureRomaji   string // "Tokyo-to"
	MunicipalityRomaji string // "Kiyose-shi"
	Prefecture         string // "東京都"
	Name               string // "清瀬市"
}

// Holder is the resident as recorded.
type Holder struct {
	ID           string
	Surname      string
	GivenName    string
	DateOfBirth  string // YYYY-MM-DD
	Sex          Sex
	Address      string
	AdultWard    bool
	LivingAbroad bool
}

// Application is the counter procedure.
type Application struct {
	Kind        ApplicantKind
	InquiryID   string
	InquiryCode string
	CardExpiry  string // YYYY-MM-DD
}

// ProfileRequest asks for one certificate from a card's PKCS#10 request.
type ProfileRequest struct {
	Profile Profile
	CSR     []byte
}

// Substitution replaces the character at a 0-based code point position (R-P5).
type Substitution struct {
	Position  int
	Character string
}

// IssueRequest is an Issue or Renew call.
type IssueRequest struct {
	Municipality         Municipality
	Holder               Holder
	Application          Application
	Profiles             []ProfileRequest
	NameSubstitutions    []Substitution
	AddressSubstitutions []Substitution
}
