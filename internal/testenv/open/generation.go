package open

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// Generation is an issuer key generation made by IssuerGeneration.
type Generation struct {
	Ref         hsm.KeyRef
	Signer      *hsm.Signer
	Certificate *x509.Certificate
	// NewWithOld is the new key certified by the previous generation's,
	// OldWithNew the previous key certified by the new one (R-K1).
	NewWithOld, OldWithNew *x509.Certificate
}

// IssuerGeneration makes the next generation of the issuer whose
// certificate is prev and key prevKey, shaped as a rotation makes it (R-K1),
// for tests of what publishes generations: an RSA-2048 key labelled label
// generated in tok, a self-signed issuer certificate with prev's subject
// (testenv.IssuerTemplate's extensions, valid from an hour ago for ten
// years), and the two link certificates. It is a stand-in built with
// crypto/x509, not the CA's rotation.
func IssuerGeneration(ctx context.Context, tok *hsm.Token, label string, prev *x509.Certificate, prevKey crypto.Signer) (*Generation, error) {
	ref := hsm.KeyRef{Label: label, ID: make([]byte, 16)}
	if _, err := rand.Read(ref.ID); err != nil {
		return nil, err
	}
	signer, err := tok.GenerateKey(ctx, ref, hsm.RSA2048)
	if err != nil {
		return nil, err
	}
	now := time.Now().Truncate(time.Second)
	tmpl := func() *x509.Certificate {
		t := testenv.IssuerTemplate(prev.RawSubject, nil)
		t.SerialNumber = testenv.Serial()
		t.NotBefore, t.NotAfter = now.Add(-time.Hour), now.AddDate(10, 0, 0)
		return t
	}
	g := &Generation{Ref: ref, Signer: signer}
	if g.Certificate, err = testenv.SelfSigned(tmpl(), signer); err != nil {
		return nil, fmt.Errorf("issuer certificate: %w", err)
	}
	if g.NewWithOld, err = testenv.Certify(tmpl(), prev, signer.Public(), prevKey); err != nil {
		return nil, fmt.Errorf("NewWithOld: %w", err)
	}
	if g.OldWithNew, err = testenv.Certify(tmpl(), g.Certificate, prev.PublicKey, signer); err != nil {
		return nil, fmt.Errorf("OldWithNew: %w", err)
	}
	return g, nil
}
