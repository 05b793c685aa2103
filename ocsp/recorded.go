package ocsp

import (
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Revocation is a certificate's revocation as its issuer records it. The
// CA's store (api/shomei/store/v1 Revocation) and the replication stream
// that copies it to the replicas (api/shomei/ca/v1 StatusRevocation) both
// are one; a nil message means not revoked.
type Revocation interface {
	ProtoReflect() protoreflect.Message
	GetRevokedAt() *timestamppb.Timestamp
	GetReason() int32
	GetInvalidityDate() *timestamppb.Timestamp
}

// RecordedStatus is the status of a certificate from what its issuer
// records about it: the one conversion the CA's own Source, the replication
// stream and a replica's Source all use (R-R6).
//
//   - Unknown unless issued: a serial the issuer never issued, or reserved
//     and never delivered (pending, abandoned), is unknown.
//   - Revoked once rev is set (R-R2): RevokedAt is when the CA recorded it,
//     Reason its RFC 5280 code and InvalidityDate the event's effective
//     time when recorded (R-R3).
//   - Good otherwise.
//
// Expiry changes nothing: an expired certificate keeps its status.
// ThisUpdate is left zero (now); a Source answering from a copy sets it.
func RecordedStatus(issued bool, rev Revocation) Status {
	switch {
	case !issued:
		return Status{Status: Unknown}
	case rev == nil || !rev.ProtoReflect().IsValid():
		return Status{Status: Good}
	}
	st := Status{Status: Revoked, RevokedAt: rev.GetRevokedAt().AsTime(), Reason: int(rev.GetReason())}
	if inv := rev.GetInvalidityDate(); inv != nil {
		st.InvalidityDate = inv.AsTime()
	}
	return st
}
