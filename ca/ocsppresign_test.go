package ca

import (
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ocsp"
)

// fakePresigned is a PresignedStore returning fixed tasks.
type fakePresigned struct {
	tasks []store.OCSPTask
	saved []store.OCSPDone
}

func (f *fakePresigned) PresignedResponse([]byte) (*storev1.PresignedResponse, error) {
	return nil, nil
}
func (f *fakePresigned) PresignDue(time.Time, int) ([]store.OCSPTask, error) { return f.tasks, nil }
func (f *fakePresigned) SavePresigned(d []store.OCSPDone) (int, error) {
	f.saved = append(f.saved, d...)
	return len(d), nil
}
func (f *fakePresigned) PresignBackfill(time.Time, int) (bool, error) { return true, nil }
func (f *fakePresigned) PresignStats(time.Time, int) (int, time.Time, error) {
	return 0, time.Time{}, nil
}

// TestOCSPResponsesTasks: the store's queue as the pre-signer sees it. An
// issued, live certificate of a known generation is pre-signed with its
// recorded status (as OCSPSource answers); anything else is dropped: no
// record, pending, abandoned, expired (validity.Live: through the second
// of its notAfter), a generation the CA does not have.
func TestOCSPResponsesTasks(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	sign := &x509.Certificate{Raw: []byte("sign-g1")}
	issued := func(serial byte, mod func(*storev1.Certificate)) store.OCSPTask {
		rec := &storev1.Certificate{Serial: []byte{serial}, Profile: storev1.Profile_PROFILE_SIGN, IssuerGeneration: 1,
			State: storev1.CertState_CERT_STATE_ISSUED, NotAfter: timestamppb.New(now.Add(time.Hour))}
		if mod != nil {
			mod(rec)
		}
		return store.OCSPTask{Key: append(make([]byte, 8), serial), Serial: []byte{serial}, Cert: rec, Revision: 7}
	}
	revokedAt := now.Add(-time.Hour).Truncate(time.Second)
	f := &fakePresigned{tasks: []store.OCSPTask{
		issued(1, nil),
		issued(2, func(c *storev1.Certificate) {
			c.Revocation = &storev1.Revocation{RevokedAt: timestamppb.New(revokedAt), Reason: 1}
		}),
		{Key: append(make([]byte, 8), 3), Serial: []byte{3}},
		issued(4, func(c *storev1.Certificate) { c.State = storev1.CertState_CERT_STATE_PENDING }),
		issued(5, func(c *storev1.Certificate) { c.State = storev1.CertState_CERT_STATE_ABANDONED }),
		issued(6, func(c *storev1.Certificate) { c.NotAfter = timestamppb.New(now.Add(-time.Second)) }),
		issued(7, func(c *storev1.Certificate) { c.IssuerGeneration = 2 }),
		issued(8, func(c *storev1.Certificate) { c.NotAfter = timestamppb.New(now) }),
	}}
	o := OCSPResponses{Store: f, Issuer: func(p Profile, g uint32) *x509.Certificate {
		if p == storev1.Profile_PROFILE_SIGN && g == 1 {
			return sign
		}
		return nil
	}}
	tasks, err := o.PresignDue(now, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]ocsp.CertStatus{1: ocsp.Good, 2: ocsp.Revoked, 8: ocsp.Good}
	for _, task := range tasks {
		sn := task.Serial.Int64()
		st, pre := want[sn]
		if task.Drop == pre {
			t.Errorf("serial %d: drop %v", sn, task.Drop)
			continue
		}
		if !pre {
			continue
		}
		if task.Issuer != sign || task.Status.Status != st || task.Revision != 7 || task.Serial.Cmp(big.NewInt(sn)) != 0 {
			t.Errorf("serial %d: %+v", sn, task)
		}
		if st == ocsp.Revoked && (!task.Status.RevokedAt.Equal(revokedAt) || task.Status.Reason != 1) {
			t.Errorf("serial %d: revocation %+v", sn, task.Status)
		}
	}
	if len(tasks) != len(f.tasks) {
		t.Fatalf("%d tasks for %d entries", len(tasks), len(f.tasks))
	}
	retry := now.Add(time.Minute)
	if _, err := o.SavePresigned([]ocsp.PresignDone{{Key: tasks[0].Key, Serial: []byte{1}, Retry: retry}}); err != nil {
		t.Fatal(err)
	}
	if len(f.saved) != 1 || !f.saved[0].Retry.Equal(retry) || f.saved[0].Serial[0] != 1 {
		t.Errorf("saved %+v", f.saved)
	}
}
