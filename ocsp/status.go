package ocsp

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// CertStatus is a certificate's status in a response (RFC 6960 §4.2.1).
//
// The zero value is no status at all: a Source that returns it has failed,
// and the request is answered internalError rather than "good".
type CertStatus int

// Certificate statuses.
const (
	// Good: the certificate is not revoked (it may have expired; the
	// Source decides what it says for expired certificates).
	Good CertStatus = iota + 1
	// Revoked, with RevokedAt and Reason.
	Revoked
	// Unknown: the responder does not know the serial, for example because
	// the issuer never issued it.
	Unknown
)

func (s CertStatus) String() string {
	switch s {
	case Good:
		return "good"
	case Revoked:
		return "revoked"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("CertStatus(%d)", int(s))
}

// Status is what a Source knows about one certificate.
type Status struct {
	Status CertStatus
	// RevokedAt is when the CA recorded the revocation: the response's
	// revocationTime (R-R3's revocationDate). Revoked only; required.
	RevokedAt time.Time
	// Reason is the RFC 5280 CRLReason code. 0 (unspecified) is left out of
	// the response, as RFC 5280 §5.3.1 asks. A reason a CRL entry may not
	// carry (x509enc.CheckReason: 6 certificateHold, 7 unassigned, 8
	// removeFromCRL, 10 aACompromise) is a Source failure, so that OCSP
	// and the CRL never disagree.
	Reason int
	// InvalidityDate is the revocation event's effective time (R-R3). When
	// set on a revoked certificate it is sent as the invalidityDate
	// singleExtension (RFC 6960 §4.4.5 admits every RFC 5280 CRL entry
	// extension there; RFC 5280 §5.3.2 defines it). Zero: not sent.
	InvalidityDate time.Time
	// ThisUpdate is when the status was last known to be correct. Zero
	// means now, which is right for a Source reading the live store; a
	// Source reading a replica reports when the replica was last in sync.
	// A ThisUpdate more than half the validity in the past is treated as a
	// Source failure (the response would be nearly stale when sent).
	ThisUpdate time.Time
}

// Source answers the status of a serial of an issuer. It is called once for
// each response the responder signs, never for a response served from the
// cache: whoever changes a status calls Responder.Invalidate.
//
// The issuer passed is one of Config.Issuers, so a Source can tell issuer
// key generations apart by pointer.
type Source interface {
	Status(ctx context.Context, issuer *Issuer, serial *big.Int) (Status, error)
}

// check refuses a Status no response can be made from.
func (s Status) check() error {
	switch s.Status {
	case Good, Unknown:
		return nil
	case Revoked:
		if s.RevokedAt.IsZero() {
			return fmt.Errorf("revoked without RevokedAt")
		}
		if err := x509enc.CheckReason(s.Reason); err != nil {
			return fmt.Errorf("reason %d is not an RFC 5280 CRLReason for OCSP: %w", s.Reason, err)
		}
		return nil
	}
	return fmt.Errorf("status is %v, not good, revoked or unknown", s.Status)
}
