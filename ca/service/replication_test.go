package service_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// TestReplication: a replica starting from 0 gets every issued certificate
// in snapshot pages, then the completion marker, then each change as it
// happens; it resumes from a revision; a revision ahead of the log is
// refused; CertifyResponder checks its CSR (R-R6).
func TestReplication(t *testing.T) {
	h := start(t, tokenReplicate, options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serials := map[string]bool{}
	for i := range 3 {
		out := h.issue(t, request(resident(fmt.Sprintf("RP-%d", i), "1980-04-01"), application(cav1.ApplicantKind_APPLICANT_KIND_SELF, "2035-01-01"),
			sign(holderKeys.csr(t)), auth(holderKeys.csr(t))))
		for _, c := range out.certs {
			serials[c.Serial] = true
		}
	}
	head, err := h.store.Revision()
	if err != nil {
		t.Fatal(err)
	}
	if head != 6 {
		t.Fatalf("6 issuances logged revision %d, want 6", head)
	}

	stream, err := h.replication.Follow(ctx, &cav1.FollowRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	pages := 0
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.Revision != head {
			t.Fatalf("snapshot message at revision %d, want %d", m.Revision, head)
		}
		if !m.Snapshot {
			if len(m.Statuses) != 0 {
				t.Fatalf("the completion marker carries %d statuses", len(m.Statuses))
			}
			break
		}
		pages++
		for _, st := range m.Statuses {
			got[hex.EncodeToString(st.Serial)] = true
			if st.Revocation != nil || st.Issuer == "" || st.NotAfter == nil {
				t.Errorf("snapshot status %+v; want good, with issuer and notAfter", st)
			}
		}
	}
	if pages != 3 || len(got) != 6 {
		t.Errorf("snapshot: %d pages, %d certificates; want 3 pages of 2", pages, len(got))
	}
	for s := range serials {
		if !got[s] {
			t.Errorf("snapshot lacks %s", s)
		}
	}

	// A death revokes both of RP-0's certificates: one message.
	resp, err := h.events.ReportEvent(ctx, &cav1.ReportEventRequest{EventId: "rp-death", MunicipalityCode: kiyose.Code, HolderId: "RP-0",
		Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: h.clock.Now().Format(time.RFC3339)})
	if err != nil {
		t.Fatal(describe(err))
	}
	var m *cav1.FollowResponse
	for m == nil || len(m.Statuses) == 0 { // skip heartbeats
		if m, err = stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if m.Snapshot || m.Revision != head+2 || len(m.Statuses) != 2 {
		t.Fatalf("after a death: %d statuses at revision %d (snapshot %v); want 2 at %d", len(m.Statuses), m.Revision, m.Snapshot, head+2)
	}
	for i, st := range m.Statuses {
		if st.Revocation == nil || st.Revocation.Reason != 5 || st.RecordedAt == nil || hex.EncodeToString(st.Serial) != resp.Revoked[i].Serial {
			t.Errorf("change %d: %+v; want %s revoked cessationOfOperation with its recording time", i, st, resp.Revoked[i].Serial)
		}
	}

	// Resuming from the snapshot's revision: just the changes.
	resumed, err := h.replication.Follow(ctx, &cav1.FollowRequest{SinceRevision: head})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := resumed.Recv(); err != nil || m.Snapshot || m.Revision != head+2 || m.HeadRevision != head+2 || len(m.Statuses) != 2 {
		t.Errorf("resumed from %d: %v %v; want the 2 revocations, at the CA's head", head, m, err)
	}
	// Further behind than a batch (2): each message also says where the
	// CA's head is, so the replica knows how far behind it still is
	// (shomei_replica_lag_revisions), not just where the batch took it.
	behind, err := h.replication.Follow(ctx, &cav1.FollowRequest{SinceRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := behind.Recv(); err != nil || m.Revision >= head+2 || m.HeadRevision != head+2 {
		t.Errorf("resumed from 1: revision %d, head %d, %v; want a batch short of the head %d, and the head", m.GetRevision(), m.GetHeadRevision(), err, head+2)
	}

	ahead, err := h.replication.Follow(ctx, &cav1.FollowRequest{SinceRevision: head + 100})
	if err == nil {
		_, err = ahead.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("a revision ahead of the log: %v; want FailedPrecondition", err)
	}

	// CertifyResponder.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.replication.CertifyResponder(ctx, &cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: csr})
	if err != nil {
		t.Fatal(describe(err))
	}
	cert, err := x509.ParseCertificate(out.CertificateDer)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(h.issuers[cav1.Profile_PROFILE_SIGN]); err != nil || cert.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning ||
		cert.NotAfter.Sub(h.clock.Now()) > 7*24*time.Hour {
		t.Errorf("responder certificate: %v, EKU %v, notAfter %v", err, cert.ExtKeyUsage, cert.NotAfter)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, small)
	bad := append([]byte{}, csr...)
	bad[len(bad)-1] ^= 1
	for name, tc := range map[string]struct {
		req   *cav1.CertifyResponderRequest
		code  codes.Code
		field string
	}{
		"garbage":        {&cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: []byte("nope")}, codes.InvalidArgument, "csr"},
		"bad signature":  {&cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: bad}, codes.InvalidArgument, "csr"},
		"RSA-1024":       {&cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: smallCSR}, codes.InvalidArgument, "csr"},
		"unknown issuer": {&cav1.CertifyResponderRequest{Issuer: "sign-g9", Csr: csr}, codes.NotFound, "issuer"},
	} {
		_, err := h.replication.CertifyResponder(ctx, tc.req)
		st := status.Convert(err)
		fields := violations(err)
		if st.Code() != tc.code || len(fields) == 0 || fields[0].Field != tc.field || fields[0].Reason != "R-R6" {
			t.Errorf("%s: %v %v; want %v naming %s (R-R6)", name, st.Code(), fields, tc.code, tc.field)
		}
	}
}

// violations are the BadRequest field violations of a gRPC error.
func violations(err error) []*errdetails.BadRequest_FieldViolation {
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.FieldViolations...)
		}
	}
	return out
}

// TestReplicationResumesAtOnce: a replica that resumes at the CA's head
// (the CA restarted; nothing changed meanwhile) gets a message at once
// saying it is in sync, not at the next heartbeat (here an hour away):
// until its first message a replica cannot tell that it follows again
// (shomei_replica_connected, the lag, its responses' thisUpdate). Issue 13:
// back in sync within 2 s of the CA's return; the heartbeat was 5 s.
func TestReplicationResumesAtOnce(t *testing.T) {
	h := start(t, tokenReplicate, options{heartbeat: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.issue(t, request(resident("RP-RESUME", "1980-04-01"), application(cav1.ApplicantKind_APPLICANT_KIND_SELF, "2035-01-01"),
		sign(holderKeys.csr(t)), auth(holderKeys.csr(t))))
	head, err := h.store.Revision()
	if err != nil {
		t.Fatal(err)
	}
	stream, err := h.replication.Follow(ctx, &cav1.FollowRequest{SinceRevision: head})
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil || m.Snapshot || len(m.Statuses) != 0 || m.Revision != head || m.HeadRevision != head || m.SentAt == nil {
		t.Fatalf("resumed at the head %d: %v, %v; want at once a message saying the replica is at the head", head, m, err)
	}
}

// TestReplicationEndsAtStop: when the CA starts to stop (Stopping closed)
// a Follow stream in progress ends with Unavailable, which the replica
// retries, instead of running until the graceful stop's timeout; a Follow
// that arrives then is refused the same way (issue 13).
func TestReplicationEndsAtStop(t *testing.T) {
	stopping := make(chan struct{})
	h := start(t, tokenReplicate, options{stopping: stopping})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.issue(t, request(resident("RP-STOP", "1980-04-01"), application(cav1.ApplicantKind_APPLICANT_KIND_SELF, "2035-01-01"),
		sign(holderKeys.csr(t)), auth(holderKeys.csr(t))))
	stream, err := h.replication.Follow(ctx, &cav1.FollowRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for { // the snapshot, up to its completion marker
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if !m.Snapshot {
			break
		}
	}
	close(stopping)
	for {
		// Heartbeats may come before the stream sees Stopping; a stream
		// that never ends fails at the context's deadline instead.
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("a stream when the CA stops: %v, want Unavailable", err)
	}
	late, err := h.replication.Follow(ctx, &cav1.FollowRequest{SinceRevision: 1})
	if err == nil {
		_, err = late.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("a Follow while the CA stops: %v, want Unavailable", err)
	}
}
