package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// MunicipalityCertificates walks one municipality's certificates only,
// page by page, each exactly once, whatever the page size; a page key of
// another municipality is refused.
func TestMunicipalityCertificates(t *testing.T) {
	s := openTemp(t)
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
}

// A snapshot is the store's bytes as one transaction saw them, with the
// audit head of that moment.
func TestSnapshot(t *testing.T) {
	s := openTemp(t)
	a := pending("h1", sign)
	issue(t, s, Reservation{Certs: []*storev1.Certificate{a}, Now: t0})
	if err := s.AppendAudit(&storev1.AuditRecord{Actor: "test", Action: "test.snapshot"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := s.Snapshot(&buf)
	if err != nil || info.Size != int64(buf.Len()) || info.AuditHeadSeq == 0 {
		t.Fatalf("snapshot: %+v, %d bytes, %v", info, buf.Len(), err)
	}
	seq, hash, _ := s.AuditHead()
	if seq != info.AuditHeadSeq || hash != info.AuditHeadHash || hash == [sha256.Size]byte{} {
		t.Fatalf("snapshot head %d %x, store's %d %x", info.AuditHeadSeq, info.AuditHeadHash, seq, hash)
	}
	c, err := s.Count()
	if err != nil || c.Certificates != 1 || c.AuditRecords != int(seq) {
		t.Fatalf("count: %+v, %v", c, err)
	}
}

// BenchmarkMunicipalityCertificates walks 20,000 certificates of one
// municipality (with 1.2 kB certificates, as issued) per iteration, in
// pages of 5,000 as ca.RenewalNotices does.
func BenchmarkMunicipalityCertificates(b *testing.B) {
	s, err := Open(b.TempDir()+"/s.db", Options{Now: func() time.Time { return t0 }})
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
