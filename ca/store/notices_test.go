package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// MunicipalityCertificates walks one municipality's certificates only,
// page by page, each exactly once, whatever the page size; a page key of
// another municipality is refused.
func TestMunicipalityCertificates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		want := map[string]bool{}
		for i := range 7 {
			for _, m := range []string{"13221", "13222", "1322"} {
				a, b := pending(fmt.Sprintf("h%d", i), sign), pending(fmt.Sprintf("h%d", i), auth)
				a.MunicipalityCode, b.MunicipalityCode = m, m
				issue(t, s, Reservation{Certs: []*storev1.Certificate{a, b}, Now: t0})
				if m == "13221" {
					want[string(a.Serial)], want[string(b.Serial)] = true, true
				}
			}
		}
		for _, page := range []int{1, 3, 14, 100} {
			got := map[string]bool{}
			var after []byte
			for {
				last, err := s.MunicipalityCertificates("13221", after, page, func(c *storev1.Certificate) error {
					if c.MunicipalityCode != "13221" || got[string(c.Serial)] {
						return fmt.Errorf("certificate %x of %s, seen before: %v", c.Serial, c.MunicipalityCode, got[string(c.Serial)])
					}
					got[string(c.Serial)] = true
					return nil
				})
				if err != nil {
					t.Fatalf("page size %d: %v", page, err)
				}
				if last == nil {
					break
				}
				after = last
			}
			if len(got) != len(want) {
				t.Fatalf("page size %d: %d certificates, want %d", page, len(got), len(want))
			}
		}
		other := append([]byte("13222"), 0)
		if _, err := s.MunicipalityCertificates("13221", other, 10, func(*storev1.Certificate) error { return nil }); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("a page key of another municipality: %v", err)
		}
	})
}

// TestSnapshot: a snapshot is the whole store as one read transaction saw
// it, with the audit head of that moment, in the store's one backup format
// (a bbolt file) whatever the engine: restored, it opens as a store with
// the same records and an unbroken audit chain, and without what was
// written after it was taken. Count counts each kind of record.
func TestSnapshot(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		initTest(t, s)
		a := pending("h1", sign)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{a}, Now: t0})
		key := sha256.Sum256([]byte("responder key"))
		if err := s.ReserveResponder(&storev1.ResponderCertificate{Serial: []byte{1}, Issuer: "sign-g1", Replica: "replica1",
			PublicKeySha256: key[:], NotBefore: timestamppb.New(t0), NotAfter: timestamppb.New(t0.Add(24 * time.Hour)),
			State: storev1.CertState_CERT_STATE_PENDING},
			&storev1.AuditRecord{Actor: "replica:replica1", Action: ActionResponderCertify,
				Fields: []*storev1.AuditField{{Key: "serial", Value: "01"}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendAudit(&storev1.AuditRecord{Actor: "test", Action: "test.snapshot"}); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		info, err := s.Snapshot(&buf)
		if err != nil || info.Size != int64(buf.Len()) || info.AuditHeadSeq == 0 || !info.TakenAt.Equal(t0) {
			t.Fatalf("snapshot: %+v, %d bytes, %v", info, buf.Len(), err)
		}
		seq, hash, _ := s.AuditHead()
		if seq != info.AuditHeadSeq || hash != info.AuditHeadHash || hash == [sha256.Size]byte{} {
			t.Fatalf("snapshot head %d %x, store's %d %x", info.AuditHeadSeq, info.AuditHeadHash, seq, hash)
		}
		c, err := s.Count()
		want := Counts{Certificates: 1, Issuers: 2, AuditRecords: int(seq), Responders: 1}
		if err != nil || c != want {
			t.Fatalf("count: %+v, %v; want %+v", c, err, want)
		}
		issuers := mustIssuers(t, s)
		// Written after the snapshot: not in it.
		issue(t, s, Reservation{Certs: []*storev1.Certificate{pending("h2", sign)}, Now: t0})
		if err := s.AppendAudit(&storev1.AuditRecord{Actor: "test", Action: "test.after"}); err != nil {
			t.Fatal(err)
		}

		restored := boltBackend(t)
		if err := os.MkdirAll(filepath.Dir(restored.loc), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(restored.loc, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		r := openTemp(t, restored)
		if n, err := r.VerifyAudit(); err != nil || uint64(n) != info.AuditHeadSeq {
			t.Errorf("restored VerifyAudit = %d, %v; want %d, nil", n, err, info.AuditHeadSeq)
		}
		if rseq, rhash, err := r.AuditHead(); err != nil || rseq != info.AuditHeadSeq || rhash != info.AuditHeadHash {
			t.Errorf("restored head %d %x (%v), want the snapshot's %d %x", rseq, rhash, err, info.AuditHeadSeq, info.AuditHeadHash)
		}
		if rc, err := r.Count(); err != nil || rc != want {
			t.Errorf("restored count: %+v, %v; want %+v", rc, err, want)
		}
		sameKeys(t, mustIssuers(t, r), issuers)
		got, err := r.Certificate(a.Serial)
		orig, _ := s.Certificate(a.Serial)
		if err != nil || !proto.Equal(got, orig) {
			t.Errorf("restored certificate %v (%v), want %v", got, err, orig)
		}
	})
}

// BenchmarkMunicipalityCertificates walks 20,000 certificates of one
// municipality (with 1.2 kB certificates, as issued) per iteration, in
// pages of 5,000 as ca.RenewalNotices does.
func BenchmarkMunicipalityCertificates(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) { benchmarkMunicipalityCertificates(b, e.fresh(b)) })
	}
}

func benchmarkMunicipalityCertificates(b *testing.B, be backend) {
	s, err := be.open(b, Options{Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 20_000
	var certs []*storev1.Certificate
	for i := range n / 2 {
		x, y := pending(fmt.Sprintf("h%d", i), sign), pending(fmt.Sprintf("h%d", i), auth)
		for _, c := range []*storev1.Certificate{x, y} {
			var tbs cryptobyte.Builder
			tbs.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(c.TbsDer)
				b.AddASN1OctetString(bytes.Repeat([]byte{1}, 600))
			})
			c.TbsDer = tbs.BytesOrPanic()
		}
		certs = append(certs, x, y)
	}
	for i := 0; i < len(certs); i += 2 {
		r := Reservation{Certs: certs[i : i+2], Now: t0}
		if err := s.Reserve(r); err != nil {
			b.Fatal(err)
		}
		c := Completion{DER: map[string][]byte{}, Now: t0}
		for _, rec := range r.Certs {
			c.DER[string(rec.Serial)] = fakeDER(rec.TbsDer)
		}
		if err := s.Complete(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		seen := 0
		var after []byte
		for {
			last, err := s.MunicipalityCertificates("13221", after, 5000, func(*storev1.Certificate) error { seen++; return nil })
			if err != nil {
				b.Fatal(err)
			}
			if last == nil {
				break
			}
			after = last
		}
		if seen != n {
			b.Fatalf("walked %d", seen)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/cert")
}
