package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

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
