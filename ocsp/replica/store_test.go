package replica_test

import (
	"context"
	"crypto/x509"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/ocsp/replica"
)

func open(t *testing.T) (*replica.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "replica.db")
	st, err := replica.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

func good(serial int64) *cav1.CertificateStatus {
	return &cav1.CertificateStatus{Serial: big.NewInt(serial).Bytes(), Issuer: "sign-g1"}
}

func revoked(serial int64, reason int32, at time.Time) *cav1.CertificateStatus {
	st := good(serial)
	st.Revocation = &cav1.StatusRevocation{RevokedAt: timestamppb.New(at), Reason: reason, InvalidityDate: timestamppb.New(at.Add(-time.Hour))}
	st.RecordedAt = timestamppb.New(at)
	return st
}

// TestApply: statuses only move forward (R-R2); the revision advances only
// with messages that are not snapshot pages; a reopened store keeps the
// revision and sync time; Reset starts over.
func TestApply(t *testing.T) {
	st, path := open(t)
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	sent := timestamppb.New(at.Add(time.Second))

	// A snapshot page: stored, but the revision stays 0.
	a, err := st.Apply(&cav1.FollowResponse{Statuses: []*cav1.CertificateStatus{good(1), revoked(2, 3, at)}, Revision: 7, Snapshot: true, SentAt: sent})
	if err != nil {
		t.Fatal(err)
	}
	if a.Added != 2 || len(a.Revoked) != 1 || a.Revoked[0].Int64() != 2 || len(a.New) != 0 {
		t.Errorf("snapshot page applied %+v", a)
	}
	if rev, _ := st.Revision(); rev != 0 || !st.SyncedAt().IsZero() {
		t.Errorf("after a snapshot page: revision %d, synced %v; want 0 and never", rev, st.SyncedAt())
	}
	// The end of the snapshot.
	if _, err := st.Apply(&cav1.FollowResponse{Revision: 7, SentAt: sent}); err != nil {
		t.Fatal(err)
	}
	if rev, _ := st.Revision(); rev != 7 || !st.SyncedAt().Equal(sent.AsTime()) {
		t.Errorf("after the snapshot: revision %d, synced %v", rev, st.SyncedAt())
	}
	// A replayed "good" never un-revokes; a revocation of a good one counts.
	a, err = st.Apply(&cav1.FollowResponse{Statuses: []*cav1.CertificateStatus{good(2), revoked(1, 1, at), revoked(1, 5, at)}, Revision: 9, SentAt: sent})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Revoked) != 1 || a.Revoked[0].Int64() != 1 || a.Added != 0 {
		t.Errorf("applied %+v; want serial 1 revoked once", a)
	}
	// A certificate issued after the snapshot is New: the responder drops
	// a cached "unknown" for it.
	a, err = st.Apply(&cav1.FollowResponse{Statuses: []*cav1.CertificateStatus{good(4)}, Revision: 10, SentAt: sent})
	if err != nil {
		t.Fatal(err)
	}
	if a.Added != 1 || len(a.New) != 1 || a.New[0].Int64() != 4 {
		t.Errorf("applied %+v; want serial 4 new", a)
	}
	for serial, reason := range map[int64]int32{1: 1, 2: 3} {
		s, err := st.Status("sign-g1", big.NewInt(serial).Bytes())
		if err != nil || s == nil || s.Revocation == nil || s.Revocation.Reason != reason {
			t.Errorf("serial %d: %v %v; want revoked with reason %d (the first revocation stands)", serial, s, err, reason)
		}
	}
	st.Close()
	st2, err := replica.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if rev, _ := st2.Revision(); rev != 10 || !st2.SyncedAt().Equal(sent.AsTime()) {
		t.Errorf("reopened: revision %d, synced %v", rev, st2.SyncedAt())
	}
	if err := st2.Reset(); err != nil {
		t.Fatal(err)
	}
	if rev, _ := st2.Revision(); rev != 0 {
		t.Errorf("after Reset: revision %d", rev)
	}
	if n, _ := st2.Count(); n != 0 {
		t.Errorf("after Reset: %d statuses", n)
	}
}

// TestSource: good, revoked with time, reason and invalidity date,
// unknown; thisUpdate is the last sync; no answer before the first sync.
func TestSource(t *testing.T) {
	st, _ := open(t)
	issuer := &x509.Certificate{Raw: []byte("issuer sign-g1")}
	src := replica.NewSource(st, map[string]*x509.Certificate{"sign-g1": issuer})
	is := &ocsp.Issuer{Certificate: issuer}
	ctx := context.Background()
	if _, err := src.Status(ctx, is, big.NewInt(1)); err == nil {
		t.Error("answered before the first sync")
	}
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	sent := at.Add(5 * time.Second)
	if _, err := st.Apply(&cav1.FollowResponse{Statuses: []*cav1.CertificateStatus{good(1), revoked(2, 3, at)}, Revision: 2, SentAt: timestamppb.New(sent)}); err != nil {
		t.Fatal(err)
	}
	for serial, want := range map[int64]ocsp.Status{
		1: {Status: ocsp.Good, ThisUpdate: sent},
		2: {Status: ocsp.Revoked, RevokedAt: at, Reason: 3, InvalidityDate: at.Add(-time.Hour), ThisUpdate: sent},
		3: {Status: ocsp.Unknown, ThisUpdate: sent},
	} {
		got, err := src.Status(ctx, is, big.NewInt(serial))
		if err != nil || got.Status != want.Status || !got.RevokedAt.Equal(want.RevokedAt) || got.Reason != want.Reason ||
			!got.InvalidityDate.Equal(want.InvalidityDate) || !got.ThisUpdate.Equal(want.ThisUpdate) {
			t.Errorf("serial %d: %+v %v; want %+v", serial, got, err, want)
		}
	}
	if _, err := src.Status(ctx, &ocsp.Issuer{Certificate: &x509.Certificate{Raw: []byte("another")}}, big.NewInt(1)); err == nil {
		t.Error("answered for an issuer it does not know")
	}
}
