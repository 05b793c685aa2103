package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"sync"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/shomei-pki/shomei/ocsp"
)

// testPKI is a software issuer (P-256, quicker to make than RSA) and a
// delegated responder, made as the benchmark makes them.
type testPKI struct {
	issuer, responder       *x509.Certificate
	issuerKey, responderKey *ecdsa.PrivateKey
}

var newTestPKI = sync.OnceValues(func() (*testPKI, error) {
	p := &testPKI{}
	var err error
	if p.issuerKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if p.responderKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	now := time.Now()
	if p.issuer, err = newIssuerCertificate(p.issuerKey, now); err != nil {
		return nil, err
	}
	if p.responder, err = newResponder(p.issuer, p.issuerKey, p.responderKey.Public(), now); err != nil {
		return nil, err
	}
	return p, nil
})

func mustPKI(t *testing.T) *testPKI {
	t.Helper()
	p, err := newTestPKI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildRequest(t *testing.T) {
	p := mustPKI(t)
	h, err := hashesOf(p.issuer)
	if err != nil {
		t.Fatal(err)
	}
	serial := new(big.Int).SetBytes(bytes.Repeat([]byte{0x7f}, 16))
	for _, withNonce := range []bool{false, true} {
		der, err := buildRequest(h, serial, withNonce)
		if err != nil {
			t.Fatal(err)
		}
		nonce := bytes.Repeat([]byte{0xa5}, nonceLen)
		if withNonce {
			setNonce(der, nonce)
		}
		// x/crypto/ocsp reads the CertID, Shomei's parser the nonce.
		x, err := xocsp.ParseRequest(der)
		if err != nil {
			t.Fatalf("x/crypto/ocsp: %v", err)
		}
		if x.HashAlgorithm != crypto.SHA1 || x.SerialNumber.Cmp(serial) != 0 || !bytes.Equal(x.IssuerNameHash, h.name) || !bytes.Equal(x.IssuerKeyHash, h.key) {
			t.Errorf("CertID %+v", x)
		}
		req, err := ocsp.ParseRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		if withNonce != (req.Nonce != nil) || withNonce && !bytes.Equal(req.Nonce, nonce) {
			t.Errorf("nonce %x, want %x (with nonce: %v)", req.Nonce, nonce, withNonce)
		}
	}
}

func TestCheckResponse(t *testing.T) {
	p := mustPKI(t)
	now := time.Now().Truncate(time.Second)
	good := &entry{Serial: big.NewInt(0x1001)}
	revoked := &entry{Serial: big.NewInt(0x1002), Revoked: true, RevokedAt: now.Add(-time.Hour).UTC(), Reason: 1}
	sign := func(e *entry) []byte {
		tmpl := xocsp.Response{SerialNumber: e.Serial, Status: xocsp.Good, ThisUpdate: now, NextUpdate: now.Add(time.Hour), Certificate: p.responder}
		if e.Revoked {
			tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = xocsp.Revoked, e.RevokedAt, e.Reason
		}
		der, err := xocsp.CreateResponse(p.issuer, p.responder, tmpl, p.responderKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	tests := []struct {
		name        string
		der         []byte
		want        *entry
		checkErr    bool // checkResponse fails
		verifyError bool // verifyResponse fails
	}{
		{name: "good", der: sign(good), want: good},
		{name: "revoked", der: sign(revoked), want: revoked},
		{name: "another serial", der: sign(good), want: revoked, verifyError: true},
		{name: "good, revoked expected", der: sign(good), want: &entry{Serial: good.Serial, Revoked: true, RevokedAt: now, Reason: 1}, verifyError: true},
		{name: "unauthorized", der: []byte{0x30, 0x03, 0x0a, 0x01, 0x06}, checkErr: true},
		{name: "trailing data", der: append(sign(good), 0), checkErr: true},
		{name: "garbage", der: []byte("HTTP/1.0 200 OK"), checkErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkResponse(tc.der)
			if (err != nil) != tc.checkErr {
				t.Fatalf("checkResponse: %v, want error %v", err, tc.checkErr)
			}
			if tc.checkErr {
				return
			}
			err = verifyResponse(tc.der, p.issuer, tc.want, nil, time.Now())
			if (err != nil) != tc.verifyError {
				t.Errorf("verifyResponse: %v, want error %v", err, tc.verifyError)
			}
			if nonce, err := responseNonce(tc.der); err != nil || nonce != nil {
				t.Errorf("responseNonce = %x, %v; want none", nonce, err)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	r := result{OK: 100, Elapsed: 2 * time.Second}
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := r.Percentile(tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if r.Rate() != 50 {
		t.Errorf("Rate = %v, want 50", r.Rate())
	}
	if (result{}).Percentile(0.99) != 0 {
		t.Error("Percentile of nothing is not 0")
	}
}
