package ca

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/serial"
	"github.com/shomei-pki/shomei/ca/validity"
)

// Issued is the outcome of Issue or Renew.
type Issued struct {
	// Certificates in the order requested, ISSUED, with their DER.
	Certificates []*storev1.Certificate
	// Superseded serials of a renewal, in the same order.
	Superseded [][]byte
}

// Issue issues new certificates for a holder (R-A*, R-V1, R-V5, R-V7).
func (c *CA) Issue(ctx context.Context, req IssueRequest) (*Issued, error) {
	return c.measure("issue", func() (*Issued, error) { return c.issue(ctx, req, false) })
}

// Renew renews certificates inside their renewal window (R-V3, R-V4).
func (c *CA) Renew(ctx context.Context, req IssueRequest) (*Issued, error) {
	return c.measure("renew", func() (*Issued, error) { return c.issue(ctx, req, true) })
}

func (c *CA) measure(op string, fn func() (*Issued, error)) (*Issued, error) {
	start := time.Now()
	out, err := fn()
	if c.metrics != nil {
		outcome := "ok"
		if err != nil {
			outcome = "refused"
			rule := "internal"
			var e *Error
			if errors.As(err, &e) {
				rule = "unavailable"
				if len(e.Violations) > 0 {
					rule = e.Violations[0].Rule
				}
				if e.Kind == KindUnavailable {
					outcome = "unavailable"
				}
			} else {
				outcome = "error"
			}
			c.metrics.refused.WithLabelValues(op, rule).Inc()
		} else {
			for _, r := range out.Certificates {
				c.metrics.issued.WithLabelValues(issuer.ShortName(r.Profile), op).Inc()
			}
		}
		c.metrics.duration.WithLabelValues(op, outcome).Observe(time.Since(start).Seconds())
	}
	return out, err
}

func (c *CA) issue(ctx context.Context, req IssueRequest, renew bool) (*Issued, error) {
	now := c.now()
	today := validity.DateOf(now)
	op := map[bool]string{false: "issue", true: "renew"}[renew]

	// 0. Counts and lengths, before anything looks further (limits.go).
	if err := checkIssueSizes(req); err != nil {
		return nil, err
	}

	// 1. The request itself: INVALID_ARGUMENT.
	vs := &violations{}
	wantSign := false
	seen := map[Profile]bool{}
	if len(req.Profiles) == 0 {
		vs.add("profiles", "R-A5", "ask for SIGN, AUTH or both")
	}
	for i, p := range req.Profiles {
		switch {
		case p.Profile != ProfileSign && p.Profile != ProfileAuth:
			vs.add(fmt.Sprintf("profiles[%d].profile", i), "R-A5", "must be SIGN or AUTH")
		case seen[p.Profile]:
			vs.add(fmt.Sprintf("profiles[%d].profile", i), "R-A5", "%s is asked for twice", issuer.ShortName(p.Profile))
		}
		seen[p.Profile] = true
		wantSign = wantSign || p.Profile == ProfileSign
	}
	validateMunicipality(vs, req.Municipality, wantSign)
	validateHolderID(vs, "holder.holder_id", req.Holder.ID)
	birth := parseDate(vs, "holder.date_of_birth", "R-V1", req.Holder.DateOfBirth)
	if !birth.IsZero() && birth.After(today) {
		vs.add("holder.date_of_birth", "R-V1", "is in the future")
	}
	card := parseDate(vs, "application.card_expiry", "R-V5", req.Application.CardExpiry)
	app := req.Application
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
	keys := make([]holderKey, len(req.Profiles))
	for i, p := range req.Profiles {
		keys[i] = parseCSR(vs, fmt.Sprintf("profiles[%d].csr", i), p.CSR, c.cfg.AllowECDSAP256)
		for j := range i {
			if keys[i].spkiSHA256 != nil && bytes.Equal(keys[i].spkiSHA256, keys[j].spkiSHA256) {
				vs.add(fmt.Sprintf("profiles[%d].csr", i), "R-P1", "has the key of profiles[%d]: every certificate needs a key of its own", j)
			}
		}
	}
	if err := vs.err(KindInvalid); err != nil {
		return nil, err
	}
	var personal personalData
	if wantSign {
		personal = validatePersonal(vs, req, birth)
		if err := vs.err(KindInvalid); err != nil {
			return nil, err
		}
	}

	// 2. The holder's situation: FAILED_PRECONDITION.
	pre := &violations{}
	h := req.Holder
	minor := validity.Age(birth, today) < 15
	if (minor || h.AdultWard) && app.Kind != ApplicantLegalRepresentative {
		who := "under 15"
		if h.AdultWard {
			who = "an adult ward"
		}
		pre.add("application.applicant_kind", "R-A1", "the holder is %s: the legal representative must apply", who)
	}
	if card.Compare(today) <= 0 {
		pre.add("application.card_expiry", "R-V5", "the card expires on %s: no certificate can be issued on it", card)
	}
	for i, p := range req.Profiles {
		if p.Profile != ProfileSign {
			continue
		}
		if minor {
			pre.add("holder.date_of_birth", "R-A3", "the holder is under 15 on %s: no SIGN certificate (profiles[%d])", today, i)
		}
		if h.AdultWard {
			pre.add("holder.adult_ward", "R-A3", "the holder is an adult ward: no SIGN certificate (profiles[%d])", i)
		}
	}
	// R-P1, R-V8, checked again when the issuance is recorded (cycle.go).
	for i, k := range keys {
		field := fmt.Sprintf("profiles[%d].csr", i)
		// A blocked key was certified too; the block is the rule to name.
		if blocked, err := c.cfg.Store.KeyBlocked(k.spkiSHA256); err != nil {
			return nil, err
		} else if blocked {
			pre.add(field, "R-V8", "the key was reported lost or compromised and can never be certified again")
			continue
		}
		if used, err := c.cfg.Store.KeyCertified(k.spkiSHA256); err != nil {
			return nil, err
		} else if used {
			pre.add(field, "R-P1", "the key is already certified by another certificate: every certificate needs a new key")
		}
	}
	existing, err := c.cfg.Store.HolderCertificates(req.Municipality.Code, h.ID)
	if err != nil {
		return nil, err
	}
	valid := map[Profile]*storev1.Certificate{}
	for _, r := range existing {
		if r.State == storev1.CertState_CERT_STATE_PENDING || (r.State == storev1.CertState_CERT_STATE_ISSUED &&
			validity.StatusAt(r.NotAfter.AsTime(), r.Revocation != nil, now) == validity.StatusValid) {
			valid[r.Profile] = r
		}
	}

	// Expiry of each profile: AUTH first, since SIGN is capped by it (R-V5).
	plans := make([]*plan, len(req.Profiles))
	order := make([]int, 0, len(req.Profiles))
	for i, p := range req.Profiles {
		if p.Profile == ProfileAuth {
			order = append([]int{i}, order...)
		} else {
			order = append(order, i)
		}
	}
	var newAuth validity.Date
	for _, i := range order {
		p := req.Profiles[i]
		field := fmt.Sprintf("profiles[%d]", i)
		name := strings.ToUpper(issuer.ShortName(p.Profile))
		old := valid[p.Profile]
		var expiry validity.Date
		var reason string
		switch {
		case !renew && old != nil:
			pre.add(field+".profile", "R-A4", "the holder already has a valid %s certificate (serial %x, until %s): renew it instead", name, old.Serial, old.ExpiryDate)
			continue
		case !renew:
			expiry, reason = validity.Expiry(birth, today), "5th birthday after issuance (R-V1)"
		case old == nil || old.State != storev1.CertState_CERT_STATE_ISSUED:
			pre.add(field+".profile", "R-V4", "the holder has no valid %s certificate to renew: after expiry a new one is issued with Issue", name)
			continue
		default:
			oldExpiry, err := validity.ParseDate(old.ExpiryDate)
			if err != nil {
				return nil, fmt.Errorf("ca: stored expiry of %x: %w", old.Serial, err)
			}
			expiry, err = validity.RenewalExpiry(birth, oldExpiry, today, h.LivingAbroad)
			if err != nil {
				pre.add(field+".profile", "R-V3", "%s certificate %x (expiring %s): %v", name, old.Serial, oldExpiry, err)
				continue
			}
			reason = "6th birthday after renewal (R-V4)"
			if today == oldExpiry {
				reason = "5th birthday after renewal on the expiry date (R-V4)"
			}
		}
		var authCap validity.Date
		if p.Profile == ProfileSign {
			authCap = newAuth
			if authCap.IsZero() && valid[ProfileAuth] != nil && valid[ProfileAuth].State == storev1.CertState_CERT_STATE_ISSUED {
				authCap, _ = validity.ParseDate(valid[ProfileAuth].ExpiryDate)
			}
		}
		capped, which := validity.ApplyCaps(expiry, card, authCap)
		switch which {
		case validity.CapCard:
			reason = "card expiry (R-V5)"
		case validity.CapAuth:
			reason = "AUTH certificate expiry (R-V5)"
		}
		if capped.Compare(today) <= 0 {
			// A card that expires by today is refused above, as the card's.
			if which != validity.CapCard {
				pre.add(field+".profile", "R-V5", "capped at %s by the %s, the certificate would not outlive today", capped, strings.ToLower(which.String()))
			}
			continue
		}
		if p.Profile == ProfileAuth {
			newAuth = capped
		}
		iss := c.active[p.Profile]
		if iss == nil {
			pre.add(field+".profile", "R-K2", "the %s issuer key is compromised; issuance resumes with a new key generation", name)
			continue
		}
		notAfter := capped.EndOfDay()
		if notAfter.After(iss.cert.NotAfter) {
			pre.add(field+".profile", "R-V7", "it would expire on %s, after its issuer (%s generation %d, until %s): rotate the issuer key first",
				capped, name, iss.rec.Generation, iss.cert.NotAfter.Format(time.DateOnly))
			continue
		}
		pl := &plan{field: field, iss: iss, key: keys[i], expiry: capped, expiryReason: reason}
		if renew {
			pl.supersede = old.Serial
		}
		plans[i] = pl
	}
	if err := pre.err(KindPrecondition); err != nil {
		return nil, err
	}

	// 3. Build the certificates' requests.
	for i, pl := range plans {
		p := req.Profiles[i]
		sn, err := serial.New()
		if err != nil {
			return nil, err
		}
		cn, err := serial.OpaqueID(req.Municipality.Code)
		if err != nil {
			return nil, err
		}
		pl.partition = fmt.Sprintf("%s-g%d-%s", issuer.ShortName(p.Profile), pl.iss.rec.Generation, req.Municipality.Code)
		pl.req = profile.Request{
			Profile: p.Profile, Serial: sn, NotBefore: now.Truncate(time.Second), NotAfter: pl.expiry.EndOfDay(),
			PublicKey: pl.key.pub, SubjectCN: cn,
			CRL: profile.CRLDistributionPoint{
				Name: profile.CRLDistributionPointName(p.Profile, req.Municipality.Prefecture, req.Municipality.Name),
				URL:  c.cfg.CRLBaseURL + "/" + pl.partition + ".crl",
			},
		}
		if p.Profile == ProfileSign {
			pl.req.PrefectureRomaji, pl.req.MunicipalityRomaji = req.Municipality.PrefectureRomaji, req.Municipality.MunicipalityRomaji
			pl.req.Name, pl.req.NameMap = personal.name, personal.nameMap
			pl.req.DateOfBirth, pl.req.Sex = personal.dateOfBirth, personal.sex
			pl.req.Address, pl.req.AddressMap = personal.address, personal.addressMap
		}
	}

	ref := holderRef{municipality: req.Municipality.Code, holderID: h.ID, inquiryID: app.InquiryID, inquiryCode: app.InquiryCode,
		operation: op, applicant: app.Kind}
	recs, err := c.cycle(ctx, now, ref, plans)
	if err != nil {
		return nil, err
	}
	out := &Issued{Certificates: recs}
	for _, pl := range plans {
		if pl.supersede != nil {
			out.Superseded = append(out.Superseded, pl.supersede)
		}
	}
	return out, nil
}
