package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Signer is a crypto.Signer whose private key stays in the token.
//
// RSA keys sign PKCS #1 v1.5 (crypto.SignerOpts is a crypto.Hash) or PSS
// (*rsa.PSSOptions) over SHA-256, SHA-384 or SHA-512 digests; ECDSA keys
// return ASN.1 DER signatures, as crypto/ecdsa does. A Signer survives the
// token going away and coming back: it finds its key again by label and id.
type Signer struct {
	tok *Token
	ref KeyRef
	pub crypto.PublicKey
	// signOp names the signing operation in errors, made once: a Signer
	// signs many times.
	signOp string

	mu        sync.Mutex
	handle    pkcs11.ObjectHandle
	handleGen uint64 // the Token connection the handle was found in
	hasHandle bool
}

var _ crypto.Signer = (*Signer)(nil)

// Signer returns a signer for the one private key with ref's label and id.
// Use SignerFor when the key's certificate is known.
func (t *Token) Signer(ctx context.Context, ref KeyRef) (*Signer, error) {
	if err := ref.check(); err != nil {
		return nil, err
	}
	op := "find key " + ref.String()
	s := &Signer{tok: t, ref: ref, signOp: signOpOf(ref)}
	err := t.do(ctx, op, func(ses session) error {
		h, err := t.findPrivateKey(ses, ref)
		if err != nil {
			return err
		}
		s.pub, err = publicKeyOf(ses, ref, h)
		if err != nil {
			return err
		}
		s.handle, s.handleGen, s.hasHandle = h, ses.gen, true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := algorithmOf(s.pub); err != nil {
		return nil, t.explain(op, err)
	}
	return s, nil
}

// SignerFor returns a signer for the key with ref and checks it against the
// certificate it is supposed to belong to: the public keys must be equal, and
// a test signature made in the token must verify with the certificate's key.
func (t *Token) SignerFor(ctx context.Context, ref KeyRef, cert *x509.Certificate) (*Signer, error) {
	s, err := t.Signer(ctx, ref)
	if err != nil {
		return nil, err
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if k, ok := cert.PublicKey.(equaler); !ok || !k.Equal(s.pub) {
		return nil, fmt.Errorf("hsm: token %q: key %s and certificate %q: %w (different public keys)", t.cfg.TokenLabel, ref, cert.Subject, ErrKeyMismatch)
	}
	if err := SelfTest(ctx, s, cert.PublicKey); err != nil {
		return nil, err
	}
	return s, nil
}

// SelfTest signs a random SHA-256 digest with s and verifies the signature
// with pub, proving that s holds pub's private key and works.
func SelfTest(ctx context.Context, s *Signer, pub crypto.PublicKey) error {
	digest := make([]byte, 32)
	if _, err := rand.Read(digest); err != nil {
		return err
	}
	sig, err := s.SignContext(ctx, digest, crypto.SHA256)
	if err != nil {
		return err // it says which token and key, and that it was signing
	}
	if p, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); ok && p.Equal(s.pub) {
		return nil // SignContext verified the signature with this key
	}
	var ok bool
	switch k := pub.(type) {
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, digest, sig)
	default:
		return fmt.Errorf("hsm: %w: %T public key", ErrUnsupported, pub)
	}
	if !ok {
		return fmt.Errorf("hsm: token %q: key %s: %w (a test signature does not verify with the expected public key)", s.tok.cfg.TokenLabel, s.ref, ErrKeyMismatch)
	}
	return nil
}

// signOpOf is the name of signing with ref's key, for errors.
func signOpOf(ref KeyRef) string { return signOpPrefix + ref.String() }

const signOpPrefix = "sign with key "

// isSignOp reports whether op is a signature (signOpOf), for the error
// kinds of metrics.go.
func isSignOp(op string) bool { return strings.HasPrefix(op, signOpPrefix) }

// Public returns the public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Ref returns the key's label and id.
func (s *Signer) Ref() KeyRef { return s.ref }

// Sign signs digest in the token. rand is not used: the token has its own.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.SignContext(context.Background(), digest, opts)
}

// SignContext is Sign with a context that bounds the wait for a session.
//
// Every signature is verified with the public key before it is returned: a
// fault in the token's RSA-CRT computation yields a signature that leaks
// the private key to whoever sees it, and a wrong handle signs with another
// key. Such a signature fails with ErrBadSignature and is never returned.
func (s *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	plan, err := s.plan(digest, opts)
	if err != nil {
		return nil, err
	}
	op := s.signOp
	start := time.Now()
	var sig []byte
	err = s.tok.do(ctx, op, func(ses session) error {
		for try := 0; ; try++ {
			h, err := s.keyHandle(ses)
			if err != nil {
				return err
			}
			err = ses.ctx.SignInit(ses.h, []*pkcs11.Mechanism{plan.mech}, h)
			if err == nil {
				sig, err = ses.ctx.Sign(ses.h, plan.input)
			}
			if isStaleHandle(err) {
				// The key went out of sight: the token logged out,
				// or it reloaded its objects under new handles.
				if lerr := loggedIn(ses); lerr != nil {
					return lerr
				}
				if try == 0 {
					s.forgetHandle()
					continue
				}
			}
			return err
		}
	})
	if err != nil {
		return nil, err
	}
	if sig, err = plan.finish(sig); err != nil {
		s.forgetHandle() // if a wrong handle signed, find the key afresh
		s.tok.metrics.failed(ctx, err, true)
		return nil, s.tok.explain(op, err)
	}
	s.tok.metrics.observeSign(start)
	return sig, nil
}

// isStaleHandle reports whether err means an object handle we cached is no
// longer valid (for instance after the token reloaded its objects).
func isStaleHandle(err error) bool {
	return isCode(err, pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID)
}

// keyHandle returns the private key's handle for the session's connection;
// object handles are shared by all sessions of the application, but may
// change when the token is reconnected.
func (s *Signer) keyHandle(ses session) (pkcs11.ObjectHandle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hasHandle && s.handleGen == ses.gen {
		return s.handle, nil
	}
	h, err := s.tok.findPrivateKey(ses, s.ref)
	if err != nil {
		return 0, vanished(err)
	}
	s.handle, s.handleGen, s.hasHandle = h, ses.gen, true
	return h, nil
}

func (s *Signer) forgetHandle() {
	s.mu.Lock()
	s.hasHandle = false
	s.mu.Unlock()
}

// DigestInfo prefixes for PKCS #1 v1.5 (RFC 8017 §9.2, note 1): the DER of
// DigestInfo{AlgorithmIdentifier{hash, NULL}, OCTET STRING} up to the digest.
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// pssParams maps a hash to its PKCS#11 hash mechanism and MGF1 variant.
var pssParams = map[crypto.Hash][2]uint{
	crypto.SHA256: {pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256},
	crypto.SHA384: {pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384},
	crypto.SHA512: {pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512},
}

// signPlan is how to sign one digest: the mechanism, the bytes to give it,
// and finish, which turns the token's output into the signature to return
// after checking that it verifies.
type signPlan struct {
	mech   *pkcs11.Mechanism
	input  []byte
	finish func(raw []byte) ([]byte, error)
}

// plan chooses the PKCS#11 mechanism and the bytes to sign.
func (s *Signer) plan(digest []byte, opts crypto.SignerOpts) (signPlan, error) {
	hash := opts.HashFunc()
	if hash == 0 {
		return signPlan{}, fmt.Errorf("hsm: %w: signing a message without a hash", ErrUnsupported)
	}
	if _, ok := digestInfoPrefix[hash]; !ok {
		return signPlan{}, fmt.Errorf("hsm: %w: hash %v (use SHA-256, SHA-384 or SHA-512)", ErrUnsupported, hash)
	}
	if len(digest) != hash.Size() {
		return signPlan{}, fmt.Errorf("hsm: digest is %d bytes, %v needs %d", len(digest), hash, hash.Size())
	}
	bad := func(err error) error {
		return fmt.Errorf("%w (a fault in the HSM, or the wrong key; the signature was discarded): %w", ErrBadSignature, err)
	}
	switch pub := s.pub.(type) {
	case *ecdsa.PublicKey:
		finish := func(raw []byte) ([]byte, error) {
			sig, err := ecdsaDER(raw, pub.Curve)
			if err != nil {
				return nil, err
			}
			if !ecdsa.VerifyASN1(pub, digest, sig) {
				return nil, bad(errors.New("ECDSA verification failed"))
			}
			return sig, nil
		}
		return signPlan{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil), digest, finish}, nil
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			salt := pss.SaltLength
			switch salt {
			case rsa.PSSSaltLengthAuto, rsa.PSSSaltLengthEqualsHash:
				// Auto lets the signer choose; the hash length is what
				// RFC 8017 recommends and what every verifier accepts.
				salt = hash.Size()
			}
			if salt < 0 {
				return signPlan{}, fmt.Errorf("hsm: PSS salt length %d is invalid", pss.SaltLength)
			}
			p := pssParams[hash]
			finish := func(sig []byte) ([]byte, error) {
				if err := rsa.VerifyPSS(pub, hash, digest, sig, &rsa.PSSOptions{SaltLength: salt, Hash: hash}); err != nil {
					return nil, bad(err)
				}
				return sig, nil
			}
			return signPlan{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(p[0], p[1], uint(salt))), digest, finish}, nil
		}
		input := append(append([]byte{}, digestInfoPrefix[hash]...), digest...)
		finish := func(sig []byte) ([]byte, error) {
			if err := rsa.VerifyPKCS1v15(pub, hash, digest, sig); err != nil {
				return nil, bad(err)
			}
			return sig, nil
		}
		return signPlan{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil), input, finish}, nil
	}
	return signPlan{}, fmt.Errorf("hsm: %w: %T key", ErrUnsupported, s.pub)
}

// ecdsaDER turns the r||s signature of CKM_ECDSA into ASN.1 DER. Each half
// is as long as the curve's order (PKCS#11 v3.0 §2.3.1).
func ecdsaDER(raw []byte, curve elliptic.Curve) ([]byte, error) {
	n := (curve.Params().N.BitLen() + 7) / 8
	if len(raw) != 2*n {
		return nil, fmt.Errorf("ECDSA signature of %d bytes from the token is malformed (%s needs %d)", len(raw), curve.Params().Name, 2*n)
	}
	r := new(big.Int).SetBytes(raw[:n])
	sv := new(big.Int).SetBytes(raw[n:])
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(sv)
	})
	return b.Bytes()
}

// Check finds the signer's key in the token again and reads its public
// key, without signing: a cheap proof that the token is reachable, logged
// in and still holds this key, for readiness probes. Like every operation
// it recovers (new session, new login, reconnect, module re-initialisation)
// when the token went away and came back, so a probe also brings a
// returned token back into use before the next signature needs it.
func (s *Signer) Check(ctx context.Context) error {
	op := "check key " + s.ref.String()
	return s.tok.do(ctx, op, func(ses session) error {
		h, err := s.tok.findPrivateKey(ses, s.ref)
		if err != nil {
			return vanished(err)
		}
		pub, err := publicKeyOf(ses, s.ref, h)
		if err != nil {
			return err
		}
		if k, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(s.pub) {
			return fmt.Errorf("%w (the key found under its label and id is another one)", ErrKeyMismatch)
		}
		s.mu.Lock()
		s.handle, s.handleGen, s.hasHandle = h, ses.gen, true
		s.mu.Unlock()
		return nil
	})
}

// keyVanished is the key of a Signer, found and checked before, missing
// from a logged-in session: the token lost its objects (its storage was
// moved away, or it was swapped) rather than the key never having been
// there. Recovery re-initialises the module, which makes the library read
// the token afresh; it brings the key back once the token's storage is
// back, without a restart. It is ErrTokenUnavailable, so callers answer
// "try again", and ErrKeyNotFound.
type keyVanished struct{ error }

func (e keyVanished) Error() string {
	return fmt.Sprintf("%v: %v (it was there before: the token lost its objects)", ErrTokenUnavailable, e.error)
}

func (e keyVanished) Unwrap() []error { return []error{ErrTokenUnavailable, e.error} }

// vanished marks a failure to find a Signer's key as keyVanished.
func vanished(err error) error {
	if errors.Is(err, ErrKeyNotFound) {
		return keyVanished{err}
	}
	return err
}
