package x509enc

import (
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"
)

// TestReasons: the table's names and the one rule for CRLs and OCSP.
func TestReasons(t *testing.T) {
	for code, want := range map[int]struct {
		name    string
		allowed bool
	}{
		-1: {"", false},
		0:  {"unspecified", true},
		1:  {"keyCompromise", true},
		2:  {"cACompromise", true},
		3:  {"affiliationChanged", true},
		4:  {"superseded", true},
		5:  {"cessationOfOperation", true},
		6:  {"certificateHold", false}, // R-R2: revocation is permanent
		7:  {"", false},
		8:  {"removeFromCRL", false},
		9:  {"privilegeWithdrawn", true},
		10: {"aACompromise", false},
		11: {"", false},
	} {
		if got := ReasonName(code); got != want.name {
			t.Errorf("ReasonName(%d) = %q, want %q", code, got, want.name)
		}
		if err := CheckReason(code); (err == nil) != want.allowed {
			t.Errorf("CheckReason(%d) = %v, want allowed %v", code, err, want.allowed)
		}
	}
}

// TestReasonCodesAreCryptoX509s: the constants are the codes crypto/x509
// writes and reads back in a CRL entry's reasonCode.
func TestReasonCodesAreCryptoX509s(t *testing.T) {
	key := testKeys()["p256"]
	ca := selfSigned(t, key, x509.ECDSAWithSHA256)
	var entries []x509.RevocationListEntry
	for code := range len(reasons) {
		if ReasonName(code) != "" {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(int64(code + 1)), RevocationTime: ca.NotBefore, ReasonCode: code})
		}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: ca.NotBefore, NextUpdate: ca.NotBefore.Add(time.Hour), RevokedCertificateEntries: entries,
	}, ca, key)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range rl.RevokedCertificateEntries {
		if e.ReasonCode != entries[i].ReasonCode || e.SerialNumber.Int64() != int64(e.ReasonCode+1) {
			t.Errorf("entry %d: reason %d", i, e.ReasonCode)
		}
	}
}
