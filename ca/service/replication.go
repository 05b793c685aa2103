package service

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/caller"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ocsp"
)

// ReplicationConfig configures the Replication service.
type ReplicationConfig struct {
	CA    *ca.CA
	Store *store.Store
	Auth  ReplicaAuthorizer
	// Poll is how often a stream looks at the status-change log when not
	// notified; default 250 ms. Revocations notify at once (Notify);
	// issuance is picked up by the poll.
	Poll time.Duration
	// Heartbeat is the longest gap between messages on a stream; default
	// 5 s. Each message tells the replica it was in sync at sent_at.
	Heartbeat time.Duration
	// Batch is the most statuses in one message; default 1,000.
	Batch int
	// Stopping, when set, is closed when the CA starts to stop: every
	// Follow stream then ends with codes.Unavailable, so that the gRPC
	// server's graceful stop, which waits for the calls in flight, does
	// not wait its whole timeout for streams that never end by themselves,
	// and the replica knows at once to reconnect (issue 13).
	Stopping <-chan struct{}
	Now      func() time.Time
	Log      *slog.Logger
}

// Replication implements cav1.ReplicationServer: the feed OCSP replicas
// follow (R-R4, R-R6).
type Replication struct {
	cav1.UnimplementedReplicationServer
	cfg ReplicationConfig

	mu   sync.Mutex
	wake chan struct{} // closed and replaced by Notify
}

// NewReplication checks cfg and makes the service.
func NewReplication(cfg ReplicationConfig) (*Replication, error) {
	if cfg.CA == nil || cfg.Store == nil || cfg.Auth == nil {
		return nil, errors.New("service: replication needs a CA, a store and an authorizer")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 5 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Replication{cfg: cfg, wake: make(chan struct{})}, nil
}

// Notify wakes every stream to read the status-change log now.
func (r *Replication) Notify() {
	r.mu.Lock()
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

func (r *Replication) woken() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wake
}

// Follow implements cav1.ReplicationServer.
func (r *Replication) Follow(req *cav1.FollowRequest, stream cav1.Replication_FollowServer) error {
	ctx := stream.Context()
	name, err := r.cfg.Auth.AuthorizeReplica(ctx)
	if err != nil {
		return err
	}
	head, err := r.cfg.Store.Revision()
	if err != nil {
		return status.Errorf(codes.Unavailable, "reading the status-change log: %v", err)
	}
	rev := req.GetSinceRevision()
	if rev > head {
		return status.Errorf(codes.FailedPrecondition,
			"since_revision %d is ahead of this CA's status-change log (%d): the replica follows another CA or the CA's store was replaced; start again from 0", rev, head)
	}
	if rev == 0 {
		r.cfg.Log.Info("replica snapshot", "replica", name, "revision", head)
		if err := r.snapshot(stream, name, head); err != nil {
			return err
		}
		rev = head
	} else {
		r.cfg.Log.Info("replica resumes", "replica", name, "since_revision", rev, "ca_revision", head)
	}
	// last is when the stream last sent, on the wall clock (cfg.Now is for
	// sent_at only). A resumed stream sends at once, with no changes a
	// heartbeat at the head: until its first message a replica cannot tell
	// that it follows again (connected, lag, thisUpdate), and the next
	// heartbeat is seconds away (issue 13). A snapshot's completion marker
	// told it already.
	var last time.Time
	if req.GetSinceRevision() == 0 {
		last = time.Now()
	}
	for {
		if r.stopping() {
			return errStopping
		}
		wake := r.woken()
		batch, next, full, err := r.changes(name, rev)
		if err != nil {
			return status.Errorf(codes.Unavailable, "reading the status-change log: %v", err)
		}
		if len(batch) > 0 || next != rev || time.Since(last) >= r.cfg.Heartbeat {
			if next == rev {
				if next, err = r.cfg.Store.Revision(); err != nil {
					return status.Errorf(codes.Unavailable, "reading the status-change log: %v", err)
				}
				// A heartbeat claims sync up to the head only when
				// nothing lies between rev and it.
				if next != rev {
					continue
				}
			}
			// The CA's head: next, unless the batch was full and more
			// is waiting (read once more: the replica's lag).
			head := next
			if full {
				if head, err = r.cfg.Store.Revision(); err != nil {
					return status.Errorf(codes.Unavailable, "reading the status-change log: %v", err)
				}
			}
			if err := stream.Send(&cav1.FollowResponse{Statuses: batch, Revision: next, HeadRevision: max(head, next), SentAt: timestamppb.New(r.cfg.Now())}); err != nil {
				return err
			}
			rev, last = next, time.Now()
			if full {
				continue // more is waiting
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.cfg.Stopping: // nil when unset: never ready
			return errStopping
		case <-wake:
		case <-time.After(min(r.cfg.Poll, time.Until(last.Add(r.cfg.Heartbeat)))):
		}
	}
}

// errStopping ends a Follow stream when the CA stops: Unavailable, which
// a replica retries.
var errStopping = status.Error(codes.Unavailable, "the CA is stopping; follow again from the same revision when it is back")

// stopping says whether Stopping is closed.
func (r *Replication) stopping() bool {
	select {
	case <-r.cfg.Stopping:
		return true
	default:
		return false
	}
}

// snapshot sends the status of every issued certificate, then marks the
// snapshot complete at revision head. Certificates change while it pages
// through them; every change after head is sent afterwards, and a status
// only moves from good to revoked, so the replica converges.
//
// A replica gets the statuses of the issuers it serves only
// (ca.CA.ReplicaServes).
func (r *Replication) snapshot(stream cav1.Replication_FollowServer, replica string, head uint64) error {
	var after []byte
	for {
		if r.stopping() {
			return errStopping
		}
		var batch []*cav1.CertificateStatus
		last, err := r.cfg.Store.CertificatesAfter(after, r.cfg.Batch, func(rec *storev1.Certificate) error {
			if st, ok := certificateStatus(rec, nil); ok && r.serves(replica, rec) {
				batch = append(batch, st)
			}
			return nil
		})
		if err != nil {
			return status.Errorf(codes.Unavailable, "reading certificates: %v", err)
		}
		if last == nil {
			break
		}
		after = last
		if len(batch) == 0 {
			continue
		}
		if err := stream.Send(&cav1.FollowResponse{Statuses: batch, Revision: head, HeadRevision: head, Snapshot: true, SentAt: timestamppb.New(r.cfg.Now())}); err != nil {
			return err
		}
	}
	return stream.Send(&cav1.FollowResponse{Revision: head, HeadRevision: head, SentAt: timestamppb.New(r.cfg.Now())})
}

// changes reads up to Batch changes after rev and returns the statuses
// they lead to (the certificates' current statuses) and the revision of
// the last one; full says a whole batch was read, so more may be waiting.
func (r *Replication) changes(replica string, rev uint64) (batch []*cav1.CertificateStatus, next uint64, full bool, err error) {
	next, n := rev, 0
	err = r.cfg.Store.ChangedCertificates(rev, r.cfg.Batch, func(ch *storev1.StatusChange, rec *storev1.Certificate) error {
		if st, ok := certificateStatus(rec, ch.Time); ok && r.serves(replica, rec) {
			batch = append(batch, st)
		}
		next, n = ch.Revision, n+1
		return nil
	})
	if err != nil {
		return nil, rev, false, err
	}
	return batch, next, n == r.cfg.Batch, nil
}

// certificateStatus is what the stream sends of rec: its OCSP status
// (ocsp.RecordedStatus, the conversion the CA's own responder and the
// replica's use), recorded at recorded (nil in a snapshot). ok is false for
// a certificate whose status is unknown (never delivered), which is not
// sent: the replica answers unknown for a serial it does not hold.
func certificateStatus(rec *storev1.Certificate, recorded *timestamppb.Timestamp) (st *cav1.CertificateStatus, ok bool) {
	s := ocsp.RecordedStatus(rec.State == storev1.CertState_CERT_STATE_ISSUED, rec.GetRevocation())
	if s.Status == ocsp.Unknown {
		return nil, false
	}
	st = &cav1.CertificateStatus{Serial: rec.Serial, Issuer: ca.IssuerName(rec.Profile, rec.IssuerGeneration), NotAfter: rec.NotAfter, RecordedAt: recorded}
	if s.Status == ocsp.Revoked {
		st.Revocation = &cav1.StatusRevocation{RevokedAt: timestamppb.New(s.RevokedAt), Reason: int32(s.Reason)}
		if !s.InvalidityDate.IsZero() {
			st.Revocation.InvalidityDate = timestamppb.New(s.InvalidityDate)
		}
	}
	return st, true
}

// ListIssuers implements cav1.ReplicationServer.
func (r *Replication) ListIssuers(ctx context.Context, _ *cav1.ListIssuersRequest) (*cav1.ListIssuersResponse, error) {
	name, err := r.cfg.Auth.AuthorizeReplica(ctx)
	if err != nil {
		return nil, err
	}
	out := &cav1.ListIssuersResponse{}
	for _, g := range r.cfg.CA.IssuerGenerations() {
		if !r.cfg.CA.ReplicaServes(name, g.Name) {
			continue
		}
		out.Issuers = append(out.Issuers, &cav1.IssuerGeneration{Name: g.Name, CertificateDer: g.Certificate})
	}
	return out, nil
}

// CertifyResponder implements cav1.ReplicationServer. The request's key
// (ca.ResponderKey) and what may be certified, for whom and for how long
// (ca.CertifyResponder) are the domain's.
func (r *Replication) CertifyResponder(ctx context.Context, req *cav1.CertifyResponderRequest) (*cav1.CertifyResponderResponse, error) {
	name, err := r.cfg.Auth.AuthorizeReplica(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := caller.From(ctx); !ok {
		// Until the gRPC layer names every caller (ca/caller), the
		// replica is named here, for the audit log.
		ctx = caller.With(ctx, caller.Caller{Name: name, Kind: caller.Replica, Via: "token"})
	}
	pub, err := ca.ResponderKey(req.GetCsr())
	if err != nil {
		return nil, StatusError(r.cfg.Log, err)
	}
	der, err := r.cfg.CA.CertifyResponder(ctx, ca.ResponderRequest{Issuer: req.GetIssuer(), PublicKey: pub,
		NotBefore: optionalTime(req.GetNotBefore()), NotAfter: optionalTime(req.GetNotAfter()), Replica: name})
	if err != nil {
		r.cfg.Log.Warn("replica responder certification refused", "replica", name, "issuer", req.GetIssuer(), "error", err)
		return nil, StatusError(r.cfg.Log, err)
	}
	r.cfg.Log.Info("replica responder certified", "replica", name, "issuer", req.GetIssuer())
	return &cav1.CertifyResponderResponse{CertificateDer: der}, nil
}

// optionalTime is ts, or the zero time when it is unset.
func optionalTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// serves says whether the replica follows rec's issuer.
func (r *Replication) serves(replica string, rec *storev1.Certificate) bool {
	return r.cfg.CA.ReplicaServes(replica, ca.IssuerName(rec.Profile, rec.IssuerGeneration))
}
