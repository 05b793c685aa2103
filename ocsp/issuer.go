package ocsp

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// Issuer is one issuer key generation the responder answers for, with its
// delegated responder. Every generation whose certificates have not all
// expired needs one (R-K1): older generations keep answering for their own
// certificates.
type Issuer struct {
	// Certificate is the issuer certificate. CertIDs match it by
	// issuerNameHash over its subject and issuerKeyHash over its
	// subjectPublicKey bits, in SHA-1 and SHA-256.
	Certificate *x509.Certificate
	// Responder is the delegated responder certificate, signed by
	// Certificate, with id-kp-OCSPSigning and id-pkix-ocsp-nocheck (see
	// NewResponderCertificate). It is sent with every response.
	Responder *x509.Certificate
	// Signer is the responder's key (in the HSM in production). A signer
	// with a SignContext(ctx, digest, opts) method, like hsm.Signer, is
	// called with the request's deadline.
	Signer crypto.Signer
}

// issuer is an Issuer with what every response needs worked out once.
type issuer struct {
	*Issuer
	// index numbers the issuer in the cache's keys; the Responder gives
	// it, stable across SetIssuers.
	index int
	// keyID names the issuer in logs and metrics: its subjectKeyIdentifier
	// or, failing that, the SHA-1 of its key, in hex.
	keyID string
	// names are the lookup keys (issuerKey) of the CertIDs that name this
	// issuer, one per CertID hash algorithm.
	names []issuerName
	// responderKeyHash is the ResponderID byKey: the SHA-1 of the
	// responder's subjectPublicKey bits (RFC 6960 §4.2.1).
	responderKeyHash []byte
	// alg is what the responder key signs responses with (R-P1).
	alg *x509enc.SignatureAlgorithm
	// certs is the BasicOCSPResponse certs field, [0] EXPLICIT SEQUENCE {
	// responder certificate }: the tail of every response.
	certs certsField
	// earlier are earlier certificates of the same responder key, still
	// valid, whose pre-signed responses are served (presigned.go).
	earlier []responderCert
}

// certIDHashes are the CertID hash algorithms the responder answers.
var certIDHashes = []crypto.Hash{crypto.SHA1, crypto.SHA256}

// certsField is a BasicOCSPResponse certs field, the tail of the
// responses of one responder certificate, with its SHA-256 (the ETag of a
// response hashes its head and this, not the certificate again).
type certsField struct {
	der []byte
	sum [sha256.Size]byte
}

func newCertsField(der []byte) certsField {
	return certsField{der: der, sum: sha256.Sum256(der)}
}

// issuerName is the lookup key of a CertID's issuer: its hash algorithm
// and both hashes (zero-padded: SHA-1's are 20 octets), comparable without
// allocating on every request.
type issuerName struct {
	hash          crypto.Hash
	name, keyHash [sha256.Size]byte
}

// issuerKey is the issuerName of a CertID's hashes, which ParseRequest
// has checked are of the algorithm's size.
func issuerKey(h crypto.Hash, nameHash, keyHash []byte) issuerName {
	n := issuerName{hash: h}
	copy(n.name[:], nameHash)
	copy(n.keyHash[:], keyHash)
	return n
}

// CheckResponder checks that responder is a delegated responder
// certificate of issuer as the Responder needs one: signed by issuer, with
// id-kp-OCSPSigning, digitalSignature (when keyUsage is present) and
// id-pkix-ocsp-nocheck (R-R6). Validity and key are the caller's to check.
func CheckResponder(issuer, responder *x509.Certificate) error {
	if err := responder.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("responder certificate is not signed by the issuer: %w", err)
	}
	if !slices.Contains(responder.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return errors.New("responder certificate lacks the id-kp-OCSPSigning extended key usage (RFC 6960 §4.2.2.2)")
	}
	if responder.KeyUsage != 0 && responder.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("responder certificate's keyUsage lacks digitalSignature")
	}
	if !slices.ContainsFunc(responder.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidOCSPNoCheck) }) {
		return errors.New("responder certificate lacks id-pkix-ocsp-nocheck (R-R6)")
	}
	return nil
}

// newIssuer checks an Issuer and works out what its responses need.
func newIssuer(is *Issuer, now time.Time) (*issuer, error) {
	if is == nil || is.Certificate == nil || is.Responder == nil || is.Signer == nil {
		return nil, errors.New("Certificate, Responder and Signer are required")
	}
	c, rc := is.Certificate, is.Responder
	if err := CheckResponder(c, rc); err != nil {
		return nil, err
	}
	if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
		return nil, fmt.Errorf("responder certificate is valid from %s to %s, not now (%s)", rfc3339(rc.NotBefore), rfc3339(rc.NotAfter), rfc3339(now))
	}
	pub, ok := is.Signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(rc.PublicKey) {
		return nil, errors.New("Signer's public key is not the responder certificate's")
	}
	alg, err := signatureAlgorithm(rc.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("responder key: %w", err)
	}
	issuerBits, err := x509enc.PublicKeyBits(c.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, fmt.Errorf("issuer certificate: %w", err)
	}
	// ResponderID byKey is the SHA-1 of the key bits (RFC 6960 §4.2.1):
	// subjectKeyIdentifier method (1).
	responderKeyHash, err := x509enc.SubjectKeyID(rc.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, fmt.Errorf("responder certificate: %w", err)
	}
	out := &issuer{Issuer: is, alg: alg, responderKeyHash: responderKeyHash}
	for _, h := range certIDHashes {
		name, key := h.New(), h.New()
		name.Write(c.RawSubject)
		key.Write(issuerBits)
		out.names = append(out.names, issuerKey(h, name.Sum(nil), key.Sum(nil)))
	}
	if len(c.SubjectKeyId) > 0 {
		out.keyID = hex.EncodeToString(c.SubjectKeyId)
	} else {
		ski, _ := x509enc.SubjectKeyID(c.RawSubjectPublicKeyInfo) // its bits were read above
		out.keyID = hex.EncodeToString(ski)
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(rc.Raw)
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	out.certs = newCertsField(der)
	return out, nil
}

// presignCertID is the CertID of serial that pre-signed responses answer
// (Presigner): SHA-1 (certIDHashes[0]), its hashAlgorithm with NULL
// parameters, as `openssl ocsp`, Go's x/crypto/ocsp and RFC 5019 clients
// send it. A request whose CertID is not these bytes is answered
// otherwise (the cache, or a signature).
func (is *issuer) presignCertID(serial *big.Int) ([]byte, error) {
	name := is.names[0]
	size := name.hash.Size()
	b := cryptobyte.NewBuilder(make([]byte, 0, 64))
	CertID{HashAlgorithm: name.hash, IssuerNameHash: name.name[:size], IssuerKeyHash: name.keyHash[:size], SerialNumber: serial}.marshal(b)
	return b.Bytes()
}

// signatureAlgorithm is what the responder key signs with: R-P1's choice
// for its type (x509enc.ForPublicKey), an RSA key of at least 2048 bits.
func signatureAlgorithm(pub crypto.PublicKey) (*x509enc.SignatureAlgorithm, error) {
	if k, ok := pub.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
		return nil, fmt.Errorf("RSA key of %d bits; want at least 2048", k.N.BitLen())
	}
	return x509enc.ForPublicKey(pub)
}
