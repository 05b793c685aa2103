package store

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
)

// TestRevocationWritesAgree revokes the same certificate through each of
// the three ways a certificate is revoked (an event, issuer-key compromise
// R-K2, a renewal's supersede R-V4) and checks that each leaves the same
// shape: the record changed only by its revocation (and, for a renewal,
// supersededBy), one REVOKED status change at the revocation time, the CRL
// entry in its partition's index (R-R5) and the partition touched at that
// revision, so that its CRL is published again (R-R4).
func TestRevocationWritesAgree(t *testing.T) {
	const partition = "sign-1-13221"
	template := pending("h-revoke", sign)
	template.CrlPartition = partition
	at := t0.Add(time.Hour)

	paths := []struct {
		name   string
		reason int32
		cause  string
		revoke func(t *testing.T, s *Store)
	}{
		{"event", ReasonCessationOfOperation, "event death-1", func(t *testing.T, s *Store) {
			res, err := s.Revoke(RevokeRequest{Municipality: "13221", EventID: "death-1", HolderID: "h-revoke",
				Profiles: []storev1.Profile{sign, auth}, Reason: ReasonCessationOfOperation, InvalidityDate: at, Now: at,
				Actor: "test", Cause: "event death-1"})
			if err != nil || len(res.Revoked) != 1 {
				t.Fatalf("Revoke = %v, %v; want one certificate revoked", res, err)
			}
		}},
		{"issuer compromise", ReasonCACompromise, "issuer key compromise", func(t *testing.T, s *Store) {
			res, err := s.CompromiseIssuer(sign, 1, at, at, "test")
			if err != nil || res.Revoked != 1 {
				t.Fatalf("CompromiseIssuer = %v, %v; want one certificate revoked", res, err)
			}
		}},
		{"renewal", ReasonSuperseded, "renewal", func(t *testing.T, s *Store) {
			renewed := pending("h-revoke", sign)
			renewed.CrlPartition = partition
			issue(t, s, Reservation{Certs: []*storev1.Certificate{renewed}, Now: at,
				Supersede: map[storev1.Profile][]byte{sign: template.Serial}})
		}},
	}
	// What each engine stored, by path: the same on both.
	stored := map[string][]*storev1.Certificate{}
	forEachBackend(t, func(t *testing.T, be backend) {
		var records []*storev1.Certificate
		var changes []*storev1.StatusChange
		for _, p := range paths {
			t.Run(p.name, func(t *testing.T) {
				s := openTemp(t, be.fresh(t))
				initTest(t, s)
				issue(t, s, Reservation{Certs: []*storev1.Certificate{proto.CloneOf(template)}, Now: t0})
				before, err := s.Certificate(template.Serial)
				if err != nil {
					t.Fatal(err)
				}
				since, err := s.Revision()
				if err != nil {
					t.Fatal(err)
				}
				p.revoke(t, s)

				rec, err := s.Certificate(template.Serial)
				if err != nil {
					t.Fatal(err)
				}
				want := &storev1.Revocation{RevokedAt: timestamppb.New(at), Reason: p.reason, InvalidityDate: timestamppb.New(at), Cause: p.cause}
				if !proto.Equal(rec.Revocation, want) {
					t.Errorf("revocation %v, want %v", rec.Revocation, want)
				}
				unrevoked := proto.CloneOf(rec)
				unrevoked.Revocation, unrevoked.SupersededBy = nil, nil
				if !proto.Equal(unrevoked, before) {
					t.Errorf("the revocation changed more than the revocation:\n got  %v\n want %v", unrevoked, before)
				}

				var mine []*storev1.StatusChange
				if err := s.Changes(since, func(ch *storev1.StatusChange) error {
					if bytes.Equal(ch.Serial, template.Serial) {
						mine = append(mine, ch)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if len(mine) != 1 || mine[0].Kind != storev1.ChangeKind_CHANGE_KIND_REVOKED || mine[0].CrlPartition != partition ||
					!mine[0].Time.AsTime().Equal(at) {
					t.Fatalf("status changes %v, want one REVOKED in %s at %v", mine, partition, at)
				}

				var entries []*storev1.Certificate
				if _, err := s.PartitionEntries(partition, at, func(e *storev1.Certificate) error {
					entries = append(entries, e)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				wantEntry := &storev1.Certificate{Serial: rec.Serial, NotAfter: rec.NotAfter, Revocation: rec.Revocation}
				if len(entries) != 1 || !proto.Equal(entries[0], wantEntry) {
					t.Errorf("CRL entries %v, want %v", entries, wantEntry)
				}
				part, err := s.Partition(partition)
				if err != nil {
					t.Fatal(err)
				}
				if part.ChangedRevision != mine[0].Revision {
					t.Errorf("partition changed at revision %d, want the revocation's %d", part.ChangedRevision, mine[0].Revision)
				}

				// What may differ between the paths: why, and the renewal's
				// supersededBy and the revision it logs at.
				rec.Revocation.Reason, rec.Revocation.Cause, rec.SupersededBy = 0, "", nil
				mine[0].Revision = 0
				records, changes = append(records, rec), append(changes, mine[0])
			})
		}
		if len(records) != len(paths) {
			t.Fatal("a path failed")
		}
		for i := 1; i < len(paths); i++ {
			if !proto.Equal(records[i], records[0]) {
				t.Errorf("%s stored\n %v\n%s stored\n %v", paths[i].name, records[i], paths[0].name, records[0])
			}
			if !proto.Equal(changes[i], changes[0]) {
				t.Errorf("%s logged\n %v\n%s logged\n %v", paths[i].name, changes[i], paths[0].name, changes[0])
			}
		}
		stored[be.name] = records
	})
	if a, b := stored["bbolt"], stored["postgres"]; len(a) == len(paths) && len(b) == len(paths) {
		for i := range paths {
			if !proto.Equal(a[i], b[i]) {
				t.Errorf("%s: bbolt stored\n %v\npostgres stored\n %v", paths[i].name, a[i], b[i])
			}
		}
	}
}

// TestRevokeRecordKeepsTheFirst: revokeRecord refuses a certificate that is
// already revoked and writes nothing (R-R2), whatever its caller checked.
func TestRevokeRecordKeepsTheFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		rec := pending("h-twice", sign)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{rec}, Now: t0})
		if _, err := s.Revoke(RevokeRequest{Serials: [][]byte{rec.Serial}, Reason: ReasonKeyCompromise, InvalidityDate: t0, Now: t0,
			Actor: "test", Cause: "first"}); err != nil {
			t.Fatal(err)
		}
		first, err := s.Certificate(rec.Serial)
		if err != nil {
			t.Fatal(err)
		}
		since, err := s.Revision()
		if err != nil {
			t.Fatal(err)
		}
		err = s.db.Update(func(tx engine.Tx) error {
			return revokeRecord(tx, proto.CloneOf(first), &storev1.Revocation{RevokedAt: timestamppb.New(t0.Add(time.Hour)),
				Reason: ReasonSuperseded, Cause: "second"}, false)
		})
		if !errors.Is(err, errAlreadyRevoked) {
			t.Fatalf("revoking again: %v, want %v", err, errAlreadyRevoked)
		}
		now, err := s.Certificate(rec.Serial)
		if err != nil {
			t.Fatal(err)
		}
		if rev, err := s.Revision(); err != nil || rev != since || !proto.Equal(now, first) {
			t.Errorf("revoking again changed the store: revision %d (was %d, %v), record %v (was %v)", rev, since, err, now, first)
		}
	})
}
