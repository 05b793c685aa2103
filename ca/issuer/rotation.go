package issuer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/x509enc"
	"github.com/shomei-pki/shomei/internal/x509lint"
)

// KeyMaker makes a key pair in the HSM and finds a key checked against its
// certificate; *hsm.Token is one.
type KeyMaker interface {
	Keys
	GenerateKey(ctx context.Context, ref hsm.KeyRef, alg hsm.KeyAlgorithm) (*hsm.Signer, error)
	Label() string
}

var _ KeyMaker = (*hsm.Token)(nil)

// Rotation asks for the generation after Previous (R-K1).
type Rotation struct {
	// Token makes the new key.
	Token KeyMaker
	// Previous is the profile's latest generation. The new one keeps its
	// DN and key algorithm.
	Previous Issuer
	// PreviousSigner is Previous's key, to sign the link certificates
	// with; nil when it must not or cannot sign (compromised, expired,
	// retired): then there are no links.
	PreviousSigner crypto.Signer
	// Config gives the issuer certificate's validity (ValidityYears).
	Config Config
	// Now is when the rotation runs.
	Now time.Time
}

// Generation is a new issuer key generation: its record (the caller sets
// its state and activation time), certificate and key, and the two link
// certificates when there are any.
type Generation struct {
	Key         *storev1.IssuerKey
	Certificate *x509.Certificate
	Signer      *hsm.Signer
	// NewWithOld certifies the new key with the previous one; OldWithNew
	// the previous key with the new one. Both nil when the previous key
	// signs nothing.
	NewWithOld, OldWithNew *x509.Certificate
}

// Next makes the next generation: a key of the previous generation's
// algorithm in the HSM under KeyLabel(profile, generation) and a fresh
// random id; its self-signed certificate with the same DN (built and
// checked as the ceremony does); and the link certificates, each linted
// and checked with a throwaway key before the HSM signs it, then checked
// again. When it fails after the key was made, the Generation it returns
// with the error names the key (to destroy it).
func (r Rotation) Next(ctx context.Context) (*Generation, error) {
	prev := r.Previous
	if r.Token == nil || prev.IssuerKey == nil || prev.Certificate == nil {
		return nil, errors.New("issuer: a rotation needs a token and the previous generation")
	}
	if err := r.Config.Validate(); err != nil {
		return nil, err
	}
	alg, err := hsm.ParseKeyAlgorithm(prev.KeyAlgorithm)
	if err != nil {
		return nil, fmt.Errorf("issuer: %s generation %d: %w", ShortName(prev.Profile), prev.Generation, err)
	}
	name, err := x509enc.DNFromDER(prev.Certificate.RawSubject)
	if err != nil {
		return nil, fmt.Errorf("issuer: %s generation %d: subject: %w", ShortName(prev.Profile), prev.Generation, err)
	}
	gen := prev.Generation + 1
	ref := hsm.KeyRef{Label: KeyLabel(prev.Profile, gen), ID: make([]byte, 16)}
	if _, err := rand.Read(ref.ID); err != nil {
		return nil, err
	}
	signer, err := r.Token.GenerateKey(ctx, ref, alg)
	if err != nil {
		return nil, fmt.Errorf("issuer: %s generation %d key: %w", ShortName(prev.Profile), gen, err)
	}
	g := &Generation{Key: &storev1.IssuerKey{Profile: prev.Profile, Generation: gen, KeyLabel: ref.Label, KeyId: ref.ID,
		KeyAlgorithm: string(alg), TokenLabel: r.Token.Label()}, Signer: signer}
	notBefore, notAfter := r.Config.validity(r.Now)
	if g.Certificate, err = build(name, signer, alg, notBefore, notAfter); err != nil {
		return g, fmt.Errorf("issuer: %s generation %d certificate: %w", ShortName(prev.Profile), gen, err)
	}
	if _, err := r.Token.SignerFor(ctx, ref, g.Certificate); err != nil {
		return g, fmt.Errorf("issuer: %s generation %d key check: %w", ShortName(prev.Profile), gen, err)
	}
	g.Key.CertificateDer = g.Certificate.Raw
	if r.PreviousSigner == nil || !notBefore.Before(prev.Certificate.NotAfter) {
		return g, nil
	}
	// Both links live within the old certificate's validity (and so
	// within the new one's).
	linkAfter := prev.Certificate.NotAfter
	if g.NewWithOld, err = link(name, signer.Public(), prev.Certificate, r.PreviousSigner, alg, notBefore, linkAfter); err != nil {
		return g, fmt.Errorf("issuer: link certificate %s: %w", LinkName(prev.Profile, gen, prev.Generation), err)
	}
	if g.OldWithNew, err = link(name, prev.Certificate.PublicKey, g.Certificate, signer, alg, notBefore, linkAfter); err != nil {
		return g, fmt.Errorf("issuer: link certificate %s: %w", LinkName(prev.Profile, prev.Generation, gen), err)
	}
	g.Key.LinkNewWithOldDer, g.Key.LinkOldWithNewDer = g.NewWithOld.Raw, g.OldWithNew.Raw
	return g, nil
}

// link makes a link certificate: subject's key certified by parent's key
// under the same DN, with the authorityKeyIdentifier of parent (R-K1). A
// copy signed by a throwaway key of the parent key's algorithm is linted
// and checked first; the HSM then signs, and the result is checked again,
// its signature against parent.
func link(name x509enc.DN, subject crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, parentAlg hsm.KeyAlgorithm,
	notBefore, notAfter time.Time) (*x509.Certificate, error) {
	if !bytes.Equal(parent.RawSubject, mustMarshal(name)) {
		return nil, errors.New("the parent certificate has another DN")
	}
	lintKey, err := throwawayKey(parentAlg)
	if err != nil {
		return nil, err
	}
	lintParent := *parent
	lintParent.PublicKey = lintKey.Public()
	if _, err := signLink(name, subject, &lintParent, lintKey, notBefore, notAfter, true); err != nil {
		return nil, fmt.Errorf("fails its profile before signing: %w", err)
	}
	cert, err := signLink(name, subject, parent, parentKey, notBefore, notAfter, false)
	if err != nil {
		return nil, fmt.Errorf("signed in the HSM: %w", err)
	}
	return cert, nil
}

func mustMarshal(name x509enc.DN) []byte {
	der, _ := name.Marshal()
	return der
}

// signLink signs, parses, checks and (when lintIt) lints a link certificate.
func signLink(name x509enc.DN, subject crypto.PublicKey, parent *x509.Certificate, key crypto.Signer,
	notBefore, notAfter time.Time, lintIt bool) (*x509.Certificate, error) {
	tmpl, err := template(name, subject, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	// The issuer and subject names are the same, so crypto/x509 would take
	// it for self-signed and not copy the parent's key identifier itself.
	tmpl.AuthorityKeyId = parent.SubjectKeyId
	sigAlg, err := x509enc.ForPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	tmpl.SignatureAlgorithm = sigAlg.Algorithm
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, subject, key)
	if err != nil {
		return nil, err
	}
	if lintIt {
		if _, err := x509lint.Lint(der); err != nil {
			return nil, err
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return cert, CheckLink(cert, name, parent, notBefore, notAfter)
}

// CheckLink verifies that cert is a well-formed link certificate under
// parent (R-K1): an issuer certificate as Check describes, but with
// parent's name as issuer (the same DN), parent's subject key identifier as
// its authority key identifier, another key than parent's, and a signature
// that verifies with parent's key.
func CheckLink(cert *x509.Certificate, name x509enc.DN, parent *x509.Certificate, notBefore, notAfter time.Time) error {
	errs := checkCA(cert, name, notBefore, notAfter)
	if !bytes.Equal(cert.RawIssuer, parent.RawSubject) {
		errs = append(errs, errors.New("issuer is not the parent's subject"))
	}
	if len(parent.SubjectKeyId) == 0 || !bytes.Equal(cert.AuthorityKeyId, parent.SubjectKeyId) {
		errs = append(errs, fmt.Errorf("authorityKeyIdentifier %s, want the parent's %s", hex.EncodeToString(cert.AuthorityKeyId),
			hex.EncodeToString(parent.SubjectKeyId)))
	}
	if bytes.Equal(cert.SubjectKeyId, parent.SubjectKeyId) {
		errs = append(errs, errors.New("certifies the parent's own key"))
	}
	if err := cert.CheckSignatureFrom(parent); err != nil {
		errs = append(errs, fmt.Errorf("signature by the parent: %v", err))
	}
	return errors.Join(errs...)
}
