package ocsp_test

import (
	"bytes"
	"crypto"
	"math/big"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/shomei-pki/shomei/ocsp"
)

// requestForSerial is a one-CertID request of gen1's issuer for any serial,
// issued or not.
func requestForSerial(t testing.TB, e *env, serial *big.Int, nonce []byte) []byte {
	t.Helper()
	g := e.f.gen1
	one, err := ocsp.ParseRequest(request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood)))
	if err != nil {
		t.Fatal(err)
	}
	id := one.CertIDs[0]
	id.SerialNumber = serial
	der, err := (&ocsp.Request{CertIDs: []ocsp.CertID{id}, Nonce: nonce}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// tightBudget: 1 fresh signature a second, 5 at once, on the env's pinned
// clock (so the bucket refills only when the test moves it).
func tightBudget(c *ocsp.Config) { c.SignatureBudget, c.SignatureBurst = 1, 5 }

// TestAttackNonceFlood: every request with a fresh nonce used to cost an HSM
// signature (issue #9 item 5: 37,679 in 30 s from one client). Now nonce
// responses are signed within the budget; over it the request is answered
// from the cache without its nonce (RFC 5019 §4, RFC 8954), never internalError.
func TestAttackNonceFlood(t *testing.T) {
	e := newEnv(t, tightBudget)
	srv := httptest.NewServer(e.r)
	defer srv.Close()
	g := e.f.gen1
	echoed := 0
	for i := range 200 {
		nonce := bytes.Repeat([]byte{byte(i)}, 16)
		raw := body(t, post(t, srv.URL, request(t, g.cert, crypto.SHA1, nonce, g.leaf(serialGood))))
		resp, err := xocsp.ParseResponseForCert(raw, g.leaf(serialGood), g.cert)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.Status != xocsp.Good {
			t.Fatalf("request %d: status %d", i, resp.Status)
		}
		switch got := responseNonce(t, raw); {
		case got == nil:
		case bytes.Equal(got, nonce):
			echoed++
		default:
			t.Fatalf("request %d: nonce %x, sent %x", i, got, nonce)
		}
	}
	// 5 nonce responses (the burst), then one shared response.
	if echoed != 5 || e.signs() != 6 {
		t.Fatalf("%d nonces echoed, %d signatures; want 5 and 6", echoed, e.signs())
	}
	e.clock.Add(time.Second) // one more fresh signature
	nonce := bytes.Repeat([]byte{0xee}, 32)
	raw := body(t, post(t, srv.URL, request(t, g.cert, crypto.SHA1, nonce, g.leaf(serialGood))))
	if !bytes.Equal(responseNonce(t, raw), nonce) || e.signs() != 7 {
		t.Fatalf("after a second: nonce %x, %d signatures", responseNonce(t, raw), e.signs())
	}
}

// TestAttackUnknownSerials: a serial the issuer never issued used to be
// signed for on every request. Now an unknown answer is cached per issuer,
// CertID hash and serial for UnknownReuse, fresh ones are made within the
// budget, and over it the answer is tryLater (unsigned, with Retry-After).
func TestAttackUnknownSerials(t *testing.T) {
	e := newEnv(t, tightBudget)
	srv := httptest.NewServer(e.r)
	defer srv.Close()
	g := e.f.gen1
	statuses := map[string]int{}
	for i := range 100 {
		serial := new(big.Int).Lsh(big.NewInt(int64(0x4000+i)), 100)
		resp := post(t, srv.URL, requestForSerial(t, e, serial, nil))
		raw := body(t, resp)
		_, err := xocsp.ParseResponse(raw, g.cert)
		switch err {
		case nil:
			statuses["unknown"]++
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("unknown answer sent with Cache-Control %q", cc)
			}
		case xocsp.ResponseError{Status: xocsp.TryLater}:
			statuses["tryLater"]++
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("tryLater with Retry-After %q", resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if statuses["unknown"] != 5 || statuses["tryLater"] != 95 || e.signs() != 5 {
		t.Fatalf("answers %v, %d signatures; want 5 unknown, 95 tryLater, 5 signatures", statuses, e.signs())
	}
	// The same unknown serial again and again: the cached answer.
	first := new(big.Int).Lsh(big.NewInt(0x4000), 100)
	for range 50 {
		raw := body(t, post(t, srv.URL, requestForSerial(t, e, first, nil)))
		resp, err := xocsp.ParseResponse(raw, g.cert)
		if err != nil || resp.Status != xocsp.Unknown || resp.SerialNumber.Cmp(first) != 0 {
			t.Fatalf("cached unknown: %v, %+v", err, resp)
		}
	}
	if e.signs() != 5 {
		t.Fatalf("%d signatures after asking a cached unknown serial again", e.signs())
	}
	// Issuing does not invalidate: the cached unknown answer lasts
	// UnknownReuse (1 min) only.
	e.clock.Add(61 * time.Second)
	body(t, post(t, srv.URL, requestForSerial(t, e, first, nil)))
	if e.signs() != 6 {
		t.Fatalf("%d signatures after UnknownReuse; want 6", e.signs())
	}
}

// TestAttackUnsignedAnswersCostNothing: malformedRequest and unauthorized
// are unsigned (RFC 6960 §4.2.1), and several CertIDs over the budget are
// tryLater: none of them reaches the responder key.
func TestAttackUnsignedAnswersCostNothing(t *testing.T) {
	e := newEnv(t, func(c *ocsp.Config) { c.SignatureBudget, c.SignatureBurst = 1, 1 })
	srv := httptest.NewServer(e.r)
	defer srv.Close()
	g, other := e.f.gen1, e.f.other
	two := request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood), g.leaf(serialRevoked))
	if _, err := xocsp.ParseResponseForCert(body(t, post(t, srv.URL, two)), g.leaf(serialRevoked), g.cert); err != nil {
		t.Fatalf("two CertIDs within the budget: %v", err)
	}
	tests := []struct {
		name string
		der  []byte
		want xocsp.ResponseStatus
	}{
		{"garbage", []byte("0\x03\x02\x01\x01garbage"), xocsp.Malformed},
		{"another issuer", request(t, other.cert, crypto.SHA256, bytes.Repeat([]byte{1}, 16), other.leaf(serialOtherCA)), xocsp.Unauthorized},
		{"two CertIDs over the budget", two, xocsp.TryLater},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 100 {
				if _, err := xocsp.ParseResponse(body(t, post(t, srv.URL, tc.der)), nil); err != (xocsp.ResponseError{Status: tc.want}) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			}
		})
	}
	if n := e.signs() + e.other.Signer.(*countingSigner).n.Load(); n != 1 {
		t.Fatalf("%d signatures; want 1 (the two CertIDs within the budget)", n)
	}
}

// TestSignatureBudgetUnlimited: a negative budget signs every nonce.
func TestSignatureBudgetUnlimited(t *testing.T) {
	e := newEnv(t, func(c *ocsp.Config) { c.SignatureBudget = -1 })
	srv := httptest.NewServer(e.r)
	defer srv.Close()
	g := e.f.gen1
	for i := range 300 {
		nonce := bytes.Repeat([]byte{byte(i)}, 16)
		raw := body(t, post(t, srv.URL, request(t, g.cert, crypto.SHA1, nonce, g.leaf(serialGood))))
		if !bytes.Equal(responseNonce(t, raw), nonce) {
			t.Fatalf("request %d: nonce not echoed", i)
		}
	}
	if e.signs() != 300 {
		t.Fatalf("%d signatures", e.signs())
	}
}
