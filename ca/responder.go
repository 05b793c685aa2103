package ca

import (
	"context"
	"crypto"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/serial"
	"github.com/shomei-pki/shomei/ocsp"
)

// IssuerName is the short name of an issuer key generation, "sign-g1" or
// "auth-g2": how responders, replicas and operators name it.
func IssuerName(p Profile, generation uint32) string {
	return fmt.Sprintf("%s-g%d", issuer.ShortName(p), generation)
}

// IssuerGeneration is an issuer key generation with its short name.
type IssuerGeneration struct {
	Name        string
	Profile     Profile
	Generation  uint32
	Certificate []byte // DER
}

// IssuerGenerations lists every issuer key generation, active or older.
func (c *CA) IssuerGenerations() []IssuerGeneration {
	var out []IssuerGeneration
	for _, p := range issuer.Profiles {
		for gen, cert := range c.all[p] {
			out = append(out, IssuerGeneration{Name: IssuerName(p, gen), Profile: p, Generation: gen, Certificate: cert.Raw})
		}
	}
	return out
}

// issuerByName finds an issuer key generation by its short name.
func (c *CA) issuerByName(name string) (Profile, uint32, bool) {
	for _, p := range issuer.Profiles {
		for gen := range c.all[p] {
			if IssuerName(p, gen) == name {
				return p, gen, true
			}
		}
	}
	return 0, 0, false
}

// CertifyResponder has the issuer key generation named issuerName sign a
// delegated OCSP responder certificate for pub, valid from notBefore to
// notAfter shortened to the issuer's own validity (R-R6), linted before the
// HSM signs (ocsp.NewResponderCertificate), and audited as a key operation
// (R-K3). actor names who asked.
func (c *CA) CertifyResponder(ctx context.Context, issuerName string, pub crypto.PublicKey, notBefore, notAfter time.Time, actor string) ([]byte, error) {
	p, gen, ok := c.issuerByName(issuerName)
	if !ok {
		return nil, refuse(KindNotFound, "issuer", "R-R6", "no issuer key generation is named %q", issuerName)
	}
	cert, signer, err := c.IssuerSigner(p, gen)
	if err != nil {
		return nil, err
	}
	if notBefore.Before(cert.NotBefore) {
		notBefore = cert.NotBefore
	}
	if notAfter.After(cert.NotAfter) {
		notAfter = cert.NotAfter
	}
	sn, err := serial.New()
	if err != nil {
		return nil, err
	}
	der, err := ocsp.NewResponderCertificate(cert, signer, pub, notBefore, notAfter, sn)
	if err != nil {
		return nil, err
	}
	err = c.cfg.Store.AppendAudit(&storev1.AuditRecord{Time: timestamppb.New(c.now()), Actor: actor, Action: "ocsp.responder.certify",
		Fields: []*storev1.AuditField{
			{Key: "issuer", Value: issuerName},
			{Key: "serial", Value: fmt.Sprintf("%x", sn)},
			{Key: "not_before", Value: notBefore.UTC().Format(time.RFC3339)},
			{Key: "not_after", Value: notAfter.UTC().Format(time.RFC3339)},
		}})
	if err != nil {
		return nil, err
	}
	return der, nil
}

// LocalResponderCertifier certifies the all-in-one CA's own responder keys
// (it satisfies ocsp/responders.Certifier).
type LocalResponderCertifier struct {
	CA    *CA
	Actor string
}

// CertifyResponder implements ocsp/responders.Certifier.
func (l LocalResponderCertifier) CertifyResponder(ctx context.Context, issuerName string, responder crypto.Signer, notBefore, notAfter time.Time) ([]byte, error) {
	return l.CA.CertifyResponder(ctx, issuerName, responder.Public(), notBefore, notAfter, l.Actor)
}
