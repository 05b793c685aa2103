package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/caller"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/serial"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
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
	// State is where it stands (R-K1): ACTIVE issues; SUPERSEDED and
	// COMPROMISED sign their CRLs and OCSP responders; PENDING, RETIRED
	// and DESTROYED sign nothing.
	State storev1.KeyState
	// Links, after the first generation: this generation's key certified
	// by the previous one's (NewWithOld) and the previous key certified by
	// this one's (OldWithNew), DER; empty when the previous key signed
	// none (it was compromised).
	NewWithOld, OldWithNew []byte
}

// IssuerGenerations lists every issuer key generation, ordered by profile
// then generation, with its state: the live set, which a rotation, an
// activation or a retirement changes while the CA runs (Config.
// OnIssuersChanged says when). It is safe for concurrent use.
func (c *CA) IssuerGenerations() []IssuerGeneration {
	list := c.gens.Load().list
	out := make([]IssuerGeneration, 0, len(list))
	for _, is := range list {
		out = append(out, IssuerGeneration{Name: IssuerName(is.Profile, is.Generation), Profile: is.Profile, Generation: is.Generation,
			Certificate: is.Certificate.Raw, State: is.State, NewWithOld: is.LinkNewWithOldDer, OldWithNew: is.LinkOldWithNewDer})
	}
	return out
}

// issuerByName finds an issuer key generation by its short name.
func (c *CA) issuerByName(name string) (Profile, uint32, bool) {
	for _, is := range c.gens.Load().list {
		if IssuerName(is.Profile, is.Generation) == name {
			return is.Profile, is.Generation, true
		}
	}
	return 0, 0, false
}

// Responder certification defaults (R-R6).
const (
	// DefaultResponderValidity is the longest a delegated responder
	// certificate lives. It carries id-pkix-ocsp-nocheck (RFC 6960
	// §4.2.2.2.1), so relying parties never check its status: a responder
	// certificate an operator revokes stops being usable when it expires
	// and is not renewed. The lifetime is that window.
	DefaultResponderValidity = 24 * time.Hour
	// MaxResponderValidity is the longest an operator may make it
	// (ResponderPolicy.MaxValidity, ocsp.responder_validity): a
	// weekend's outage of the CA without replicas going dark, and no
	// longer a revoked responder stays usable.
	MaxResponderValidity = 72 * time.Hour
	// responderSkew is how far notBefore may lie from now, either way.
	responderSkew = time.Hour
)

// ResponderPolicy says which keys may be certified as delegated OCSP
// responders (R-R6).
type ResponderPolicy struct {
	// Replicas enrolls each replica, by its client name. A replica not
	// listed gets nothing certified.
	Replicas map[string]ReplicaEnrollment
	// EnrollAny certifies any key a replica offers: development only (the
	// CA with no clients configured, on loopback).
	EnrollAny bool
	// MaxValidity bounds a responder certificate's lifetime; default
	// DefaultResponderValidity, at most MaxResponderValidity.
	MaxValidity time.Duration
}

// ReplicaEnrollment is what the operator enrolled for one replica.
type ReplicaEnrollment struct {
	// Keys are the SHA-256 pins of the SubjectPublicKeyInfo DER of the
	// responder keys it may have certified (shomei-ocsp
	// --print-responder-keys prints them).
	Keys [][sha256.Size]byte
	// Issuers are the issuer key generations it serves ("sign-g1"); empty
	// means every one.
	Issuers []string
}

// Serves says whether the replica may answer for the issuer generation.
func (e ReplicaEnrollment) Serves(issuer string) bool {
	return len(e.Issuers) == 0 || slices.Contains(e.Issuers, issuer)
}

// ResponderRequest asks for a delegated OCSP responder certificate.
type ResponderRequest struct {
	// Issuer is the issuer key generation, e.g. "sign-g1".
	Issuer string
	// PublicKey is the responder's key; its possession is proven by the
	// caller (a CSR for a replica, the CA's own HSM for the local path).
	PublicKey crypto.PublicKey
	// NotBefore and NotAfter are what the responder asks for; notAfter is
	// shortened to the policy's MaxValidity and the issuer's validity.
	NotBefore, NotAfter time.Time
	// Replica names the replica it is for; empty for the CA's own
	// responder, whose keys are in the CA's HSM.
	Replica string
}

// CertifyResponder has the issuer key generation req.Issuer sign a
// delegated OCSP responder certificate (R-R6) after checking, here and not
// at the API, that the key is RSA 2048–4096 or ECDSA P-256/P-384, the
// validity is bounded, the key is enrolled for that replica and that issuer
// and was never revoked. Like issuance it records before it signs: the
// certificate is stored PENDING with its audit record (R-K3) first, signed,
// then completed. The audit record names the caller (ca/caller).
func (c *CA) CertifyResponder(ctx context.Context, req ResponderRequest) ([]byte, error) {
	der, err := c.certifyResponder(ctx, req)
	if c.metrics != nil {
		c.metrics.responder(req, err)
	}
	return der, err
}

func (c *CA) certifyResponder(ctx context.Context, req ResponderRequest) ([]byte, error) {
	p, gen, ok := c.issuerByName(req.Issuer)
	if !ok {
		return nil, refuse(KindNotFound, "issuer", "R-R6", "no issuer key generation is named %q", req.Issuer)
	}
	if err := checkResponderKey(req.PublicKey); err != nil {
		return nil, err
	}
	pin, err := ocsp.KeyPin(req.PublicKey)
	if err != nil {
		return nil, refuse(KindInvalid, "csr", "R-R6", "the key does not encode: %v", err)
	}
	if err := c.checkEnrollment(req, pin); err != nil {
		return nil, err
	}
	now := c.now()
	notBefore, notAfter, err := c.responderValidity(req, now)
	if err != nil {
		return nil, err
	}
	cert, signer, err := c.IssuerSigner(p, gen)
	if err != nil {
		return nil, err
	}
	notBefore, notAfter = maxTime(notBefore, cert.NotBefore), minTime(notAfter, cert.NotAfter)
	if !notBefore.Before(notAfter) {
		return nil, refuse(KindPrecondition, "issuer", "R-R6", "issuer %s is not valid at %s", req.Issuer, notBefore.UTC().Format(time.RFC3339))
	}
	return c.signResponder(ctx, responderGrant{req: req, pin: pin, issuer: cert, signer: signer, now: now, notBefore: notBefore, notAfter: notAfter})
}

// checkEnrollment: a replica's key must be enrolled for it, and the replica
// must serve the issuer (R-R6). The CA's own responders (no replica) hold
// their keys in its HSM.
func (c *CA) checkEnrollment(req ResponderRequest, pin string) error {
	pol := c.cfg.Responders
	if req.Replica == "" || pol.EnrollAny {
		return nil
	}
	enr, ok := pol.Replicas[req.Replica]
	switch {
	case !ok:
		return refuse(KindPermission, "csr", "R-R6", "replica %s has no responder keys enrolled", req.Replica)
	case !enr.Serves(req.Issuer):
		return refuse(KindPermission, "issuer", "R-R6", "replica %s does not serve issuer %s", req.Replica, req.Issuer)
	case !enrolled(enr.Keys, pin):
		return refuse(KindPrecondition, "csr", "R-R6",
			"key %s is not enrolled for replica %s: an operator adds it to that client's responder_keys", pin, req.Replica)
	}
	return nil
}

// responderValidity is the validity asked for, in whole seconds: notBefore
// within responderSkew of now (a minute ago when not given), notAfter at
// most the policy's MaxValidity later (R-R6).
func (c *CA) responderValidity(req ResponderRequest, now time.Time) (notBefore, notAfter time.Time, err error) {
	notBefore, notAfter = req.NotBefore.Truncate(time.Second), req.NotAfter.Truncate(time.Second)
	if notBefore.IsZero() {
		notBefore = now.Add(-time.Minute).Truncate(time.Second)
	}
	if notBefore.Before(now.Add(-responderSkew)) || notBefore.After(now.Add(responderSkew)) {
		return notBefore, notAfter, refuse(KindInvalid, "not_before", "R-R6", "%s is more than %v from now", notBefore.UTC().Format(time.RFC3339), responderSkew)
	}
	maxValidity := c.cfg.Responders.MaxValidity
	if maxValidity <= 0 {
		maxValidity = DefaultResponderValidity
	}
	maxValidity = min(maxValidity, MaxResponderValidity)
	if notAfter.IsZero() || notAfter.After(notBefore.Add(maxValidity)) {
		notAfter = notBefore.Add(maxValidity)
	}
	if !notBefore.Before(notAfter) {
		return notBefore, notAfter, refuse(KindInvalid, "not_after", "R-R6", "is not after not_before")
	}
	return notBefore, notAfter, nil
}

// responderGrant is a responder certification that passed every check.
type responderGrant struct {
	req                 ResponderRequest
	pin                 string
	issuer              *x509.Certificate
	signer              crypto.Signer
	now                 time.Time
	notBefore, notAfter time.Time
}

// signResponder records the responder certificate PENDING with its audit
// record, has the issuer sign it, and records it ISSUED; a failure after
// the record abandons it.
func (c *CA) signResponder(ctx context.Context, g responderGrant) ([]byte, error) {
	req, pin, notBefore, notAfter, now := g.req, g.pin, g.notBefore, g.notAfter, g.now
	sn, err := serial.New()
	if err != nil {
		return nil, err
	}
	spki, _ := x509.MarshalPKIXPublicKey(req.PublicKey)
	sum := sha256.Sum256(spki)
	rec := &storev1.ResponderCertificate{Serial: sn.Bytes(), Issuer: req.Issuer, Replica: req.Replica, PublicKeySha256: sum[:],
		NotBefore: timestamppb.New(notBefore), NotAfter: timestamppb.New(notAfter), State: storev1.CertState_CERT_STATE_PENDING,
		CreatedAt: timestamppb.New(now), Actor: c.actor(ctx)}
	audit := &storev1.AuditRecord{Time: timestamppb.New(now), Actor: rec.Actor, Action: store.ActionResponderCertify,
		Fields: []*storev1.AuditField{
			{Key: "issuer", Value: req.Issuer},
			{Key: "serial", Value: fmt.Sprintf("%x", rec.Serial)},
			{Key: "replica", Value: req.Replica},
			{Key: "key", Value: pin},
			{Key: "not_before", Value: notBefore.UTC().Format(time.RFC3339)},
			{Key: "not_after", Value: notAfter.UTC().Format(time.RFC3339)},
		}}
	if err := c.cfg.Store.ReserveResponder(rec, audit); err != nil {
		if errors.Is(err, store.ErrResponderKeyRevoked) {
			return nil, &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"csr", "R-R6",
				fmt.Sprintf("key %s had a responder certificate revoked by an operator: it is never certified again; generate a new key", pin)}}}
		}
		return nil, err
	}
	der, err := ocsp.NewResponderCertificate(g.issuer, g.signer, req.PublicKey, notBefore, notAfter, sn)
	if err == nil {
		err = c.cfg.Store.CompleteResponder(rec.Serial, der)
	}
	if err != nil {
		if aerr := c.cfg.Store.AbandonResponder(rec.Serial); aerr != nil {
			c.log.Error("could not mark a failed responder certification abandoned", "serial", fmt.Sprintf("%x", rec.Serial), "error", aerr)
		}
		if errors.Is(err, hsm.ErrTokenUnavailable) || errors.Is(err, hsm.ErrPoolExhausted) {
			return nil, &Error{Kind: KindUnavailable, Err: err}
		}
		return nil, err
	}
	c.log.Info("OCSP responder certified", "issuer", req.Issuer, "replica", req.Replica, "serial", fmt.Sprintf("%x", rec.Serial),
		"key", pin, "not_after", notAfter)
	return der, nil
}

// ResponderKey is the key of a replica's responder request (PKCS#10 DER)
// once its proof of possession verifies. Like a card's request (parseCSR)
// the size and the key are checked first: the signature, whose cost grows
// with the key, is verified last, so that a replica credential cannot make
// the CA spend seconds on one call.
func ResponderKey(der []byte) (crypto.PublicKey, error) {
	if len(der) > MaxCSRBytes {
		return nil, refuse(KindInvalid, "csr", "R-R6", "%d bytes: a responder's request is at most %d bytes", len(der), MaxCSRBytes)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, refuse(KindInvalid, "csr", "R-R6", "is not a DER PKCS#10 request: %v", err)
	}
	if err := checkResponderKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, refuse(KindInvalid, "csr", "R-R6", "signature does not verify with its public key (proof of possession)")
	}
	return csr.PublicKey, nil
}

// checkResponderKey: RSA of 2048 to 4096 bits with exponent 65537, or
// ECDSA P-256 or P-384.
func checkResponderKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 4096 || k.E != 65537 {
			return refuse(KindInvalid, "csr", "R-R6", "RSA key of %d bits with exponent %d; 2048 to 4096 bits and exponent 65537", n, k.E)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return refuse(KindInvalid, "csr", "R-R6", "ECDSA key on %s; P-256 or P-384", k.Curve.Params().Name)
		}
	default:
		return refuse(KindInvalid, "csr", "R-R6", "%T keys are not responder keys; RSA or ECDSA", pub)
	}
	return nil
}

func enrolled(keys [][sha256.Size]byte, pin string) bool {
	want, err := ocsp.ParseKeyPin(pin)
	return err == nil && slices.Contains(keys, want)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// actor is who the audit log names for a request: the authenticated caller
// (ca/caller), else this CA instance's configured actor.
func (c *CA) actor(ctx context.Context) string {
	if cl, ok := caller.From(ctx); ok {
		return cl.String()
	}
	return c.cfg.Actor
}

// LocalResponderCertifier certifies the all-in-one CA's own responder keys
// (it satisfies ocsp/responders.Certifier). Only keys held in an HSM
// (*hsm.Signer) are certified: the CA's own responder keys are enrolled by
// being in its token.
type LocalResponderCertifier struct {
	CA *CA
}

// CertifyResponder implements ocsp/responders.Certifier.
func (l LocalResponderCertifier) CertifyResponder(ctx context.Context, issuerName string, responder crypto.Signer, notBefore, notAfter time.Time) ([]byte, error) {
	if _, ok := responder.(*hsm.Signer); !ok {
		return nil, refuse(KindPermission, "responder", "R-R6", "the CA's own responder keys must be in its HSM, not %T", responder)
	}
	ctx = caller.With(ctx, caller.Caller{Kind: caller.Local, Name: l.CA.cfg.Actor, Via: "none"})
	return l.CA.CertifyResponder(ctx, ResponderRequest{Issuer: issuerName, PublicKey: responder.Public(), NotBefore: notBefore, NotAfter: notAfter})
}

// ReplicaServes says whether the replica named may follow and answer for
// the issuer key generation: the issuers its enrollment lists, or all when
// it lists none. A replica not enrolled serves none (unless EnrollAny).
func (c *CA) ReplicaServes(replica, issuerName string) bool {
	pol := c.cfg.Responders
	if pol.EnrollAny {
		return true
	}
	enr, ok := pol.Replicas[replica]
	return ok && enr.Serves(issuerName)
}
