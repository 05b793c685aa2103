package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
)

// presigned is a pre-signed response record signed at at, refreshed
// after 20 minutes.
func presigned(at time.Time, revoked bool) *storev1.PresignedResponse {
	return &storev1.PresignedResponse{BasicResponse: []byte("der"), ResponderKeyId: make([]byte, 20),
		ThisUpdate: timestamppb.New(at), NextUpdate: timestamppb.New(at.Add(time.Hour)),
		RefreshAt: timestamppb.New(at.Add(20 * time.Minute)), Revoked: revoked}
}

// due returns the serials due at now, in queue order, and the tasks.
func due(t *testing.T, s *Store, now time.Time) ([][]byte, []OCSPTask) {
	t.Helper()
	tasks, err := s.PresignDue(now, 100)
	if err != nil {
		t.Fatal(err)
	}
	var serials [][]byte
	for _, task := range tasks {
		serials = append(serials, task.Serial)
	}
	return serials, tasks
}

func sameSerials(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestPresignQueue: issuance and revocation queue a certificate at once
// and drop its pre-signed response in their own transaction; a response
// is stored only while the status it gives is the recorded one, and
// queues its refresh; retries and drops (on both engines).
func TestPresignQueue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		a, b := pending("pq-a", storev1.Profile_PROFILE_SIGN), pending("pq-b", storev1.Profile_PROFILE_SIGN)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{a}, Now: t0})
		issue(t, s, Reservation{Certs: []*storev1.Certificate{b}, Now: t0})
		serials, tasks := due(t, s, t0)
		if !sameSerials(serials, [][]byte{a.Serial, b.Serial}) {
			t.Fatalf("due after issuance: %x", serials)
		}
		for _, task := range tasks {
			if task.Cert == nil || task.Cert.State != storev1.CertState_CERT_STATE_ISSUED || task.Revision == 0 || binary.BigEndian.Uint64(task.Key) != 0 {
				t.Fatalf("task %+v", task)
			}
		}
		done := []OCSPDone{
			{Key: tasks[0].Key, Serial: a.Serial, Response: presigned(t0, false)},
			{Key: tasks[1].Key, Serial: b.Serial, Response: presigned(t0, false)},
		}
		if n, err := s.SavePresigned(done); err != nil || n != 2 {
			t.Fatalf("stored %d: %v", n, err)
		}
		if serials, _ := due(t, s, t0.Add(20*time.Minute-time.Second)); len(serials) != 0 {
			t.Fatalf("due before the refresh: %x", serials)
		}
		if rec, err := s.PresignedResponse(a.Serial); err != nil || rec == nil || string(rec.BasicResponse) != "der" {
			t.Fatalf("stored response %v, %v", rec, err)
		}
		backlog, oldest, err := s.PresignStats(t0, 100)
		if err != nil || backlog != 0 || !oldest.Equal(t0) {
			t.Fatalf("stats: backlog %d, oldest %v, %v", backlog, oldest, err)
		}
		if serials, _ := due(t, s, t0.Add(20*time.Minute)); !sameSerials(serials, [][]byte{a.Serial, b.Serial}) {
			t.Fatalf("due at the refresh: %x", serials)
		}

		// A revocation drops the response and queues it first.
		res, err := s.Revoke(RevokeRequest{Serials: [][]byte{a.Serial}, Reason: 1, Now: t0.Add(time.Minute),
			InvalidityDate: t0, Actor: "test"})
		if err != nil || len(res.Revoked) != 1 {
			t.Fatal(err)
		}
		if rec, err := s.PresignedResponse(a.Serial); err != nil || rec != nil {
			t.Fatalf("after the revocation the good response is still stored: %v, %v", rec, err)
		}
		serials, tasks = due(t, s, t0.Add(20*time.Minute))
		if !sameSerials(serials, [][]byte{a.Serial, b.Serial}) || binary.BigEndian.Uint64(tasks[0].Key) != 0 || tasks[0].Cert.Revocation == nil {
			t.Fatalf("due after the revocation: %x, first %+v", serials, tasks[0])
		}
		if backlog, _, _ := s.PresignStats(t0.Add(time.Minute), 100); backlog != 1 {
			t.Errorf("backlog %d, want the revocation", backlog)
		}
		// A good response signed before the revocation is refused; the
		// revoked one is stored.
		if n, err := s.SavePresigned([]OCSPDone{{Key: tasks[0].Key, Serial: a.Serial, Response: presigned(t0, false)}}); err != nil || n != 0 {
			t.Fatalf("a stale good response: stored %d, %v", n, err)
		}
		if serials, _ := due(t, s, t0.Add(time.Minute)); !sameSerials(serials, [][]byte{a.Serial}) {
			t.Fatalf("the stale response took the revocation out of the queue: %x", serials)
		}
		if n, err := s.SavePresigned([]OCSPDone{{Key: tasks[0].Key, Serial: a.Serial, Response: presigned(t0.Add(time.Minute), true)}}); err != nil || n != 1 {
			t.Fatalf("the revoked response: stored %d, %v", n, err)
		}
		// Retry: b's refresh moves to later.
		if _, err := s.SavePresigned([]OCSPDone{{Key: tasks[1].Key, Serial: b.Serial, Retry: t0.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		if serials, _ := due(t, s, t0.Add(59*time.Minute)); len(serials) != 1 || !bytes.Equal(serials[0], a.Serial) {
			t.Fatalf("due before b's retry: %x", serials)
		}
		serials, tasks = due(t, s, t0.Add(time.Hour))
		if !sameSerials(serials, [][]byte{a.Serial, b.Serial}) {
			t.Fatalf("due at b's retry: %x", serials)
		}
		// Drop: b leaves the queue with its response.
		if _, err := s.SavePresigned([]OCSPDone{{Key: tasks[1].Key, Serial: b.Serial}}); err != nil {
			t.Fatal(err)
		}
		if rec, _ := s.PresignedResponse(b.Serial); rec != nil {
			t.Error("dropped, yet its response is stored")
		}
		if serials, _ := due(t, s, t0.AddDate(1, 0, 0)); !sameSerials(serials, [][]byte{a.Serial}) {
			t.Fatalf("after the drop: %x", serials)
		}
		// Refused arguments change nothing.
		for _, d := range [][]OCSPDone{
			{{Key: []byte{1}, Serial: a.Serial}},
			{{Key: queueKey(0, b.Serial), Serial: a.Serial}},
			{{Key: queueKey(0, a.Serial), Serial: a.Serial, Response: &storev1.PresignedResponse{}}},
		} {
			if _, err := s.SavePresigned(d); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%+v: %v", d, err)
			}
		}
		if _, err := s.PresignDue(t0, 0); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("limit 0: %v", err)
		}
	})
}

// TestPresignBackfill: certificates recorded behind the queue's back (a
// store older than pre-signing) are queued once by the walk, page by
// page: live issued ones without a response or a queued change; expired,
// pending, pre-signed and already queued ones are not. Once done it stays
// done.
func TestPresignBackfill(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		queued := pending("bf-queued", storev1.Profile_PROFILE_SIGN)
		signed := pending("bf-signed", storev1.Profile_PROFILE_AUTH)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{queued}, Now: t0})
		issue(t, s, Reservation{Certs: []*storev1.Certificate{signed}, Now: t0})
		_, tasks := due(t, s, t0)
		if n, err := s.SavePresigned([]OCSPDone{{Key: tasks[1].Key, Serial: signed.Serial, Response: presigned(t0, false)}}); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		var old, expired, pend []*storev1.Certificate
		for i := range 5 {
			c := pending("bf-old", storev1.Profile_PROFILE_SIGN)
			c.State, c.HolderId = storev1.CertState_CERT_STATE_ISSUED, c.HolderId+string(rune('a'+i))
			old = append(old, c)
		}
		e := pending("bf-expired", storev1.Profile_PROFILE_SIGN)
		e.State, e.NotAfter = storev1.CertState_CERT_STATE_ISSUED, timestamppb.New(t0.Add(-time.Hour))
		expired = append(expired, e)
		pend = append(pend, pending("bf-pending", storev1.Profile_PROFILE_SIGN))
		s = behindBack(t, be, s, func(tx engine.Tx) error {
			for _, c := range append(append(old, expired...), pend...) {
				if err := putCert(tx.Bucket(bucketCerts), c); err != nil {
					return err
				}
			}
			return nil
		})
		pages := 0
		for {
			done, err := s.PresignBackfill(t0, 2)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if done {
				break
			}
			if pages > 10 {
				t.Fatal("the walk does not end")
			}
		}
		// 2 issued + 5 old + 1 expired + 1 pending = 9 certificates, 2 a page.
		if pages != 5 {
			t.Errorf("%d pages, want 5", pages)
		}
		want := [][]byte{queued.Serial}
		for _, c := range old {
			want = append(want, c.Serial)
		}
		serials, _ := due(t, s, t0)
		if !sameSerials(serials, want) {
			t.Fatalf("queued %x, want %x", serials, want)
		}
		if done, err := s.PresignBackfill(t0, 2); err != nil || !done {
			t.Fatalf("again: %v %v", done, err)
		}
		if serials, _ := due(t, s, t0); len(serials) != len(want) {
			t.Fatalf("the walk ran again: %x", serials)
		}
	})
}

// BenchmarkPresignedResponse: reading one pre-signed response, as an OCSP
// request that misses the responder's cache does, from a bbolt store of
// 100,000, serials drawn at random, from parallel readers.
func BenchmarkPresignedResponse(b *testing.B) {
	be := boltBackend(b)
	s := openTemp(b, be)
	const n = 100_000
	serials := make([][]byte, n)
	rec := presigned(t0, false)
	rec.BasicResponse = make([]byte, 450)
	v, err := marshal(rec)
	if err != nil {
		b.Fatal(err)
	}
	err = s.db.Update(func(tx engine.Tx) error {
		for i := range serials {
			serials[i] = binary.BigEndian.AppendUint64([]byte{0x42}, uint64(i)*7919)
			if err := tx.Bucket(bucketOCSPResponses).Put(serials[i], v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(7_777) % n
			if r, err := s.PresignedResponse(serials[i]); err != nil || r == nil {
				b.Errorf("%x: %v, %v", serials[i], r, err)
				return
			}
		}
	})
}
