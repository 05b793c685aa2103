package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

func pendingKey(p storev1.Profile, generation uint32, at time.Time) *storev1.IssuerKey {
	k := testKey(p, generation)
	k.State = storev1.KeyState_KEY_STATE_PENDING
	k.ActivateAt = timestamppb.New(at)
	return k
}

func stateOf(t *testing.T, s *Store, p storev1.Profile, generation uint32) storev1.KeyState {
	t.Helper()
	for _, k := range mustIssuers(t, s) {
		if k.Profile == p && k.Generation == generation {
			return k.State
		}
	}
	t.Fatalf("no %s generation %d", p, generation)
	return 0
}

// A PENDING generation waits: the active one stays ACTIVE, no second
// rotation is accepted meanwhile, and activation switches both in one
// transaction, once (R-K1).
func TestPendingGenerationActivates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		initTest(t, s)
		at := t0.Add(24 * time.Hour)
		if err := s.AddIssuerKey(&storev1.IssuerKey{Profile: sign, Generation: 2, KeyLabel: "l", KeyId: []byte{1}, CertificateDer: []byte{1},
			State: storev1.KeyState_KEY_STATE_PENDING}, []*storev1.AuditRecord{testAudit("issuer.rotate")}); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("PENDING without activate_at: %v, want ErrInvalidArgument", err)
		}
		if err := s.AddIssuerKey(pendingKey(sign, 2, at), []*storev1.AuditRecord{testAudit("issuer.rotate")}); err != nil {
			t.Fatal(err)
		}
		if got := stateOf(t, s, sign, 1); got != storev1.KeyState_KEY_STATE_ACTIVE {
			t.Fatalf("generation 1 is %s while 2 is pending, want ACTIVE", got)
		}
		err := s.AddIssuerKey(testKey(sign, 3), []*storev1.AuditRecord{testAudit("issuer.rotate")})
		if !errors.Is(err, ErrRotationPending) || !strings.Contains(err.Error(), "generation 2 activates at") {
			t.Fatalf("rotation while one is pending: %v, want ErrRotationPending naming it", err)
		}
		// The other profile is not held up.
		if err := s.AddIssuerKey(testKey(auth, 2), []*storev1.AuditRecord{testAudit("issuer.rotate")}); err != nil {
			t.Fatal(err)
		}
		if err := s.ActivateIssuerKey(sign, 1, []*storev1.AuditRecord{testAudit("issuer.activate")}); !errors.Is(err, ErrKeyState) {
			t.Fatalf("activating an ACTIVE generation: %v, want ErrKeyState", err)
		}
		before := auditCount(t, s)
		if err := s.ActivateIssuerKey(sign, 2, []*storev1.AuditRecord{testAudit("issuer.activate")}); err != nil {
			t.Fatal(err)
		}
		if a, b := stateOf(t, s, sign, 1), stateOf(t, s, sign, 2); a != storev1.KeyState_KEY_STATE_SUPERSEDED || b != storev1.KeyState_KEY_STATE_ACTIVE {
			t.Fatalf("after activation: generation 1 %s, 2 %s; want SUPERSEDED, ACTIVE", a, b)
		}
		if n := auditCount(t, s); n != before+1 {
			t.Errorf("%d audit records after activation, want %d", n, before+1)
		}
		if err := s.ActivateIssuerKey(sign, 2, []*storev1.AuditRecord{testAudit("issuer.activate")}); !errors.Is(err, ErrKeyState) {
			t.Fatalf("second activation: %v, want ErrKeyState", err)
		}
		if err := s.ActivateIssuerKey(sign, 9, []*storev1.AuditRecord{testAudit("issuer.activate")}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("activating a generation that does not exist: %v, want ErrNotFound", err)
		}
	})
}

// Retirement is refused while a certificate of the generation is unexpired
// — revoked ones included, their CRL must go on — and allowed from the
// second after the last one expired; then the key can be recorded
// destroyed (R-K1).
func TestRetireWaitsForTheLastCertificate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		initTest(t, s)
		early, late := pending("holder-a", sign), pending("holder-b", sign)
		early.NotAfter = timestamppb.New(t0.AddDate(1, 0, 0))
		late.NotAfter = timestamppb.New(t0.AddDate(2, 0, 0))
		other := pending("holder-c", auth) // another profile's: does not count
		other.NotAfter = timestamppb.New(t0.AddDate(4, 0, 0))
		abandoned := pending("holder-d", sign) // never delivered: does not count
		abandoned.NotAfter = timestamppb.New(t0.AddDate(4, 0, 0))
		issue(t, s, Reservation{Certs: []*storev1.Certificate{early}, Now: t0})
		issue(t, s, Reservation{Certs: []*storev1.Certificate{late}, Now: t0})
		issue(t, s, Reservation{Certs: []*storev1.Certificate{other}, Now: t0})
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{abandoned}, Now: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.Abandon([][]byte{abandoned.Serial}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Revoke(RevokeRequest{Serials: [][]byte{late.Serial}, Now: t0, InvalidityDate: t0, Reason: 1, Actor: "test", Cause: "test"}); err != nil {
			t.Fatal(err)
		}

		counts, err := s.UnexpiredByGeneration(t0)
		if err != nil {
			t.Fatal(err)
		}
		want := GenerationCertificates{Unexpired: 2, LastExpiry: late.NotAfter.AsTime()}
		if got := counts[GenerationID{sign, 1}]; got.Unexpired != want.Unexpired || !got.LastExpiry.Equal(want.LastExpiry) {
			t.Errorf("sign generation 1: %+v, want %+v", got, want)
		}

		retire := func(now time.Time) error {
			return s.RetireIssuerKey(sign, 1, now, []*storev1.AuditRecord{testAudit("issuer.retire")})
		}
		if err := retire(t0); !errors.Is(err, ErrKeyState) {
			t.Fatalf("retiring the ACTIVE generation: %v, want ErrKeyState", err)
		}
		if err := s.AddIssuerKey(testKey(sign, 2), []*storev1.AuditRecord{testAudit("issuer.rotate")}); err != nil {
			t.Fatal(err)
		}
		if err := retire(t0.AddDate(1, 6, 0)); err == nil {
			t.Fatal("retired with a revoked, unexpired certificate left")
		} else if busy, ok := errors.AsType[*GenerationBusyError](err); !ok || busy.Unexpired != 1 || !busy.LastExpiry.Equal(late.NotAfter.AsTime()) {
			t.Fatalf("retire before the last expiry: %v, want a GenerationBusyError with 1 certificate until %s", err, late.NotAfter.AsTime())
		}
		if err := retire(late.NotAfter.AsTime()); err == nil {
			t.Fatal("retired in the last second of the last certificate")
		}
		if got := stateOf(t, s, sign, 1); got != storev1.KeyState_KEY_STATE_SUPERSEDED {
			t.Fatalf("refused retirements changed the state to %s", got)
		}
		before := auditCount(t, s)
		if err := s.DestroyedIssuerKey(sign, 1, []*storev1.AuditRecord{testAudit("issuer.key.destroy")}); !errors.Is(err, ErrKeyState) {
			t.Fatalf("destroying a SUPERSEDED generation: %v, want ErrKeyState", err)
		}
		if err := retire(late.NotAfter.AsTime().Add(time.Second)); err != nil {
			t.Fatalf("retire after the last expiry: %v", err)
		}
		if err := s.DestroyedIssuerKey(sign, 1, []*storev1.AuditRecord{testAudit("issuer.key.destroy")}); err != nil {
			t.Fatal(err)
		}
		if got := stateOf(t, s, sign, 1); got != storev1.KeyState_KEY_STATE_DESTROYED {
			t.Fatalf("state %s, want DESTROYED", got)
		}
		if n := auditCount(t, s); n != before+2 {
			t.Errorf("%d audit records, want %d", n, before+2)
		}
		if err := retire(late.NotAfter.AsTime().Add(time.Second)); !errors.Is(err, ErrKeyState) {
			t.Fatalf("retiring a DESTROYED generation: %v, want ErrKeyState", err)
		}
	})
}
