package ca

import (
	"context"
	"crypto"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
)

// What the CA core needs of the world, declared here where it is used:
// the store (*store.Store in production) and the HSM token holding the
// issuer keys (*hsm.Token). Tests use the real ones, and wrap them only to
// inject a fault.

// CertificateStore answers what is recorded: certificates, a holder's
// certificates, and the issuer key generations (R-K1).
type CertificateStore interface {
	Certificate(serial []byte) (*storev1.Certificate, error)
	HolderCertificates(municipality, holderID string) ([]*storev1.Certificate, error)
	Issuers() ([]*storev1.IssuerKey, error)
}

// IssuanceStore records the issuance cycle of doc.go: the reservation
// (re-checking R-A2, R-A4, R-P1, R-V8 and the CRL shard's size, R-R5, in
// its transaction), its completion
// or abandonment, and the keys and inquiries issuance looks at first.
type IssuanceStore interface {
	KeyBlocked(spkiSHA256 []byte) (bool, error)
	KeyCertified(spkiSHA256 []byte) (bool, error)
	OpenInquiry(inq *storev1.Inquiry) error
	Reserve(r store.Reservation) error
	// OpenCRLShard finds the shard to plan a certificate in (R-R5).
	OpenCRLShard(name func(shard uint32) string, from uint32, size int) (uint32, error)
	// CompleteRenewal returns how many superseded certificates it revoked.
	CompleteRenewal(c store.Completion) (superseded int, err error)
	Abandon(serials [][]byte) error
	AbandonPending(before time.Time) ([][]byte, error)
}

// RevocationStore records revocations (R-R1, R-R2), events and counter
// requests alike, in one transaction each.
type RevocationStore interface {
	Revoke(r store.RevokeRequest) (*store.RevokeResult, error)
}

// ResponderStore records delegated OCSP responder certifications (R-R6)
// in the same reserve → complete or abandon order as issuance.
type ResponderStore interface {
	ReserveResponder(rec *storev1.ResponderCertificate, audit *storev1.AuditRecord) error
	CompleteResponder(serial, der []byte) error
	AbandonResponder(serial []byte) error
	AbandonPendingResponders(before time.Time) (int, error)
}

// KeyStore records the life of the issuer key generations (R-K1): a new
// generation, its activation, retirement and destruction, each with its
// audit records in one transaction, and what each generation still
// answers for.
type KeyStore interface {
	AddIssuerKey(key *storev1.IssuerKey, audit []*storev1.AuditRecord) error
	ActivateIssuerKey(p storev1.Profile, generation uint32, audit []*storev1.AuditRecord) error
	RetireIssuerKey(p storev1.Profile, generation uint32, now time.Time, audit []*storev1.AuditRecord) error
	DestroyedIssuerKey(p storev1.Profile, generation uint32, audit []*storev1.AuditRecord) error
	UnexpiredByGeneration(now time.Time) (map[store.GenerationID]store.GenerationCertificates, error)
}

// CompromiseStore records an issuer key compromise (R-K2) in steps: the
// mark, then batches of revocations (ca/store compromise.go).
type CompromiseStore interface {
	MarkCompromised(p storev1.Profile, generation uint32, now, invalidSince time.Time, actor string, fields []*storev1.AuditField) (*store.CompromiseCount, error)
	RevokeCompromised(p storev1.Profile, generation uint32, after []byte, limit int, now, invalidSince time.Time, actor string) (*store.CompromiseBatch, error)
}

// Store is everything the CA core records and reads.
type Store interface {
	CertificateStore
	IssuanceStore
	RevocationStore
	ResponderStore
	KeyStore
	CompromiseStore
}

// IssuerKeys finds an issuer key generation's private key in the HSM and
// checks it against that generation's certificate; a rotation makes a new
// one (issuer.KeyMaker) and an approved destruction destroys one.
type IssuerKeys interface {
	issuer.KeyMaker
	DestroyKey(ctx context.Context, ref hsm.KeyRef) (found bool, err error)
}

// issuerSigner is an issuer key as the CA uses it: it signs in the HSM
// (bounded by ctx) and says whether it is still usable (readiness).
type issuerSigner interface {
	crypto.Signer
	SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error)
	Check(ctx context.Context) error
}

var (
	_ Store        = (*store.Store)(nil)
	_ IssuerKeys   = (*hsm.Token)(nil)
	_ issuerSigner = (*hsm.Signer)(nil)
)
