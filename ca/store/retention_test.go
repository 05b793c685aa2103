package store

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
)

// TestPurgeExpiredContract (rule book §6) on every engine: nothing is
// purged before RetentionYears after notAfter; after, a slice at a time,
// the records go with their indexes, the audit log names them and still
// verifies and explains the store, and a purged record put back behind
// the store's back is flagged.
func TestPurgeExpiredContract(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		var all []*storev1.Certificate
		for _, h := range []string{"p-1", "p-2", "p-3"} {
			c := pending(h, storev1.Profile_PROFILE_SIGN)
			issueAudited(t, s, Reservation{Certs: []*storev1.Certificate{c}, Now: t0})
			all = append(all, c)
		}
		end := all[0].NotAfter.AsTime().AddDate(RetentionYears, 0, 0)
		if res, err := s.PurgeExpired(end, 100, 100, "test"); err != nil || res.Purged != 0 || !res.Wrapped {
			t.Fatalf("at the last instant of retention: %+v %v, want nothing purged and a full pass", res, err)
		}
		later := end.Add(time.Second)
		purged := 0
		for i := 0; i < 10 && purged < len(all); i++ {
			res, err := s.PurgeExpired(later, 2, 1, "test")
			if err != nil {
				t.Fatal(err)
			}
			purged += res.Purged
		}
		if purged != len(all) {
			t.Fatalf("%d purged after retention, want %d", purged, len(all))
		}
		for _, c := range all {
			if _, err := s.Certificate(c.Serial); !errors.Is(err, ErrNotFound) {
				t.Errorf("certificate %x after the purge: %v", c.Serial, err)
			}
		}
		if _, err := s.VerifyAudit(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReconcileAudit(); err != nil {
			t.Fatalf("reconcile after the purge: %v", err)
		}
		// Put back behind the store's back: the log says it was purged.
		back, err := proto.Marshal(&storev1.Certificate{Serial: all[1].Serial, Profile: all[1].Profile, IssuerGeneration: 1,
			MunicipalityCode: "13221", HolderId: "p-2", State: storev1.CertState_CERT_STATE_ISSUED, TbsDer: all[1].TbsDer,
			Der: fakeDER(all[1].TbsDer), PublicKeySha256: all[1].PublicKeySha256, NotBefore: all[1].NotBefore, NotAfter: all[1].NotAfter})
		if err != nil {
			t.Fatal(err)
		}
		s = behindBack(t, be, s, func(tx engine.Tx) error { return tx.Bucket(bucketCerts).Put(all[1].Serial, back) })
		if _, err := s.ReconcileAudit(); !errors.Is(err, ErrUnexplained) {
			t.Errorf("a purged record put back: ReconcileAudit = %v, want ErrUnexplained", err)
		}
	})
}

// TestCopyTo: a store copied to an empty one of the other engine holds the
// same records (counts, audit head, a chain that verifies, certificates
// that read back the same); copying into a store that holds records is
// refused and changes nothing.
func TestCopyTo(t *testing.T) {
	for _, dir := range []struct{ from, to func(testing.TB) backend }{
		{boltBackend, postgresBackend}, {postgresBackend, boltBackend},
	} {
		from, to := dir.from(t), dir.to(t)
		t.Run(from.name+"-to-"+to.name, func(t *testing.T) {
			src := openTemp(t, from)
			var certs []*storev1.Certificate
			for _, h := range []string{"c-1", "c-2"} {
				c := pending(h, storev1.Profile_PROFILE_AUTH)
				issueAudited(t, src, Reservation{Certs: []*storev1.Certificate{c}, Now: t0})
				certs = append(certs, c)
			}
			dst := openTemp(t, to)
			var calls int
			counts, err := src.CopyTo(dst, func(done, total int) {
				calls++
				if done > total {
					t.Errorf("progress %d of %d", done, total)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if counts.Certificates != 2 || calls == 0 {
				t.Errorf("copied %+v with %d progress calls", counts, calls)
			}
			for _, c := range certs {
				got, err := dst.Certificate(c.Serial)
				if err != nil || got.HolderId != c.HolderId || got.State != storev1.CertState_CERT_STATE_ISSUED {
					t.Errorf("copied certificate %x: %v %v", c.Serial, got, err)
				}
			}
			if _, err := dst.ReconcileAudit(); err != nil {
				t.Error(err)
			}
			before, _ := dst.Count()
			if _, err := src.CopyTo(dst, nil); !errors.Is(err, ErrNotEmpty) {
				t.Errorf("a second copy into the same store: %v, want ErrNotEmpty", err)
			}
			if after, _ := dst.Count(); after != before {
				t.Errorf("the refused copy changed the store: %+v → %+v", before, after)
			}
		})
	}
}

// TestAbandonPendingBefore: only reservations made before the bound are
// abandoned, so that a CA process starting on a shared store leaves the
// issuances another process has in flight alone (ca.AbandonStale).
func TestAbandonPendingBefore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		old, young := pending("ab-1", storev1.Profile_PROFILE_SIGN), pending("ab-2", storev1.Profile_PROFILE_SIGN)
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{old}, Now: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{young}, Now: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.AbandonPending(t0.Add(time.Minute))
		if err != nil || len(got) != 1 || string(got[0]) != string(old.Serial) {
			t.Fatalf("AbandonPending(before the young one) = %x, %v; want the old one only", got, err)
		}
		rec, err := s.Certificate(young.Serial)
		if err != nil || rec.State != storev1.CertState_CERT_STATE_PENDING {
			t.Errorf("the young reservation: %v %v, want still PENDING", rec.GetState(), err)
		}
	})
}
