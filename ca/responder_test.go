package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// A replica's request is checked in cost order: its size, then its key,
// then its signature, the one step whose cost grows with the key (R-R6).
func TestResponderKey(t *testing.T) {
	p256 := mustECDSA(t, elliptic.P256())
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		der  []byte
		says string // the refusal; empty when accepted
	}{
		{"P-256", responderCSR(t, p256, false), ""},
		{"P-384", responderCSR(t, mustECDSA(t, elliptic.P384()), false), ""},
		{"larger than MaxCSRBytes, and no DER", make([]byte, MaxCSRBytes+1), "a responder's request is at most 4096 bytes"},
		{"not DER", []byte{0x30, 0x03, 0x01}, "not a DER PKCS#10 request"},
		{"RSA-1024 with a broken signature: the key is named", responderCSR(t, rsa1024, true), "RSA key of 1024 bits"},
		{"P-521 with a broken signature: the key is named", responderCSR(t, mustECDSA(t, elliptic.P521()), true), "ECDSA key on P-521"},
		{"P-256 with a broken signature", responderCSR(t, p256, true), "signature does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := ResponderKey(tc.der)
			if tc.says == "" {
				if err != nil || pub == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			refusal{KindInvalid, "csr", "R-R6", tc.says}.check(t, err)
		})
	}
}

// Responder keys: RSA of 2048 to 4096 bits with exponent 65537, or ECDSA
// P-256 or P-384 (R-R6).
func TestCheckResponderKey(t *testing.T) {
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	huge := new(big.Int).Lsh(big.NewInt(1), 4096) // a 4097-bit modulus
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  crypto.PublicKey
		ok   bool
	}{
		{"RSA-2048", &rsa2048.PublicKey, true},
		{"RSA-2048, exponent 3", &rsa.PublicKey{N: rsa2048.N, E: 3}, false},
		{"RSA of 4097 bits", &rsa.PublicKey{N: huge, E: 65537}, false},
		{"P-256", mustECDSA(t, elliptic.P256()).Public(), true},
		{"P-384", mustECDSA(t, elliptic.P384()).Public(), true},
		{"P-521", mustECDSA(t, elliptic.P521()).Public(), false},
		{"Ed25519", edPub, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkResponderKey(tc.key)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			refusal{KindInvalid, "csr", "R-R6", ""}.check(t, err)
		})
	}
}

// CertifyResponder: the issuer by name, the key, the replica's enrollment
// (its pins and its issuers), the validity bounded by the policy, by
// MaxResponderValidity and by the issuer; a key an operator revoked is
// never certified again (R-R6).
func TestCertifyResponder(t *testing.T) {
	enrolled, other := mustECDSA(t, elliptic.P256()), mustECDSA(t, elliptic.P256())
	policy := ResponderPolicy{Replicas: map[string]ReplicaEnrollment{
		"replica-sign": {Keys: [][sha256.Size]byte{pin(t, enrolled)}, Issuers: []string{"sign-g1"}},
		"replica-all":  {Keys: [][sha256.Size]byte{pin(t, enrolled)}},
	}}
	day := at(t, ceremonyDay)
	for _, tc := range []struct {
		name   string
		policy func(*ResponderPolicy)
		now    time.Time // the CA's clock; day when zero
		req    ResponderRequest
		before func(t *testing.T, c *testCA)
		// The validity granted, or the refusal.
		notBefore, notAfter time.Time
		refused             *refusal
	}{
		{name: "the CA's own responder: from a minute ago, for a day by default", now: day.Add(time.Hour),
			req:       ResponderRequest{Issuer: "sign-g1", PublicKey: other.Public()},
			notBefore: day.Add(time.Hour - time.Minute), notAfter: day.Add(time.Hour - time.Minute + DefaultResponderValidity)},
		{name: "not before the issuer",
			req:       ResponderRequest{Issuer: "sign-g1", PublicKey: other.Public()},
			notBefore: day, notAfter: day.Add(-time.Minute + DefaultResponderValidity)},
		{name: "an enrolled key for an issuer the replica serves",
			req:       ResponderRequest{Issuer: "sign-g1", PublicKey: enrolled.Public(), Replica: "replica-sign", NotBefore: day, NotAfter: day.Add(time.Hour)},
			notBefore: day, notAfter: day.Add(time.Hour)},
		{name: "a replica enrolled for every issuer",
			req:       ResponderRequest{Issuer: "auth-g1", PublicKey: enrolled.Public(), Replica: "replica-all", NotBefore: day, NotAfter: day.Add(time.Hour)},
			notBefore: day, notAfter: day.Add(time.Hour)},
		{name: "any replica and key when EnrollAny", policy: func(p *ResponderPolicy) { p.EnrollAny = true },
			req:       ResponderRequest{Issuer: "auth-g1", PublicKey: other.Public(), Replica: "replica-x", NotBefore: day, NotAfter: day.Add(time.Hour)},
			notBefore: day, notAfter: day.Add(time.Hour)},
		{name: "an issuer the replica does not serve",
			req:     ResponderRequest{Issuer: "auth-g1", PublicKey: enrolled.Public(), Replica: "replica-sign"},
			refused: &refusal{KindPermission, "issuer", "R-R6", "does not serve issuer auth-g1"}},
		{name: "a replica not enrolled",
			req:     ResponderRequest{Issuer: "sign-g1", PublicKey: enrolled.Public(), Replica: "replica-x"},
			refused: &refusal{KindPermission, "csr", "R-R6", "no responder keys enrolled"}},
		{name: "a key not enrolled for the replica",
			req:     ResponderRequest{Issuer: "sign-g1", PublicKey: other.Public(), Replica: "replica-sign"},
			refused: &refusal{KindPrecondition, "csr", "R-R6", "is not enrolled for replica replica-sign"}},
		{name: "the key is checked before the enrollment",
			req:     ResponderRequest{Issuer: "sign-g1", PublicKey: mustECDSA(t, elliptic.P521()).Public(), Replica: "replica-x"},
			refused: &refusal{KindInvalid, "csr", "R-R6", "P-521"}},
		{name: "the issuer is looked up first",
			req:     ResponderRequest{Issuer: "sign-g9", PublicKey: mustECDSA(t, elliptic.P521()).Public(), Replica: "replica-x"},
			refused: &refusal{KindNotFound, "issuer", "R-R6", `"sign-g9"`}},
		{name: "notBefore more than an hour from now",
			req:     ResponderRequest{Issuer: "sign-g1", PublicKey: other.Public(), NotBefore: day.Add(-2 * time.Hour)},
			refused: &refusal{KindInvalid, "not_before", "R-R6", "from now"}},
		{name: "notAfter before notBefore",
			req:     ResponderRequest{Issuer: "sign-g1", PublicKey: other.Public(), NotBefore: day, NotAfter: day.Add(-time.Minute)},
			refused: &refusal{KindInvalid, "not_after", "R-R6", "not after not_before"}},
		{name: "a lifetime asked beyond the default is shortened",
			req:       ResponderRequest{Issuer: "sign-g1", PublicKey: other.Public(), NotBefore: day, NotAfter: day.Add(10 * 24 * time.Hour)},
			notBefore: day, notAfter: day.Add(DefaultResponderValidity)},
		{name: "the policy's lifetime", policy: func(p *ResponderPolicy) { p.MaxValidity = 48 * time.Hour },
			req:       ResponderRequest{Issuer: "sign-g1", PublicKey: other.Public(), NotBefore: day, NotAfter: day.Add(10 * 24 * time.Hour)},
			notBefore: day, notAfter: day.Add(48 * time.Hour)},
		{name: "the policy's lifetime is at most MaxResponderValidity", policy: func(p *ResponderPolicy) { p.MaxValidity = 100 * time.Hour },
			req:       ResponderRequest{Issuer: "sign-g1", PublicKey: other.Public(), NotBefore: day, NotAfter: day.Add(10 * 24 * time.Hour)},
			notBefore: day, notAfter: day.Add(MaxResponderValidity)},
		{name: "at most until the issuer expires", now: at(t, "2036-11-21").Add(-3 * time.Hour),
			req:       ResponderRequest{Issuer: "auth-g1", PublicKey: other.Public(), NotBefore: at(t, "2036-11-21").Add(-3 * time.Hour)},
			notBefore: at(t, "2036-11-21").Add(-3 * time.Hour), notAfter: at(t, "2036-11-21")},
		{name: "a key an operator revoked is never certified again",
			before: func(t *testing.T, c *testCA) {
				der, err := c.CertifyResponder(context.Background(), ResponderRequest{Issuer: "sign-g1", PublicKey: other.Public()})
				if err != nil {
					t.Fatal(err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.store.RevokeResponder(cert.SerialNumber.Bytes(), c.clock, reasonKeyCompromise, "operator"); err != nil {
					t.Fatal(err)
				}
			},
			req:     ResponderRequest{Issuer: "auth-g1", PublicKey: other.Public()},
			refused: &refusal{KindPrecondition, "csr", "R-R6", "never certified again"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pol := policy
			if tc.policy != nil {
				tc.policy(&pol)
			}
			c := newTestCA(t, caOptions{responders: pol})
			if tc.before != nil {
				tc.before(t, c)
			}
			if !tc.now.IsZero() {
				c.clock = tc.now
			}
			was := responderRecords(t, c)
			der, err := c.CertifyResponder(context.Background(), tc.req)
			if tc.refused != nil {
				tc.refused.check(t, err)
				if der != nil {
					t.Error("a refusal returned a certificate")
				}
				if now := responderRecords(t, c); !slices.Equal(now, was) {
					t.Errorf("the refusal recorded responder certificates: %v, was %v", now, was)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkResponderCertificate(t, c, tc.req, der, tc.notBefore, tc.notAfter)
		})
	}
}

// checkResponderCertificate: the validity granted, signed by the issuer
// generation asked for, for the key asked for, for OCSP signing, recorded
// as ISSUED.
func checkResponderCertificate(t *testing.T, c *testCA, req ResponderRequest, der []byte, notBefore, notAfter time.Time) {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.NotBefore.Equal(notBefore) || !cert.NotAfter.Equal(notAfter) {
		t.Errorf("valid %s to %s, want %s to %s", cert.NotBefore, cert.NotAfter, notBefore, notAfter)
	}
	p, gen, _ := c.issuerByName(req.Issuer)
	if err := cert.CheckSignatureFrom(c.IssuerCertificate(p, gen)); err != nil {
		t.Errorf("not signed by %s: %v", req.Issuer, err)
	}
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !k.Equal(req.PublicKey) {
		t.Error("not the responder's key")
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) {
		t.Errorf("extended key usage %v, want OCSP signing only", cert.ExtKeyUsage)
	}
	if got := responderRecords(t, c); !slices.Contains(got, SerialHex(cert.SerialNumber.Bytes())+" "+storev1.CertState_CERT_STATE_ISSUED.String()) {
		t.Errorf("recorded %v, want %x ISSUED", got, cert.SerialNumber)
	}
}

// responderRecords lists the recorded responder certificates as
// "serial STATE".
func responderRecords(t *testing.T, c *testCA) []string {
	t.Helper()
	var out []string
	err := c.store.ResponderCertificates(func(r *storev1.ResponderCertificate) error {
		out = append(out, SerialHex(r.Serial)+" "+r.State.String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustECDSA(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pin is the SHA-256 of the key's SubjectPublicKeyInfo DER, as an operator
// enrolls it.
func pin(t *testing.T, k crypto.Signer) [sha256.Size]byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(spki)
}

// responderCSR is a responder's PKCS#10 request, its signature broken when
// asked.
func responderCSR(t *testing.T, k crypto.Signer, broken bool) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "responder"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	if broken {
		der[len(der)-3] ^= 0xff // inside the signature value
	}
	return der
}
