package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/validity"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// plan is one certificate about to be issued.
type plan struct {
	field        string // request field of its profile, for refusals
	iss          *issuerKey
	req          profile.Request
	key          holderKey
	expiry       validity.Date
	expiryReason string
	// base and shard are the CRL partition's shards and the one the
	// certificate is planned in (shard.go); partition is its name.
	base      shardBase
	shard     uint32
	partition string
	supersede []byte // renewal: the certificate it replaces
	// municipality names the partition's directoryName.
	municipality Municipality
}

// holderRef identifies the holder of a cycle.
type holderRef struct {
	municipality, holderID string
	inquiryID, inquiryCode string
	operation              string // "issue" or "renew"
	applicant              ApplicantKind
}

// cycle runs the issuance cycle of doc.go for plans, all or none (R-A5).
func (c *CA) cycle(ctx context.Context, now time.Time, h holderRef, plans []*plan) ([]*storev1.Certificate, error) {
	recs := make([]*storev1.Certificate, len(plans))
	supersede := map[Profile][]byte{}
	for i, p := range plans {
		var err error
		if recs[i], err = c.pending(h, p); err != nil {
			return nil, err
		}
		if p.supersede != nil {
			supersede[p.req.Profile] = p.supersede
		}
	}

	r := store.Reservation{Certs: recs, Now: now, Supersede: supersede, InquiryID: h.inquiryID, InquiryCode: h.inquiryCode,
		CRLShardSize: c.cfg.CRLShardSize}
	err := c.cfg.Store.Reserve(r)
	// A shard planned in filled meanwhile (R-R5): plan its certificate
	// again in the next one, lint it again, and reserve again.
	for attempt := 1; err != nil; attempt++ {
		full, ok := errors.AsType[*store.CRLShardFullError](err)
		if !ok {
			break
		}
		if attempt == maxShardAttempts {
			return nil, shardsExhausted(err)
		}
		for i, p := range plans {
			if p.partition != full.Partition {
				continue
			}
			shard, err := c.shardFull(p.base, p.shard)
			if err != nil {
				return nil, err
			}
			p.placeIn(shard, c.cfg.CRLBaseURL)
			if recs[i], err = c.pending(h, p); err != nil { // r.Certs is recs
				return nil, err
			}
		}
		err = c.cfg.Store.Reserve(r)
	}
	if err != nil {
		if wrong, ok := errors.AsType[*store.WrongCodeError](err); ok {
			// The inquiry id only: it names no one.
			c.log.Warn("wrong inquiry code", "inquiry", wrong.ID, "attempts", wrong.Attempts, "max", store.MaxInquiryAttempts)
		}
		return nil, reservationRefusal(err)
	}

	// From here on the serials are recorded: whatever fails, they are
	// abandoned, never forgotten.
	done := store.Completion{DER: map[string][]byte{}, Now: now}
	for i, p := range plans {
		der, err := c.sign(ctx, p, recs[i].TbsDer)
		if err != nil {
			return nil, c.abandon(recs, err)
		}
		recs[i].Der = der
		done.DER[string(recs[i].Serial)] = der
		done.Audit = append(done.Audit, auditRecord(c.actor(ctx), now, h, p, recs[i]))
		dp := make([]string, len(p.req.CRL.Name))
		for j, a := range p.req.CRL.Name {
			dp[j] = a.Type + "=" + a.Value
		}
		done.Partitions = append(done.Partitions, &storev1.CRLPartition{Name: p.partition, Profile: p.req.Profile,
			IssuerGeneration: p.iss.rec.Generation, Url: p.req.CRL.URL, DistributionPoint: dp})
	}
	superseded, err := c.cfg.Store.CompleteRenewal(done)
	if err != nil {
		return nil, c.abandon(recs, err)
	}
	c.metrics.revocations(SourceRenewal, store.ReasonSuperseded, superseded)
	if c.cfg.OnStatusChange != nil {
		fresh := false
		for _, p := range plans {
			if _, known := c.partitions.LoadOrStore(p.partition, true); !known {
				fresh = true
			}
		}
		// Renewal revoked the superseded ones; a new partition needs its
		// first CRL at once, since its certificates already point at it.
		if len(supersede) > 0 || fresh {
			c.cfg.OnStatusChange()
		}
	}
	for i, p := range plans {
		recs[i].State = storev1.CertState_CERT_STATE_ISSUED
		c.log.Info("certificate issued", "operation", h.operation, "profile", issuer.ShortName(p.req.Profile),
			"serial", p.req.Serial.Text(16), "issuer_generation", p.iss.rec.Generation, "expiry", recs[i].ExpiryDate)
	}
	return recs, nil
}

// pending is the record of p's certificate to reserve: PENDING, with the
// TBS lint approved.
func (c *CA) pending(h holderRef, p *plan) (*storev1.Certificate, error) {
	tbs, err := c.lint(p)
	if err != nil {
		return nil, err
	}
	return &storev1.Certificate{
		Serial: p.req.Serial.Bytes(), Profile: p.req.Profile, IssuerGeneration: p.iss.rec.Generation,
		MunicipalityCode: h.municipality, HolderId: h.holderID, State: storev1.CertState_CERT_STATE_PENDING,
		TbsDer: tbs, NotBefore: timestamppb.New(p.req.NotBefore), NotAfter: timestamppb.New(p.req.NotAfter),
		ExpiryDate: p.expiry.String(), ExpiryReason: p.expiryReason, PublicKeySha256: p.key.spkiSHA256,
		CrlPartition: p.partition,
	}, nil
}

// lint encodes p's TBSCertificate, refuses it when the certificate would be
// larger than MaxCertificateBytes, checks the certificate it becomes
// against the profile and zlint, and returns the TBS for the HSM to sign.
// The certificate linted is the one the HSM will make, with a placeholder
// where the signature goes (profile.Draft.LintCopy): no throwaway key
// signs it and nothing verifies a signature that is not there.
func (c *CA) lint(p *plan) ([]byte, error) {
	d, err := profile.NewDraft(p.iss.cert, c.cfg.Profile, p.req)
	if err != nil {
		return nil, refuse(KindInvalid, p.field, "R-P1", "the certificate would not match its profile: %v", err)
	}
	der, err := d.LintCopy()
	if err != nil {
		return nil, fmt.Errorf("ca: building the lint certificate: %w", err)
	}
	// The lint copy is the certificate the HSM would make, but for the
	// signature value: as long, or for ECDSA up to two bytes shorter.
	if n := len(der) + 2; n > MaxCertificateBytes {
		c.log.Warn("certificate too large to sign", "serial", p.req.Serial.Text(16), "bytes", n, "max", MaxCertificateBytes)
		return nil, refuse(KindPrecondition, p.field, "R-P1", "the certificate would be %d bytes, more than the %d the CA signs (ca.MaxCertificateBytes): the CA's configured URLs or names are too long", n, MaxCertificateBytes)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: lint certificate does not parse: %w", err)
	}
	if err := d.Check(cert); err != nil {
		return nil, fmt.Errorf("ca: lint certificate fails its profile: %w", err)
	}
	warnings, err := profile.Lint(der)
	if err != nil {
		return nil, fmt.Errorf("ca: lint certificate fails RFC 5280 lints: %w", err)
	}
	for _, w := range warnings {
		c.log.Debug("lint warning", "serial", p.req.Serial.Text(16), "lint", w)
	}
	return d.TBS, nil
}

// sign has the HSM sign tbs and assembles the certificate. The signer
// verifies every signature with its public key, which was checked against
// the issuer certificate when the CA started (hsm.SignerFor); the TBS is the
// linted one byte for byte, so the certificate differs from the linted copy
// only in the signature value (the issuer's signature algorithm, checked at
// start to be the one in the TBS, is in both); and the store refuses a
// certificate whose TBS differs from the one recorded. So the signed
// certificate needs no second parse or profile check here: the tests parse
// and x509.Verify every certificate the CA issues.
func (c *CA) sign(ctx context.Context, p *plan, tbs []byte) ([]byte, error) {
	h := p.iss.hash.New()
	h.Write(tbs)
	sig, err := p.iss.signer.SignContext(ctx, h.Sum(nil), p.iss.hash)
	if err != nil {
		return nil, err
	}
	return x509enc.Signed(tbs, p.iss.sigAlg, sig), nil
}

// abandon marks reserved certificates abandoned after a failure and returns
// the error to report.
func (c *CA) abandon(recs []*storev1.Certificate, cause error) error {
	serials := make([][]byte, len(recs))
	for i, r := range recs {
		serials[i] = r.Serial
	}
	if err := c.cfg.Store.Abandon(serials); err != nil {
		// They stay PENDING and are abandoned at the next start.
		c.log.Error("could not mark failed issuance abandoned", "error", err)
	}
	for _, r := range recs {
		c.log.Warn("issuance abandoned", "serial", fmt.Sprintf("%x", r.Serial), "error", cause)
	}
	if errors.Is(cause, hsm.ErrTokenUnavailable) || errors.Is(cause, hsm.ErrPoolExhausted) || errors.Is(cause, context.DeadlineExceeded) {
		return &Error{Kind: KindUnavailable, Err: fmt.Errorf("ca: signing failed, nothing was issued; try again: %w", cause)}
	}
	return fmt.Errorf("ca: issuance failed, nothing was issued: %w", cause)
}

// reservationRefusal turns a store refusal, found inside the reserving
// transaction (a concurrent request won), into a precondition failure.
func reservationRefusal(err error) error {
	switch {
	case errors.Is(err, store.ErrDoubleIssuance):
		return &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"profiles", "R-A4", "the holder already has a valid or pending certificate of this profile (a concurrent request?): renew it instead"}}}
	case errors.Is(err, store.ErrKeyUsed):
		return &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"profiles.csr", "R-P1", "the key is already certified by another certificate: every certificate needs a new key"}}}
	case errors.Is(err, store.ErrKeyBlocked):
		return &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"profiles.csr", "R-V8", "the key was reported lost or compromised and can never be certified again"}}}
	case errors.Is(err, store.ErrInquiryLocked):
		return &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"application.inquiry_code", "R-A2",
			fmt.Sprintf("the inquiry is locked after %d wrong codes: open a new inquiry (OpenInquiry) and mail its letter", store.MaxInquiryAttempts)}}}
	case errors.Is(err, store.ErrInquiryWrongCode):
		desc := "the code does not match the inquiry"
		if wrong, ok := errors.AsType[*store.WrongCodeError](err); ok {
			if left := wrong.AttemptsLeft(); left > 0 {
				desc += fmt.Sprintf("; %d of %d attempts left before it is locked", left, store.MaxInquiryAttempts)
			} else {
				desc += fmt.Sprintf("; that was the %dth wrong code: the inquiry is now locked, open a new one", wrong.Attempts)
			}
		}
		return &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"application.inquiry_code", "R-A2", desc}}}
	case errors.Is(err, store.ErrInquiry):
		return &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"application.inquiry_code", "R-A2", "the inquiry code is not valid for this holder (wrong, used, or expired after 30 days)"}}}
	case errors.Is(err, store.ErrIssuerCompromised):
		return &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"profiles", "R-K2", "the issuer key generation was declared compromised meanwhile: no issuance of this profile until a new key generation is made (keys rotate)"}}}
	case errors.Is(err, store.ErrNotRenewable):
		return &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"profiles", "R-V4", "the certificate to renew is no longer valid (renewed, revoked or expired meanwhile)"}}}
	}
	return fmt.Errorf("ca: recording the issuance: %w", err)
}

// auditRecord is the R-K3 record of one issued certificate (IssuanceRecord).
func auditRecord(actor string, now time.Time, h holderRef, p *plan, rec *storev1.Certificate) *storev1.AuditRecord {
	return IssuanceRecord(actor, now, Issuance{Operation: h.operation, Applicant: h.applicant, InquiryID: h.inquiryID, Supersedes: p.supersede}, rec)
}

// Issuance is what the audit record of an issued certificate says beside
// the certificate record itself.
type Issuance struct {
	// Operation is "issue" or "renew" (the record's action is
	// "certificate." + Operation).
	Operation string
	Applicant ApplicantKind
	// InquiryID is the PROXY application's inquiry, if any (R-A2).
	InquiryID string
	// Supersedes is the serial a renewal replaces, if any.
	Supersedes []byte
}

// IssuanceRecord is the R-K3 audit record of one issued certificate, made
// from its record as reserved (serial, profile, issuer generation, holder,
// expiry, notAfter, CRL partition): the fields store.ReconcileAudit
// compares with the certificate record at every start. It names the
// holder by municipality and holder id only (R-P4). The CA's issuance
// cycle is its one maker; shomei-bench scale writes the records of its
// synthetic certificates with it too.
func IssuanceRecord(actor string, now time.Time, is Issuance, rec *storev1.Certificate) *storev1.AuditRecord {
	fields := []*storev1.AuditField{
		{Key: "serial", Value: new(big.Int).SetBytes(rec.Serial).Text(16)},
		{Key: "profile", Value: issuer.ShortName(rec.Profile)},
		{Key: "issuer_generation", Value: fmt.Sprint(rec.IssuerGeneration)},
		{Key: "municipality", Value: rec.MunicipalityCode},
		{Key: "holder_id", Value: rec.HolderId},
		{Key: "applicant", Value: fmt.Sprint(int(is.Applicant))},
		{Key: "expiry", Value: rec.ExpiryDate},
		{Key: "not_after", Value: rec.NotAfter.AsTime().UTC().Format(time.RFC3339)},
		{Key: "crl_partition", Value: rec.CrlPartition},
	}
	if is.Supersedes != nil {
		fields = append(fields, &storev1.AuditField{Key: "supersedes", Value: fmt.Sprintf("%x", is.Supersedes)})
	}
	if is.InquiryID != "" {
		fields = append(fields, &storev1.AuditField{Key: "inquiry", Value: is.InquiryID})
	}
	return &storev1.AuditRecord{Time: timestamppb.New(now), Actor: actor, Action: "certificate." + is.Operation, Fields: fields}
}
