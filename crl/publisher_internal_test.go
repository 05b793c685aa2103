package crl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
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
