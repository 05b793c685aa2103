package crl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"testing"
	"time"
)

// TestEntryCount counts the entries of CRLs a restarted Publisher loads,
// to size the next requests of their partitions.
func TestEntryCount(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, SubjectKeyId: []byte{1, 2, 3}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 1000} {
		list := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
		for i := range n {
			list.RevokedCertificateEntries = append(list.RevokedCertificateEntries,
				x509.RevocationListEntry{SerialNumber: big.NewInt(int64(i + 1)), RevocationTime: now, ReasonCode: i % 6})
		}
		crl, err := x509.CreateRevocationList(rand.Reader, list, issuer, key)
		if err != nil {
			t.Fatal(err)
		}
		if got := entryCount(crl); got != n {
			t.Errorf("entryCount = %d, want %d", got, n)
		}
		if got := entryCount(crl[:len(crl)/2]); got != 0 {
			t.Errorf("entryCount of half a CRL = %d, want 0", got)
		}
	}
}

// TestSeconds: seconds is Truncate(time.Second), before and after 1970,
// in any zone, with and without a monotonic clock reading.
func TestSeconds(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("JST", 9*3600), time.FixedZone("odd", -(3*3600 + 17))}
	times := []time.Time{time.Now(), time.Now().Add(-time.Nanosecond), {}, time.Unix(0, 0), time.Unix(-1, 999_999_999),
		time.Date(1950, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)}
	for i := range 1000 {
		times = append(times, time.Unix(int64(i)*7919*86400-1e12, int64(i)*1_000_003%1_000_000_000))
	}
	for _, tm := range times {
		for _, z := range zones {
			tm := tm.In(z)
			got, want := seconds(tm), tm.Truncate(time.Second)
			// String shows the zone and any monotonic reading.
			if !got.Equal(want) || got.Location() != want.Location() || got.String() != want.String() {
				t.Errorf("seconds(%v) = %s, Truncate gives %s", tm, got, want)
			}
		}
	}
}

// TestETag: a CRL's ETag is the SHA-256 of its signature value, so two
// CRLs differ in it as they differ in content (the number, the times and
// the entries are all signed); bytes that are not a CRL get the SHA-256
// of the whole.
func TestETag(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, SubjectKeyId: []byte{1, 2, 3}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]int64{}
	for n := range int64(3) {
		crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(n), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, issuer, key)
		if err != nil {
			t.Fatal(err)
		}
		list, err := x509.ParseRevocationList(crl)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(list.Signature)
		if got, want := etagOf(crl), `"`+hex.EncodeToString(sum[:16])+`"`; got != want {
			t.Errorf("CRL %d: ETag %s, want %s (its signature's SHA-256)", n, got, want)
		}
		if other, ok := tags[etagOf(crl)]; ok {
			t.Errorf("CRLs %d and %d have one ETag", other, n)
		}
		tags[etagOf(crl)] = n
	}
	junk := []byte("not a CRL")
	if sum := sha256.Sum256(junk); etagOf(junk) != `"`+hex.EncodeToString(sum[:16])+`"` {
		t.Errorf("ETag of junk %s, want the SHA-256 of the whole", etagOf(junk))
	}
}
