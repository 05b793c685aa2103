package store

import (
	"bytes"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// TestChangeLog (R-R4): every issuance and revocation is one status change
// with the next revision, 1, 2, … without gaps, written in the transaction
// that changes the certificate; a replayed event and a refused request add
// none. An OCSP replica's feed (ChangedCertificates) pages through the log
// after any revision, each change once, in order, with the certificate as
// it is now.
func TestChangeLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		if rev, err := s.Revision(); err != nil || rev != 0 {
			t.Fatalf("Revision of a new store = %d, %v; want 0", rev, err)
		}
		a, b := pending("h1", sign), pending("h1", auth)
		a.CrlPartition = "sign-1-13221"
		issue(t, s, Reservation{Certs: []*storev1.Certificate{a, b}, Now: t0})
		at := t0.Add(time.Hour)
		death := RevokeRequest{Municipality: "13221", EventID: "death-1", HolderID: "h1", Profiles: []storev1.Profile{sign},
			Reason: ReasonCessationOfOperation, InvalidityDate: at, Now: at, Actor: "test", Cause: "event death-1",
			PayloadSHA256: []byte("digest-death-1")}
		if _, err := s.Revoke(death); err != nil {
			t.Fatal(err)
		}
		renewal := pending("h1", auth)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{renewal}, Now: at, Supersede: map[storev1.Profile][]byte{auth: b.Serial}})

		type change struct {
			kind   storev1.ChangeKind
			serial []byte
		}
		issued, revoked := storev1.ChangeKind_CHANGE_KIND_ISSUED, storev1.ChangeKind_CHANGE_KIND_REVOKED
		// The card's two issuances in either order (one transaction), then
		// the death, then the renewal and the superseded one's revocation.
		want := []change{{issued, nil}, {issued, nil}, {revoked, a.Serial}, {issued, renewal.Serial}, {revoked, b.Serial}}

		rev, err := s.Revision()
		if err != nil || rev != uint64(len(want)) {
			t.Fatalf("Revision = %d, %v; want %d", rev, err, len(want))
		}
		// Neither a replay nor a refusal changes anything.
		if r, err := s.Revoke(death); err != nil || !r.Replayed {
			t.Fatalf("replaying the event: %v, %v", r, err)
		}
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{pending("h1", auth)}, Now: at}); err == nil {
			t.Fatal("a second AUTH for h1 was reserved")
		}
		if again, err := s.Revision(); err != nil || again != rev {
			t.Errorf("Revision after a replay and a refusal = %d, %v; want %d", again, err, rev)
		}

		var got []*storev1.StatusChange
		if err := s.Changes(0, func(ch *storev1.StatusChange) error { got = append(got, ch); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("Changes(0) = %d changes, want %d", len(got), len(want))
		}
		for i, ch := range got {
			if ch.Revision != uint64(i+1) || ch.Kind != want[i].kind || (want[i].serial != nil && !bytes.Equal(ch.Serial, want[i].serial)) {
				t.Errorf("change %d: revision %d %v %x; want revision %d %v %x", i, ch.Revision, ch.Kind, ch.Serial, i+1, want[i].kind, want[i].serial)
			}
		}
		if !bytes.Equal(got[2].Serial, a.Serial) || got[2].CrlPartition != a.CrlPartition || !got[2].Time.AsTime().Equal(at) {
			t.Errorf("the revocation's change: %v", got[2])
		}

		// The feed after each revision, in pages of 2.
		for since := uint64(0); since <= rev; since++ {
			var revs []uint64
			next := since
			for {
				n := 0
				if err := s.ChangedCertificates(next, 2, func(ch *storev1.StatusChange, rec *storev1.Certificate) error {
					if !bytes.Equal(rec.Serial, ch.Serial) {
						t.Errorf("change %d came with certificate %x, not %x", ch.Revision, rec.Serial, ch.Serial)
					}
					if ch.Kind == revoked && rec.Revocation == nil {
						t.Errorf("change %d: the certificate as it is now is not revoked", ch.Revision)
					}
					revs = append(revs, ch.Revision)
					next = ch.Revision
					n++
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if n < 2 {
					break
				}
			}
			if len(revs) != int(rev-since) {
				t.Errorf("after %d: revisions %v, want %d..%d", since, revs, since+1, rev)
			}
			for i, r := range revs {
				if r != since+uint64(i)+1 {
					t.Errorf("after %d: revisions %v, want %d..%d", since, revs, since+1, rev)
					break
				}
			}
		}
	})
}
