package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

var t0 = time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC)

// fakeDER wraps tbs in a certificate-shaped SEQUENCE (the store only reads
// the TBS part back).
func fakeDER(tbs []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {})
	})
	return b.BytesOrPanic()
}

func tbsFor(n uint64) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Uint64(n) })
	return b.BytesOrPanic()
}

// lastSerial is the last serial pending made (safe for concurrent tests).
var lastSerial atomic.Uint64

// pending makes a PENDING record for holder with a fresh serial and key.
func pending(holder string, p storev1.Profile) *storev1.Certificate {
	n := 1000 + lastSerial.Add(1)
	serial := binary.BigEndian.AppendUint64(nil, n)
	key := sha256.Sum256(serial)
	return &storev1.Certificate{
		Serial: serial, Profile: p, IssuerGeneration: 1, MunicipalityCode: "13221", HolderId: holder,
		State: storev1.CertState_CERT_STATE_PENDING, TbsDer: tbsFor(n), PublicKeySha256: key[:],
		NotBefore: timestamppb.New(t0), NotAfter: timestamppb.New(t0.AddDate(5, 0, 0)),
	}
}

// issue reserves and completes r, recording the CRL partitions its
// certificates name.
func issue(t *testing.T, s *Store, r Reservation) {
	t.Helper()
	issueLogged(t, s, r, nil)
}

// issueLogged is issue with the audit record audit makes of each
// certificate (none when nil) appended in the completing transaction.
func issueLogged(t *testing.T, s *Store, r Reservation, audit func(*storev1.Certificate) *storev1.AuditRecord) {
	t.Helper()
	if err := s.Reserve(r); err != nil {
		t.Fatal(err)
	}
	c := Completion{DER: map[string][]byte{}, Now: r.Now}
	for _, rec := range r.Certs {
		c.DER[string(rec.Serial)] = fakeDER(rec.TbsDer)
		if rec.CrlPartition != "" {
			c.Partitions = append(c.Partitions, &storev1.CRLPartition{Name: rec.CrlPartition, Profile: rec.Profile,
				IssuerGeneration: rec.IssuerGeneration})
		}
		if audit != nil {
			c.Audit = append(c.Audit, audit(rec))
		}
	}
	if err := s.Complete(c); err != nil {
		t.Fatal(err)
	}
}

// TestIssuanceLifecycle: both certificates of a card are recorded and
// issued together (both or neither); a holder gets no second valid
// certificate of a profile (R-A4), a serial and a key are never used twice
// (R-P1), and nothing of a refused reservation is recorded.
func TestIssuanceLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		a, b := pending("h1", sign), pending("h1", auth)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{a, b}, Now: t0})

		got, err := s.HolderCertificates("13221", "h1")
		if err != nil || len(got) != 2 {
			t.Fatalf("holder has %d certificates (%v), want 2", len(got), err)
		}
		for _, rec := range got {
			if rec.State != storev1.CertState_CERT_STATE_ISSUED || len(rec.Der) == 0 {
				t.Errorf("%x: state %v, der %d bytes", rec.Serial, rec.State, len(rec.Der))
			}
		}

		cases := []struct {
			name string
			r    Reservation
			want error
		}{
			{"double issuance of SIGN (R-A4)", Reservation{Certs: []*storev1.Certificate{pending("h1", sign)}, Now: t0}, ErrDoubleIssuance},
			{"same serial (R-P1)", Reservation{Certs: []*storev1.Certificate{func() *storev1.Certificate {
				c := pending("h2", sign)
				c.Serial = a.Serial
				return c
			}()}, Now: t0}, ErrSerialTaken},
			{"key already certified (R-P1)", Reservation{Certs: []*storev1.Certificate{func() *storev1.Certificate {
				c := pending("h2", auth)
				c.PublicKeySha256 = b.PublicKeySha256
				return c
			}()}, Now: t0}, ErrKeyUsed},
			{"renewing another holder's certificate", Reservation{Certs: []*storev1.Certificate{pending("h2", sign)}, Now: t0,
				Supersede: map[storev1.Profile][]byte{sign: a.Serial}}, ErrNotRenewable},
			{"unknown inquiry", Reservation{Certs: []*storev1.Certificate{pending("h3", auth)}, Now: t0, InquiryID: "nope", InquiryCode: "x"}, ErrInquiry},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				err := s.Reserve(tc.r)
				if !errors.Is(err, tc.want) {
					t.Fatalf("Reserve = %v, want %v", err, tc.want)
				}
				// Nothing of a refused reservation is recorded.
				if _, err := s.Certificate(tc.r.Certs[0].Serial); tc.want != ErrSerialTaken && !errors.Is(err, ErrNotFound) {
					t.Fatalf("refused certificate was recorded: %v", err)
				}
			})
		}

		// After expiry the holder may be issued again (R-A4 counts valid ones only).
		later := t0.AddDate(5, 0, 1)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{pending("h1", sign)}, Now: later})
	})
}

// TestRenewalSupersedesAtomically (R-V4): a renewal revokes the renewed
// certificate as superseded in the transaction that issues the new one,
// and a certificate is renewed once.
func TestRenewalSupersedesAtomically(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		old := pending("h1", sign)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{old}, Now: t0})
		renewal := pending("h1", sign)
		now := t0.AddDate(4, 10, 0)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{renewal}, Now: now, Supersede: map[storev1.Profile][]byte{sign: old.Serial}})

		o, err := s.Certificate(old.Serial)
		if err != nil {
			t.Fatal(err)
		}
		if o.Revocation == nil || o.Revocation.Reason != ReasonSuperseded || !o.Revocation.RevokedAt.AsTime().Equal(now) ||
			string(o.SupersededBy) != string(renewal.Serial) {
			t.Fatalf("old certificate after renewal: revocation %v superseded_by %x", o.Revocation, o.SupersededBy)
		}
		// The superseded certificate cannot be renewed a second time.
		err = s.Reserve(Reservation{Certs: []*storev1.Certificate{pending("h1", sign)}, Now: now, Supersede: map[storev1.Profile][]byte{sign: old.Serial}})
		if !errors.Is(err, ErrNotRenewable) {
			t.Fatalf("second renewal of the same certificate = %v, want ErrNotRenewable", err)
		}
	})
}

// TestPendingBlocksAndAbandonFrees: an issuance is recorded PENDING before
// the issuer signs (record before sign) and counts as the holder's
// (R-A4); abandoning it frees the holder and the key, never the serial.
func TestPendingBlocksAndAbandonFrees(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		p := pending("h1", auth)
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{p}, Now: t0}); err != nil {
			t.Fatal(err)
		}
		// A pending issuance counts: a concurrent second one is refused.
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{pending("h1", auth)}, Now: t0}); !errors.Is(err, ErrDoubleIssuance) {
			t.Fatalf("second reservation while pending = %v", err)
		}
		if used, err := s.KeyCertified(p.PublicKeySha256); err != nil || !used {
			t.Fatalf("KeyCertified of a pending issuance's key = %v, %v; want true", used, err)
		}
		abandoned, err := s.AbandonPending(t0.AddDate(100, 0, 0))
		if err != nil || len(abandoned) != 1 || string(abandoned[0]) != string(p.Serial) {
			t.Fatalf("AbandonPending = %x, %v", abandoned, err)
		}
		if used, err := s.KeyCertified(p.PublicKeySha256); err != nil || used {
			t.Fatalf("KeyCertified of an abandoned issuance's key = %v, %v; want false", used, err)
		}
		rec, _ := s.Certificate(p.Serial)
		if rec.State != storev1.CertState_CERT_STATE_ABANDONED {
			t.Fatalf("state %v, want ABANDONED", rec.State)
		}
		// The key and the holder are free again; the serial is not.
		retry := pending("h1", auth)
		retry.PublicKeySha256 = p.PublicKeySha256
		issue(t, s, Reservation{Certs: []*storev1.Certificate{retry}, Now: t0})
		dup := pending("h9", auth)
		dup.Serial = p.Serial
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{dup}, Now: t0}); !errors.Is(err, ErrSerialTaken) {
			t.Fatalf("reusing an abandoned serial = %v, want ErrSerialTaken", err)
		}
	})
}

// TestBlockedKey (R-V8): a blocked key is never certified.
func TestBlockedKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		c := pending("h1", sign)
		if err := s.BlockKey(&storev1.BlockedKey{PublicKeySha256: c.PublicKeySha256, BlockedAt: timestamppb.New(t0), Cause: "loss-report"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{c}, Now: t0}); !errors.Is(err, ErrKeyBlocked) {
			t.Fatalf("reserving a blocked key = %v, want ErrKeyBlocked", err)
		}
	})
}

// TestInquiry (R-A2): a PROXY issuance needs the holder's open inquiry
// and its code; the inquiry is used by the issuance and given back when
// the issuance is abandoned.
func TestInquiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		code := "A1B2-C3D4"
		sum := sha256.Sum256([]byte(code))
		inq := &storev1.Inquiry{Id: "inq-1", MunicipalityCode: "13221", HolderId: "h1", CodeSha256: sum[:],
			OpenedAt: timestamppb.New(t0), ExpiresAt: timestamppb.New(t0.AddDate(0, 0, 30))}
		if err := s.OpenInquiry(inq); err != nil {
			t.Fatal(err)
		}
		try := func(holder, code string, now time.Time) error {
			return s.Reserve(Reservation{Certs: []*storev1.Certificate{pending(holder, auth)}, Now: now, InquiryID: "inq-1", InquiryCode: code})
		}
		if err := try("h1", "WRONG", t0); !errors.Is(err, ErrInquiry) {
			t.Errorf("wrong code = %v", err)
		}
		if err := try("h2", code, t0); !errors.Is(err, ErrInquiry) {
			t.Errorf("other holder = %v", err)
		}
		if err := try("h1", code, t0.AddDate(0, 0, 30)); !errors.Is(err, ErrInquiry) {
			t.Errorf("expired = %v", err)
		}
		if err := try("h1", code, t0.AddDate(0, 0, 29)); err != nil {
			t.Fatalf("valid code = %v", err)
		}
		got, _ := s.Inquiry("inq-1")
		if got.UsedAt == nil || len(got.UsedBy) != 1 {
			t.Fatalf("inquiry not marked used: %v", got)
		}
		if _, err := s.AbandonPending(t0.AddDate(100, 0, 0)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Inquiry("inq-1"); got.UsedAt != nil {
			t.Fatal("abandoning the issuance did not give the inquiry back")
		}
		if err := try("h1", code, t0.AddDate(0, 0, 1)); err != nil {
			t.Fatalf("reuse after abandon = %v", err)
		}
		if err := s.Complete(Completion{Now: t0}); err != nil { // nothing to complete is fine
			t.Fatal(err)
		}
	})
}

// TestInquiryAttemptLimit (R-A2): wrong codes are counted durably, even
// when presented concurrently; at MaxInquiryAttempts the inquiry refuses
// its own code; a refused reservation records nothing but the count.
func TestInquiryAttemptLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s, err := be.open(t, Options{Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		code := "K7M2P-Q9R4T"
		sum := sha256.Sum256([]byte(code))
		for _, id := range []string{"inq-a", "inq-b"} {
			inq := &storev1.Inquiry{Id: id, MunicipalityCode: "13221", HolderId: "holder-" + id, CodeSha256: sum[:],
				OpenedAt: timestamppb.New(t0), ExpiresAt: timestamppb.New(t0.AddDate(0, 0, 30))}
			if err := s.OpenInquiry(inq); err != nil {
				t.Fatal(err)
			}
		}
		try := func(s *Store, id, holder, code string) error {
			return s.Reserve(Reservation{Certs: []*storev1.Certificate{pending(holder, auth)}, Now: t0, InquiryID: id, InquiryCode: code})
		}
		attempts := func(s *Store, id string) uint32 {
			t.Helper()
			inq, err := s.Inquiry(id)
			if err != nil {
				t.Fatal(err)
			}
			return inq.GetFailedAttempts()
		}

		// Another holder presenting the inquiry is refused for that, and does
		// not use up the holder's attempts.
		if err := try(s, "inq-a", "someone-else", "WRONG-CODE"); !errors.Is(err, ErrInquiry) || errors.Is(err, ErrInquiryWrongCode) {
			t.Errorf("another holder: %v, want ErrInquiry but not ErrInquiryWrongCode", err)
		}
		for i := uint32(1); i < MaxInquiryAttempts; i++ {
			err := try(s, "inq-a", "holder-inq-a", fmt.Sprintf("WRONG-%d", i))
			wrong, ok := errors.AsType[*WrongCodeError](err)
			if !ok || !errors.Is(err, ErrInquiryWrongCode) || !errors.Is(err, ErrInquiry) || wrong.Attempts != i {
				t.Fatalf("wrong code %d: %v, want a WrongCodeError with Attempts %d", i, err, i)
			}
		}
		if got := attempts(s, "inq-a"); got != MaxInquiryAttempts-1 {
			t.Fatalf("%d wrong codes recorded, want %d", got, MaxInquiryAttempts-1)
		}
		// The count survives a restart.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = be.open(t, Options{Now: func() time.Time { return t0 }}); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := attempts(s, "inq-a"); got != MaxInquiryAttempts-1 {
			t.Fatalf("after reopening: %d wrong codes, want %d", got, MaxInquiryAttempts-1)
		}
		// The last wrong code locks it; the right code is refused from then on.
		if err := try(s, "inq-a", "holder-inq-a", "WRONG-LAST"); !errors.Is(err, ErrInquiryWrongCode) {
			t.Fatalf("last wrong code: %v", err)
		}
		for _, c := range []string{code, "WRONG-AFTER"} {
			if err := try(s, "inq-a", "holder-inq-a", c); !errors.Is(err, ErrInquiryLocked) {
				t.Errorf("code %q on a locked inquiry: %v, want ErrInquiryLocked", c, err)
			}
		}
		if got := attempts(s, "inq-a"); got != MaxInquiryAttempts {
			t.Errorf("locked inquiry: %d wrong codes recorded, want %d (a locked inquiry counts no more)", got, MaxInquiryAttempts)
		}
		// Nothing but the counts was recorded: the holder has no pending
		// certificate, and the inquiry is unused.
		certs, err := s.HolderCertificates("13221", "holder-inq-a")
		if err != nil {
			t.Fatal(err)
		}
		if inq, _ := s.Inquiry("inq-a"); len(certs) != 0 || inq.UsedAt != nil {
			t.Errorf("refused reservations left %d certificates, inquiry used at %v", len(certs), inq.UsedAt)
		}

		// Concurrent guesses share transactions (batch.go) and still stop at
		// the limit: exactly MaxInquiryAttempts are judged, the rest refused
		// as locked.
		const guesses = 3 * MaxInquiryAttempts
		errs := make(chan error, guesses)
		var wg sync.WaitGroup
		for i := range guesses {
			wg.Go(func() { errs <- try(s, "inq-b", "holder-inq-b", fmt.Sprintf("GUESS-%d", i)) })
		}
		wg.Wait()
		close(errs)
		var wrong, locked int
		for err := range errs {
			switch {
			case errors.Is(err, ErrInquiryWrongCode):
				wrong++
			case errors.Is(err, ErrInquiryLocked):
				locked++
			default:
				t.Errorf("concurrent guess: %v", err)
			}
		}
		if wrong != MaxInquiryAttempts || locked != guesses-MaxInquiryAttempts || attempts(s, "inq-b") != MaxInquiryAttempts {
			t.Errorf("%d concurrent guesses: %d judged wrong, %d locked, %d recorded; want %d, %d, %d",
				guesses, wrong, locked, attempts(s, "inq-b"), MaxInquiryAttempts, guesses-MaxInquiryAttempts, MaxInquiryAttempts)
		}
	})
}

// TestGroupCommitIsolation: concurrent reservations share transactions, and
// a refused one among them neither fails nor half-applies the others.
func TestGroupCommitIsolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{pending("taken", sign)}, Now: t0})
		const n = 64
		var wg sync.WaitGroup
		errs := make([]error, n)
		recs := make([]*storev1.Certificate, n)
		for i := range n {
			holder := fmt.Sprintf("g%d", i)
			if i%8 == 0 {
				holder = "taken" // refused: double issuance
			}
			recs[i] = pending(holder, sign)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Reserve(Reservation{Certs: []*storev1.Certificate{recs[i]}, Now: t0})
			}()
		}
		wg.Wait()
		for i := range n {
			_, getErr := s.Certificate(recs[i].Serial)
			if i%8 == 0 {
				if !errors.Is(errs[i], ErrDoubleIssuance) || !errors.Is(getErr, ErrNotFound) {
					t.Errorf("%d: refused reservation: err %v, recorded %v", i, errs[i], getErr)
				}
				continue
			}
			if errs[i] != nil || getErr != nil {
				t.Errorf("%d: good reservation: err %v, lookup %v", i, errs[i], getErr)
			}
		}
		s.Close()
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{pending("late", sign)}, Now: t0}); !errors.Is(err, ErrClosed) {
			t.Errorf("Reserve after Close = %v, want ErrClosed", err)
		}
	})
}
