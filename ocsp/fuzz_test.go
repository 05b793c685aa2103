package ocsp_test

import (
	"bytes"
	"crypto"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/shomei-pki/shomei/ocsp"
)

// FuzzParseRequest: ParseRequest never panics, fails only with
// ErrMalformed, and what it accepts re-marshals to a request that parses
// to the same CertIDs and nonce, and marshals to the same bytes again.
func FuzzParseRequest(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "openssl-*.der"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, s := range seeds {
		raw, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ocsp.ParseRequest(der)
		if err != nil {
			if !errors.Is(err, ocsp.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if len(req.CertIDs) == 0 {
			t.Fatal("accepted a request without CertIDs")
		}
		again, err := req.Marshal()
		if err != nil {
			t.Fatalf("Marshal of an accepted request: %v", err)
		}
		req2, err := ocsp.ParseRequest(again)
		if err != nil {
			t.Fatalf("ParseRequest(Marshal()): %v", err)
		}
		if !bytes.Equal(req.Nonce, req2.Nonce) || (req.Nonce == nil) != (req2.Nonce == nil) || req2.Signed || len(req.CertIDs) != len(req2.CertIDs) {
			t.Fatalf("round trip changed the request: %+v -> %+v", req, req2)
		}
		for i, a := range req.CertIDs {
			b := req2.CertIDs[i]
			if a.HashAlgorithm != b.HashAlgorithm || !bytes.Equal(a.IssuerNameHash, b.IssuerNameHash) ||
				!bytes.Equal(a.IssuerKeyHash, b.IssuerKeyHash) || a.SerialNumber.Cmp(b.SerialNumber) != 0 {
				t.Fatalf("CertID %d changed: %+v -> %+v", i, a, b)
			}
		}
		third, err := req2.Marshal()
		if err != nil || !bytes.Equal(third, again) {
			t.Fatalf("Marshal is not stable: %v", err)
		}
	})
}

// FuzzServeHTTP posts arbitrary bodies to the responder: it always answers
// HTTP 200 with either a signed response or malformedRequest or
// unauthorized — never internalError, since the Source never fails here.
func FuzzServeHTTP(f *testing.F) {
	e := newEnv(f, nil)
	g := e.f.gen1
	for _, der := range [][]byte{
		request(f, g.cert, crypto.SHA1, nil, g.leaf(serialGood)),
		request(f, g.cert, crypto.SHA256, []byte("nonce"), g.leaf(serialRevoked)),
		request(f, g.cert, crypto.SHA1, nil, g.leaf(serialGood), g.leaf(serialUnknown)),
	} {
		f.Add(der)
	}
	seeds, _ := filepath.Glob(filepath.Join("testdata", "openssl-*.der"))
	for _, s := range seeds {
		raw, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(t, e.r, http.MethodPost, body, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d", rec.Code)
		}
		raw := rec.Body.Bytes()
		if len(raw) == 5 {
			if s := raw[4]; s != 1 && s != 6 {
				t.Fatalf("responseStatus %d", s)
			}
			return
		}
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			t.Fatalf("a signed response to a request ParseRequest refuses: %v", err)
		}
		if len(req.CertIDs) == 1 {
			if _, err := xocsp.ParseResponse(raw, g.cert); err != nil {
				t.Fatalf("x/crypto/ocsp refuses the response: %v", err)
			}
		}
	})
}
