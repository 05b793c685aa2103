package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"math/big"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/shomei-pki/shomei/ocsp"
)

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl not installed: run make test (deploy/dev/deps.sh installs it)")
	}
}

// TestOpenSSLIndex serves a 10-certificate dataset with `openssl ocsp`
// (started as the benchmark starts its peer, -multi 2, on loopback in
// TestMain's network namespace) and asks it, over HTTP with the load
// generator's requests, for every serial and one it does not know: openssl
// must find each in the index.txt the benchmark wrote and answer what the
// bbolt Source answers for Shomei. (OpenSSL 3.0's -port takes a port
// number only, "127.0.0.1:P" is refused, hence the namespace.)
func TestOpenSSLIndex(t *testing.T) {
	needOpenSSL(t)
	p := mustPKI(t)
	dir := t.TempDir()
	revokedAt := time.Date(2026, 5, 1, 1, 2, 3, 0, time.UTC)
	data := &dataset{NotAfter: time.Now().UTC().AddDate(1, 0, 0).Truncate(time.Second)}
	for _, sn := range []string{"1", "abc", "1001", "ff", "800000000000000000", "7f0102030405060708090a0b0c0d0e0f"} {
		n, _ := new(big.Int).SetString(sn, 16)
		data.Entries = append(data.Entries, entry{Serial: n})
	}
	for i, r := range revocationReasons {
		data.Entries = append(data.Entries, entry{Serial: big.NewInt(0x2000 + int64(i)), Revoked: true,
			RevokedAt: revokedAt.Add(time.Duration(i) * time.Hour), Reason: r})
	}
	files := peerFiles{
		Index:     filepath.Join(dir, "index.txt"),
		CA:        filepath.Join(dir, "ca.pem"),
		Responder: filepath.Join(dir, "responder.pem"),
		Key:       filepath.Join(dir, "responder-key.pem"),
	}
	key, err := x509.MarshalPKCS8PrivateKey(p.responderKey)
	if err != nil {
		t.Fatal(err)
	}
	boltPath := filepath.Join(dir, "status.db")
	for _, err := range []error{
		data.writeIndexFile(files.Index), data.writeBolt(boltPath),
		writePEM(files.CA, "CERTIFICATE", p.issuer.Raw),
		writePEM(files.Responder, "CERTIFICATE", p.responder.Raw),
		writePEM(files.Key, "PRIVATE KEY", key),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	src, err := openBoltSource(boltPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	peer, err := startPeer(ctx, files, 2, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.stop()
	h, err := hashesOf(p.issuer)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := testConn(t, peer.URL)
	ask := func(t *testing.T, serial *big.Int) ([]byte, []byte) {
		der, err := buildRequest(h, serial, true)
		if err != nil {
			t.Fatal(err)
		}
		nonce := []byte("0123456789abcdef")
		setNonce(der, nonce)
		var body bytes.Buffer
		if err := client.post(ctx, der, &body); err != nil {
			t.Fatal(err)
		}
		if err := checkResponse(body.Bytes()); err != nil {
			t.Fatal(err)
		}
		return body.Bytes(), nonce
	}
	for _, e := range data.Entries {
		t.Run(serialHex(e.Serial), func(t *testing.T) {
			resp, nonce := ask(t, e.Serial)
			if err := verifyResponse(resp, p.issuer, &e, nonce, time.Now()); err != nil {
				t.Errorf("openssl: %v", err)
			}
			st, err := src.Status(ctx, nil, e.Serial)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]ocsp.CertStatus{false: ocsp.Good, true: ocsp.Revoked}[e.Revoked]; st.Status != want ||
				e.Revoked && (!st.RevokedAt.Equal(e.RevokedAt) || st.Reason != e.Reason) {
				t.Errorf("bolt Source: %+v, want %+v", st, e)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		serial := big.NewInt(0x1003)
		resp, _ := ask(t, serial)
		r, err := xocsp.ParseResponse(resp, p.issuer)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != xocsp.Unknown || r.SerialNumber.Cmp(serial) != 0 {
			t.Errorf("openssl: serial %X status %d, want unknown", r.SerialNumber, r.Status)
		}
		if st, err := src.Status(ctx, nil, serial); err != nil || st.Status != ocsp.Unknown {
			t.Errorf("bolt Source: %+v, %v; want unknown", st, err)
		}
	})
}
