package service

import (
	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/ca"
)

// issueRequest converts the parts of an Issue or Renew request.
func issueRequest(m *cav1.Municipality, h *cav1.Holder, a *cav1.Application, profiles []*cav1.ProfileRequest,
	nameSubs, addrSubs []*cav1.Substitution) ca.IssueRequest {
	req := ca.IssueRequest{
		Municipality: ca.Municipality{
			Code: m.GetCode(), PrefectureRomaji: m.GetPrefectureRomaji(), MunicipalityRomaji: m.GetMunicipalityRomaji(),
			Prefecture: m.GetPrefecture(), Name: m.GetMunicipality(),
		},
		Holder: ca.Holder{
			ID: h.GetHolderId(), Surname: h.GetSurname(), GivenName: h.GetGivenName(), DateOfBirth: h.GetDateOfBirth(),
			Sex: ca.Sex(h.GetSex()), Address: h.GetAddress(), AdultWard: h.GetAdultWard(), LivingAbroad: h.GetLivingAbroad(),
		},
		Application: ca.Application{
			Kind: ca.ApplicantKind(a.GetApplicantKind()), InquiryID: a.GetInquiryId(), InquiryCode: a.GetInquiryCode(),
			CardExpiry: a.GetCardExpiry(),
		},
		NameSubstitutions:    substitutions(nameSubs),
		AddressSubstitutions: substitutions(addrSubs),
	}
	for _, p := range profiles {
		req.Profiles = append(req.Profiles, ca.ProfileRequest{Profile: ca.Profile(p.GetProfile()), CSR: p.GetCsr()})
	}
	return req
}

func substitutions(subs []*cav1.Substitution) []ca.Substitution {
	out := make([]ca.Substitution, len(subs))
	for i, s := range subs {
		out[i] = ca.Substitution{Position: int(s.GetPosition()), Character: s.GetCharacter()}
	}
	return out
}
