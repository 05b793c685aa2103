package ca

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/serial"
	"github.com/shomei-pki/shomei/ca/validity"
)

// The steps Issue and Renew share, in the order they run:
//
//	prepare        counts and lengths, the request (INVALID_ARGUMENT), the
//	               holder's situation and current certificates
//	authFirst      the order profiles are planned in
//	planProfile    caps and issuer of one profile, given its expiry
//	execute        the collected refusals (FAILED_PRECONDITION), the
//	               certificates' requests, the issuance cycle (cycle.go)

// issuance is one Issue or Renew request as it is worked through.
type issuance struct {
	req   IssueRequest
	op    string // "issue" or "renew"
	now   time.Time
	today validity.Date
	// gens is the issuer generations the whole request plans with: read
	// once, so that both profiles see the same snapshot (R-K1).
	gens     *generations
	wantSign bool
	birth    validity.Date
	card     validity.Date
	keys     []holderKey // of each profile, in request order
	personal personalData
	// current is the holder's valid or pending certificate of each profile.
	current map[Profile]*storev1.Certificate
	// pre collects the refusals of the holder's situation.
	pre violations
	// plans are the certificates to issue, in request order.
	plans []*plan
	// newAuth is the expiry planned for a new AUTH certificate, which caps
	// SIGN's (R-V5).
	newAuth validity.Date
}

// upperName is "SIGN" or "AUTH".
func upperName(p Profile) string { return strings.ToUpper(issuer.ShortName(p)) }

// prepare checks the request's sizes (limits.go) and the request itself,
// refusing it as INVALID_ARGUMENT, then collects what the holder's situation
// forbids whatever the operation, and finds the holder's current
// certificates.
func (c *CA) prepare(req IssueRequest, op string) (*issuance, error) {
	now := c.now()
	is := &issuance{req: req, op: op, now: now, today: validity.DateOf(now), gens: c.gens.Load(), plans: make([]*plan, len(req.Profiles))}
	// 0. Counts and lengths, before anything looks further (limits.go).
	if err := checkIssueSizes(req); err != nil {
		return nil, err
	}
	// 1. The request itself: INVALID_ARGUMENT.
	if err := c.validateRequest(is); err != nil {
		return nil, err
	}
	// 2. The holder's situation: FAILED_PRECONDITION, collected in is.pre.
	is.checkEligibility()
	if err := c.checkKeys(is); err != nil {
		return nil, err
	}
	if err := c.findCurrent(is); err != nil {
		return nil, err
	}
	return is, nil
}

// validateRequest checks every field of the request and parses its dates,
// card keys and, for SIGN, personal data into is.
func (c *CA) validateRequest(is *issuance) error {
	req := is.req
	vs := &violations{}
	is.wantSign = validateProfiles(vs, req.Profiles)
	validateMunicipality(vs, req.Municipality, is.wantSign)
	validateHolderID(vs, "holder.holder_id", req.Holder.ID)
	is.birth = parseDate(vs, "holder.date_of_birth", "R-V1", req.Holder.DateOfBirth)
	if !is.birth.IsZero() && is.birth.After(is.today) {
		vs.add("holder.date_of_birth", "R-V1", "is in the future")
	}
	is.card = parseDate(vs, "application.card_expiry", "R-V5", req.Application.CardExpiry)
	validateApplication(vs, req.Application)
	is.keys = c.parseKeys(vs, req.Profiles)
	if err := vs.err(KindInvalid); err != nil {
		return err
	}
	if is.wantSign {
		is.personal = validatePersonal(vs, req, is.birth)
		return vs.err(KindInvalid)
	}
	return nil
}

// validateProfiles checks the profiles asked for: SIGN, AUTH or both, each
// once (R-A5). It reports whether SIGN is among them.
func validateProfiles(vs *violations, profiles []ProfileRequest) (wantSign bool) {
	if len(profiles) == 0 {
		vs.add("profiles", "R-A5", "ask for SIGN, AUTH or both")
	}
	seen := map[Profile]bool{}
	for i, p := range profiles {
		switch {
		case p.Profile != ProfileSign && p.Profile != ProfileAuth:
			vs.add(fmt.Sprintf("profiles[%d].profile", i), "R-A5", "must be SIGN or AUTH")
		case seen[p.Profile]:
			vs.add(fmt.Sprintf("profiles[%d].profile", i), "R-A5", "%s is asked for twice", issuer.ShortName(p.Profile))
		}
		seen[p.Profile] = true
		wantSign = wantSign || p.Profile == ProfileSign
	}
	return wantSign
}

// validateApplication checks the applicant kind and that an inquiry comes
// with, and only with, a PROXY application (R-A1, R-A2).
func validateApplication(vs *violations, app Application) {
	switch app.Kind {
	case ApplicantSelf, ApplicantLegalRepresentative:
		if app.InquiryID != "" || app.InquiryCode != "" {
			vs.add("application.inquiry_code", "R-A2", "an inquiry is only for PROXY applications")
		}
	case ApplicantProxy:
		if app.InquiryID == "" || app.InquiryCode == "" {
			vs.add("application.inquiry_code", "R-A2", "a PROXY application needs the inquiry id and the code mailed to the holder (OpenInquiry)")
		} else if looksLikeIndividualNumber(app.InquiryID) {
			vs.add("application.inquiry_id", "R-P4", individualNumberRefusal)
		}
	default:
		vs.add("application.applicant_kind", "R-A1", "must be SELF, LEGAL_REPRESENTATIVE or PROXY")
	}
}

// parseKeys reads each profile's card request; no two may have one key
// (R-P1).
func (c *CA) parseKeys(vs *violations, profiles []ProfileRequest) []holderKey {
	keys := make([]holderKey, len(profiles))
	for i, p := range profiles {
		keys[i] = parseCSR(vs, fmt.Sprintf("profiles[%d].csr", i), p.CSR, c.cfg.AllowECDSAP256)
		for j := range i {
			if keys[i].spkiSHA256 != nil && bytes.Equal(keys[i].spkiSHA256, keys[j].spkiSHA256) {
				vs.add(fmt.Sprintf("profiles[%d].csr", i), "R-P1", "has the key of profiles[%d]: every certificate needs a key of its own", j)
			}
		}
	}
	return keys
}

// checkEligibility: who must apply (R-A1), the card's expiry (R-V5), and
// who may hold SIGN (R-A3).
func (is *issuance) checkEligibility() {
	h, app := is.req.Holder, is.req.Application
	minor := validity.Age(is.birth, is.today) < 15
	if (minor || h.AdultWard) && app.Kind != ApplicantLegalRepresentative {
		who := "under 15"
		if h.AdultWard {
			who = "an adult ward"
		}
		is.pre.add("application.applicant_kind", "R-A1", "the holder is %s: the legal representative must apply", who)
	}
	if is.card.Compare(is.today) <= 0 {
		is.pre.add("application.card_expiry", "R-V5", "the card expires on %s: no certificate can be issued on it", is.card)
	}
	for i, p := range is.req.Profiles {
		if p.Profile != ProfileSign {
			continue
		}
		if minor {
			is.pre.add("holder.date_of_birth", "R-A3", "the holder is under 15 on %s: no SIGN certificate (profiles[%d])", is.today, i)
		}
		if h.AdultWard {
			is.pre.add("holder.adult_ward", "R-A3", "the holder is an adult ward: no SIGN certificate (profiles[%d])", i)
		}
	}
}

// checkKeys: no key reported lost or compromised (R-V8), none certified
// before (R-P1). Both are checked again when the issuance is recorded
// (cycle.go).
func (c *CA) checkKeys(is *issuance) error {
	for i, k := range is.keys {
		field := fmt.Sprintf("profiles[%d].csr", i)
		// A blocked key was certified too; the block is the rule to name.
		if blocked, err := c.cfg.Store.KeyBlocked(k.spkiSHA256); err != nil {
			return err
		} else if blocked {
			is.pre.add(field, "R-V8", "the key was reported lost or compromised and can never be certified again")
			continue
		}
		if used, err := c.cfg.Store.KeyCertified(k.spkiSHA256); err != nil {
			return err
		} else if used {
			is.pre.add(field, "R-P1", "the key is already certified by another certificate: every certificate needs a new key")
		}
	}
	return nil
}

// findCurrent finds the holder's valid or pending certificate of each
// profile: what Issue refuses to double (R-A4) and Renew supersedes (R-V4).
func (c *CA) findCurrent(is *issuance) error {
	now := is.now
	existing, err := c.cfg.Store.HolderCertificates(is.req.Municipality.Code, is.req.Holder.ID)
	if err != nil {
		return err
	}
	is.current = map[Profile]*storev1.Certificate{}
	for _, r := range existing {
		if r.State == storev1.CertState_CERT_STATE_PENDING || (r.State == storev1.CertState_CERT_STATE_ISSUED &&
			validity.StatusAt(r.NotAfter.AsTime(), r.Revocation != nil, now) == validity.StatusValid) {
			is.current[r.Profile] = r
		}
	}
	return nil
}

// authFirst is the order profiles are planned in, by their request index:
// AUTH first, since SIGN is capped by it (R-V5).
func (is *issuance) authFirst() []int {
	order := make([]int, 0, len(is.req.Profiles))
	for i, p := range is.req.Profiles {
		if p.Profile == ProfileAuth {
			order = append([]int{i}, order...)
		} else {
			order = append(order, i)
		}
	}
	return order
}

// planProfile plans profile i of the request with the expiry its operation
// gives it: capped by the card and, for SIGN, by the holder's AUTH (R-V5),
// issued by the active issuer (R-K2), within the issuer's validity (R-V7).
// A refusal goes to is.pre; supersede is the certificate a renewal replaces.
func (c *CA) planProfile(is *issuance, i int, expiry validity.Date, reason string, supersede []byte) {
	p := is.req.Profiles[i]
	field := fmt.Sprintf("profiles[%d]", i)
	name := upperName(p.Profile)
	var authCap validity.Date
	if p.Profile == ProfileSign {
		authCap = is.newAuth
		if auth := is.current[ProfileAuth]; authCap.IsZero() && auth != nil && auth.State == storev1.CertState_CERT_STATE_ISSUED {
			authCap, _ = validity.ParseDate(auth.ExpiryDate)
		}
	}
	capped, which := validity.ApplyCaps(expiry, is.card, authCap)
	switch which {
	case validity.CapCard:
		reason = "card expiry (R-V5)"
	case validity.CapAuth:
		reason = "AUTH certificate expiry (R-V5)"
	}
	if capped.Compare(is.today) <= 0 {
		// A card that expires by today is refused as the card's
		// (checkEligibility).
		if which != validity.CapCard {
			is.pre.add(field+".profile", "R-V5", "capped at %s by the %s, the certificate would not outlive today", capped, strings.ToLower(which.String()))
		}
		return
	}
	if p.Profile == ProfileAuth {
		is.newAuth = capped
	}
	iss := is.gens.active[p.Profile]
	if iss == nil {
		is.pre.add(field+".profile", "R-K2", "the %s issuer key is compromised; issuance resumes with a new key generation", name)
		return
	}
	if !outlives(iss.cert, capped) {
		is.pre.add(field+".profile", "R-V7", "it would expire on %s, after its issuer (%s generation %d, until %s): rotate the issuer key first",
			capped, name, iss.rec.Generation, iss.cert.NotAfter.Format(time.DateOnly))
		return
	}
	is.plans[i] = &plan{field: field, iss: iss, key: is.keys[i], expiry: capped, expiryReason: reason, supersede: supersede}
}

// execute refuses the request if its holder's situation forbids any of it
// (FAILED_PRECONDITION), else builds each certificate's request and runs
// the issuance cycle for all of them (cycle.go).
func (c *CA) execute(ctx context.Context, is *issuance) (*Issued, error) {
	if err := is.pre.err(KindPrecondition); err != nil {
		return nil, err
	}
	if err := c.buildRequests(is); err != nil {
		return nil, err
	}
	req, app := is.req, is.req.Application
	ref := holderRef{municipality: req.Municipality.Code, holderID: req.Holder.ID, inquiryID: app.InquiryID, inquiryCode: app.InquiryCode,
		operation: is.op, applicant: app.Kind}
	recs, err := c.cycle(ctx, is.now, ref, is.plans)
	if err != nil {
		return nil, err
	}
	out := &Issued{Certificates: recs}
	for _, pl := range is.plans {
		if pl.supersede != nil {
			out.Superseded = append(out.Superseded, pl.supersede)
		}
	}
	return out, nil
}

// buildRequests gives each planned certificate its serial, opaque CN,
// validity, CRL partition and shard (shard.go) and, for SIGN, its subject
// and personal data (R-P1–R-P4, R-R5).
func (c *CA) buildRequests(is *issuance) error {
	req, personal := is.req, is.personal
	for i, pl := range is.plans {
		p := req.Profiles[i]
		sn, err := serial.New()
		if err != nil {
			return err
		}
		cn, err := serial.OpaqueID(req.Municipality.Code)
		if err != nil {
			return err
		}
		pl.req = profile.Request{
			Profile: p.Profile, Serial: sn, NotBefore: is.now.Truncate(time.Second), NotAfter: pl.expiry.EndOfDay(),
			PublicKey: pl.key.pub, SubjectCN: cn,
		}
		pl.base = shardBase{profile: p.Profile, generation: pl.iss.rec.Generation, municipality: req.Municipality.Code}
		shard, err := c.shardFor(pl.base)
		if err != nil {
			return err
		}
		pl.municipality = req.Municipality
		pl.placeIn(shard, c.cfg.CRLBaseURL)
		if p.Profile == ProfileSign {
			pl.req.PrefectureRomaji, pl.req.MunicipalityRomaji = req.Municipality.PrefectureRomaji, req.Municipality.MunicipalityRomaji
			pl.req.Name, pl.req.NameMap = personal.name, personal.nameMap
			pl.req.DateOfBirth, pl.req.Sex = personal.dateOfBirth, personal.sex
			pl.req.Address, pl.req.AddressMap = personal.address, personal.addressMap
		}
	}
	return nil
}
