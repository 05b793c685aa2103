package ocsp_test

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/shomei-pki/shomei/ocsp"
)

// request is the DER OCSPRequest for certs of issuer, with the CertID hash
// h and, when nonce is not nil, that nonce.
func request(t testing.TB, issuer *x509.Certificate, h crypto.Hash, nonce []byte, certs ...*x509.Certificate) []byte {
	t.Helper()
	req := &ocsp.Request{Nonce: nonce}
	for _, c := range certs {
		der, err := xocsp.CreateRequest(c, issuer, &xocsp.RequestOptions{Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		one, err := ocsp.ParseRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		req.CertIDs = append(req.CertIDs, one.CertIDs...)
	}
	der, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// post sends der to the responder by POST.
func post(t testing.TB, base string, der []byte) *http.Response {
	t.Helper()
	resp, err := http.Post(base+"/ocsp", "application/ocsp-request", bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// getURL is the RFC 5019 GET URL of der.
func getURL(base string, der []byte) string {
	return base + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(der))
}

func get(t testing.TB, base string, der []byte, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, getURL(base, der), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func body(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %s: %q", resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/ocsp-response" {
		t.Fatalf("Content-Type %q", ct)
	}
	return b
}

// responseNonce digs the nonce out of a response's responseExtensions
// (x/crypto/ocsp does not expose them).
func responseNonce(t testing.TB, der []byte) []byte {
	t.Helper()
	in := cryptobyte.String(der)
	var resp, rb, basic, tbs, basicBytes cryptobyte.String
	var status int
	ok := in.ReadASN1(&resp, cbasn1.SEQUENCE) && resp.ReadASN1Enum(&status) &&
		resp.ReadASN1(&rb, cbasn1.Tag(0).ContextSpecific().Constructed()) &&
		rb.ReadASN1(&rb, cbasn1.SEQUENCE) && rb.SkipASN1(cbasn1.OBJECT_IDENTIFIER) &&
		rb.ReadASN1(&basicBytes, cbasn1.OCTET_STRING) &&
		basicBytes.ReadASN1(&basic, cbasn1.SEQUENCE) && basic.ReadASN1(&tbs, cbasn1.SEQUENCE) &&
		tbs.SkipOptionalASN1(cbasn1.Tag(0).ContextSpecific().Constructed()) &&
		tbs.SkipASN1(cbasn1.Tag(2).ContextSpecific().Constructed()) &&
		tbs.SkipASN1(cbasn1.GeneralizedTime) && tbs.SkipASN1(cbasn1.SEQUENCE)
	if !ok {
		t.Fatalf("cannot parse the response")
	}
	var exts, list cryptobyte.String
	var present bool
	if !tbs.ReadOptionalASN1(&exts, &present, cbasn1.Tag(1).ContextSpecific().Constructed()) {
		t.Fatal("bad responseExtensions")
	}
	if !present {
		return nil
	}
	exts.ReadASN1(&list, cbasn1.SEQUENCE)
	for !list.Empty() {
		var ext, value, nonce cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !list.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) ||
			!ext.ReadASN1(&value, cbasn1.OCTET_STRING) {
			t.Fatal("bad extension")
		}
		if oid.Equal(oidNonce) {
			if !value.ReadASN1(&nonce, cbasn1.OCTET_STRING) {
				t.Fatal("nonce is not an OCTET STRING")
			}
			return nonce
		}
	}
	return nil
}

func TestResponses(t *testing.T) {
	e := newEnv(t, nil)
	srv := httptest.NewServer(e.r)
	defer srv.Close()
	f := e.f
	nonce := []byte("0123456789abcdef")
	tests := []struct {
		name      string
		gen       *generation
		serial    *big.Int
		hash      crypto.Hash
		method    string
		nonce     []byte
		want      int // xocsp.Good, Revoked, Unknown
		reason    int
		invalDate time.Time
	}{
		{name: "good SHA-1 POST", gen: f.gen1, serial: serialGood, hash: crypto.SHA1, method: "POST", want: xocsp.Good},
		{name: "good SHA-256 GET", gen: f.gen1, serial: serialGood, hash: crypto.SHA256, method: "GET", want: xocsp.Good},
		{name: "good SHA-256 POST nonce", gen: f.gen1, serial: serialGood, hash: crypto.SHA256, method: "POST", nonce: nonce, want: xocsp.Good},
		{name: "revoked SHA-1 GET", gen: f.gen1, serial: serialRevoked, hash: crypto.SHA1, method: "GET", want: xocsp.Revoked, reason: xocsp.KeyCompromise, invalDate: invalidityDate},
		{name: "revoked SHA-256 POST nonce", gen: f.gen1, serial: serialRevoked, hash: crypto.SHA256, method: "POST", nonce: nonce[:1], want: xocsp.Revoked, reason: xocsp.KeyCompromise, invalDate: invalidityDate},
		{name: "unknown SHA-1 POST", gen: f.gen1, serial: serialUnknown, hash: crypto.SHA1, method: "POST", want: xocsp.Unknown},
		{name: "unknown SHA-256 GET 32-octet nonce", gen: f.gen1, serial: serialUnknown, hash: crypto.SHA256, method: "GET", nonce: bytes.Repeat([]byte{7}, 32), want: xocsp.Unknown},
		{name: "second generation good, RSA responder", gen: f.gen2, serial: serialGen2Good, hash: crypto.SHA256, method: "GET", want: xocsp.Good},
		{name: "second generation revoked, no reason", gen: f.gen2, serial: serialGen2Unsp, hash: crypto.SHA1, method: "POST", want: xocsp.Revoked, reason: xocsp.Unspecified},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leaf := tc.gen.leaf(tc.serial)
			der := request(t, tc.gen.cert, tc.hash, tc.nonce, leaf)
			var resp *http.Response
			if tc.method == "GET" {
				resp = get(t, srv.URL, der, nil)
			} else {
				resp = post(t, srv.URL, der)
			}
			raw := body(t, resp)
			got, err := xocsp.ParseResponseForCert(raw, leaf, tc.gen.cert)
			if err != nil {
				t.Fatalf("ParseResponseForCert: %v", err)
			}
			if got.Status != tc.want {
				t.Errorf("status %d, want %d", got.Status, tc.want)
			}
			if got.IssuerHash != tc.hash {
				t.Errorf("CertID hash %v, want %v", got.IssuerHash, tc.hash)
			}
			if !bytes.Equal(got.Certificate.Raw, tc.gen.responder.Raw) {
				t.Errorf("certs does not hold the delegated responder certificate")
			}
			if len(got.ResponderKeyHash) != sha1.Size || got.RawResponderName != nil {
				t.Errorf("ResponderID is not byKey: %x %x", got.ResponderKeyHash, got.RawResponderName)
			}
			now := e.clock.Now()
			if !got.ThisUpdate.Equal(now) || !got.NextUpdate.Equal(now.Add(ocsp.DefaultValidity)) || !got.ProducedAt.Equal(now) {
				t.Errorf("producedAt %v thisUpdate %v nextUpdate %v; want %v, %v, %v+1h", got.ProducedAt, got.ThisUpdate, got.NextUpdate, now, now, now)
			}
			if tc.want == xocsp.Revoked {
				if !got.RevokedAt.Equal(revokedAt) || got.RevocationReason != tc.reason {
					t.Errorf("revoked at %v reason %d, want %v reason %d", got.RevokedAt, got.RevocationReason, revokedAt, tc.reason)
				}
			}
			var inval time.Time
			for _, ext := range got.Extensions {
				if ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 24}) {
					if _, err := asn1.UnmarshalWithParams(ext.Value, &inval, "generalized"); err != nil {
						t.Fatalf("invalidityDate: %v", err)
					}
				}
			}
			if !inval.Equal(tc.invalDate) {
				t.Errorf("invalidityDate %v, want %v", inval, tc.invalDate)
			}
			if n := responseNonce(t, raw); !bytes.Equal(n, tc.nonce) {
				t.Errorf("nonce %x, want %x", n, tc.nonce)
			}
			wantCC := "no-cache"
			if tc.nonce == nil && tc.want != xocsp.Unknown {
				wantCC = "max-age=3600, public, no-transform, must-revalidate"
			}
			if cc := resp.Header.Get("Cache-Control"); cc != wantCC {
				t.Errorf("Cache-Control %q, want %q", cc, wantCC)
			}
		})
	}
}

// TestSeveralCertIDs: a request for several certificates of one issuer key
// gets one response for each; mixing issuers is unauthorized.
func TestSeveralCertIDs(t *testing.T) {
	e := newEnv(t, nil)
	srv := httptest.NewServer(e.r)
	defer srv.Close()
	g := e.f.gen1
	leaves := []*x509.Certificate{g.leaf(serialGood), g.leaf(serialRevoked), g.leaf(serialUnknown)}
	raw := body(t, post(t, srv.URL, request(t, g.cert, crypto.SHA256, nil, leaves...)))
	for i, want := range []int{xocsp.Good, xocsp.Revoked, xocsp.Unknown} {
		got, err := xocsp.ParseResponseForCert(raw, leaves[i], g.cert)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != want {
			t.Errorf("certificate %d: status %d, want %d", i, got.Status, want)
		}
	}
	mixed := request(t, g.cert, crypto.SHA256, nil, g.leaf(serialGood))
	req, _ := ocsp.ParseRequest(mixed)
	other, _ := ocsp.ParseRequest(request(t, e.f.gen2.cert, crypto.SHA256, nil, e.f.gen2.leaf(serialGen2Good)))
	req.CertIDs = append(req.CertIDs, other.CertIDs...)
	mixed, _ = req.Marshal()
	if _, err := xocsp.ParseResponse(body(t, post(t, srv.URL, mixed)), nil); err != (xocsp.ResponseError{Status: xocsp.Unauthorized}) {
		t.Errorf("two issuer keys in one request: %v, want unauthorized", err)
	}
}

// TestErrors checks the unsigned error responses and HTTP errors.
func TestErrors(t *testing.T) {
	e := newEnv(t, nil)
	srv := httptest.NewServer(e.r)
	defer srv.Close()
	g := e.f.gen1
	good := request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood))
	sha384, err := xocsp.CreateRequest(g.leaf(serialGood), g.cert, &xocsp.RequestOptions{Hash: crypto.SHA384})
	if err != nil {
		t.Fatal(err)
	}
	many := &ocsp.Request{}
	one, _ := ocsp.ParseRequest(good)
	for range 17 {
		many.CertIDs = append(many.CertIDs, one.CertIDs[0])
	}
	manyDER, _ := many.Marshal()
	tests := []struct {
		name   string
		method string
		path   string // after the server URL
		body   []byte
		want   xocsp.ResponseStatus
		http   int
	}{
		{name: "garbage POST", method: "POST", path: "/ocsp", body: []byte("hello, responder"), want: xocsp.Malformed},
		{name: "empty POST", method: "POST", path: "/ocsp", want: xocsp.Malformed},
		{name: "trailing data", method: "POST", path: "/ocsp", body: append(bytes.Clone(good), 0), want: xocsp.Malformed},
		{name: "truncated", method: "POST", path: "/ocsp", body: good[:len(good)-1], want: xocsp.Malformed},
		{name: "SHA-384 CertID", method: "POST", path: "/ocsp", body: sha384, want: xocsp.Malformed},
		{name: "17 CertIDs", method: "POST", path: "/ocsp", body: manyDER, want: xocsp.Malformed},
		{name: "too large", method: "POST", path: "/ocsp", body: make([]byte, 17<<10), want: xocsp.Malformed},
		{name: "bad base64 GET", method: "GET", path: "/ocsp/!!notbase64!!", want: xocsp.Malformed},
		{name: "GET without request", method: "GET", path: "/ocsp/", want: xocsp.Malformed},
		{name: "GET of garbage", method: "GET", path: "/ocsp/" + base64.StdEncoding.EncodeToString([]byte("garbage")), want: xocsp.Malformed},
		{name: "another issuer", method: "POST", path: "/ocsp", body: request(t, e.f.other.cert, crypto.SHA1, nil, e.f.other.leaf(serialOtherCA)), want: xocsp.Unauthorized},
		{name: "another issuer GET SHA-256", method: "GET", path: getURL("", request(t, e.f.other.cert, crypto.SHA256, nil, e.f.other.leaf(serialOtherCA))), want: xocsp.Unauthorized},
		{name: "wrong path", method: "POST", path: "/crl", body: good, http: http.StatusNotFound},
		{name: "wrong GET path", method: "GET", path: "/ocspx/" + base64.StdEncoding.EncodeToString(good), http: http.StatusNotFound},
		{name: "wrong method", method: "PUT", path: "/ocsp", body: good, http: http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.http != 0 {
				resp.Body.Close()
				if resp.StatusCode != tc.http {
					t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.http)
				}
				return
			}
			raw := body(t, resp)
			if _, err := xocsp.ParseResponse(raw, nil); err != (xocsp.ResponseError{Status: tc.want}) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control %q", cc)
			}
		})
	}
}

// TestSourceFailures: a failing Source, or one that returns nonsense, is
// internalError.
func TestSourceFailures(t *testing.T) {
	tests := []struct {
		name   string
		status ocsp.Status
		err    error
	}{
		{name: "source error", err: errSourceDown},
		{name: "zero status", status: ocsp.Status{}},
		{name: "revoked without time", status: ocsp.Status{Status: ocsp.Revoked, Reason: 1}},
		{name: "reason 7", status: ocsp.Status{Status: ocsp.Revoked, RevokedAt: revokedAt, Reason: 7}},
		{name: "removeFromCRL", status: ocsp.Status{Status: ocsp.Revoked, RevokedAt: revokedAt, Reason: 8}},
		// The CRL refuses these too (x509enc.CheckReason): OCSP and CRL agree.
		{name: "certificateHold", status: ocsp.Status{Status: ocsp.Revoked, RevokedAt: revokedAt, Reason: 6}},
		{name: "aACompromise", status: ocsp.Status{Status: ocsp.Revoked, RevokedAt: revokedAt, Reason: 10}},
		{name: "stale thisUpdate", status: ocsp.Status{Status: ocsp.Good, ThisUpdate: time.Now().Add(-31 * time.Minute)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.source.err = tc.err
			e.source.set(e.gen1, serialGood, tc.status)
			rec := httptest.NewRecorder()
			e.r.ServeHTTP(rec, httptest.NewRequest("POST", "/ocsp", bytes.NewReader(request(t, e.f.gen1.cert, crypto.SHA1, nil, e.f.gen1.leaf(serialGood)))))
			if _, err := xocsp.ParseResponse(rec.Body.Bytes(), nil); err != (xocsp.ResponseError{Status: xocsp.InternalError}) {
				t.Errorf("got %v, want internalError", err)
			}
		})
	}
}

// TestResponderExpired: a response is never signed by an expired
// responder certificate.
func TestResponderExpired(t *testing.T) {
	e := newEnv(t, nil)
	e.clock.Add(fixtureNotAfter)
	rec := httptest.NewRecorder()
	e.r.ServeHTTP(rec, httptest.NewRequest("POST", "/ocsp", bytes.NewReader(request(t, e.f.gen1.cert, crypto.SHA1, nil, e.f.gen1.leaf(serialGood)))))
	if _, err := xocsp.ParseResponse(rec.Body.Bytes(), nil); err != (xocsp.ResponseError{Status: xocsp.InternalError}) {
		t.Errorf("got %v, want internalError", err)
	}
	// Close to expiry, nextUpdate stops at the responder's notAfter.
	e = newEnv(t, nil)
	e.clock.Add(fixtureNotAfter - 40*time.Minute)
	rec = httptest.NewRecorder()
	e.r.ServeHTTP(rec, httptest.NewRequest("POST", "/ocsp", bytes.NewReader(request(t, e.f.gen1.cert, crypto.SHA1, nil, e.f.gen1.leaf(serialGood)))))
	got, err := xocsp.ParseResponseForCert(rec.Body.Bytes(), e.f.gen1.leaf(serialGood), e.f.gen1.cert)
	if err != nil {
		t.Fatal(err)
	}
	if !got.NextUpdate.Equal(e.f.gen1.responder.NotAfter) {
		t.Errorf("nextUpdate %v, want the responder's notAfter %v", got.NextUpdate, e.f.gen1.responder.NotAfter)
	}
}

// TestSetIssuers: a renewed responder certificate signs the responses made
// after SetIssuers; a responder that does not fit its issuer is refused.
// (Sets that add or remove generations: generations_test.go.)
func TestSetIssuers(t *testing.T) {
	e := newEnv(t, nil)
	f := e.f
	newKey := mustECDSA(elliptic.P256())
	now := e.clock.Now()
	rder, err := ocsp.NewResponderCertificate(f.gen1.cert, f.gen1.key, newKey.Public(), now.Add(-time.Minute), now.Add(48*time.Hour), big.NewInt(0x77))
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := x509.ParseCertificate(rder)
	if err != nil {
		t.Fatal(err)
	}
	ask := func() *xocsp.Response {
		t.Helper()
		rec := httptest.NewRecorder()
		// A nonce: never from the cache.
		e.r.ServeHTTP(rec, httptest.NewRequest("POST", "/ocsp", bytes.NewReader(request(t, f.gen1.cert, crypto.SHA256, []byte("n"), f.gen1.leaf(serialGood)))))
		got, err := xocsp.ParseResponseForCert(rec.Body.Bytes(), f.gen1.leaf(serialGood), f.gen1.cert)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := ask(); got.Certificate == nil || !got.Certificate.Equal(f.gen1.responder) {
		t.Fatal("before SetIssuers: not signed by the first responder")
	}
	if err := e.r.SetIssuers([]*ocsp.Issuer{{Certificate: f.gen1.cert, Responder: renewed, Signer: newKey}, e.gen2}); err != nil {
		t.Fatal(err)
	}
	if got := ask(); got.Certificate == nil || !got.Certificate.Equal(renewed) {
		t.Error("after SetIssuers: not signed by the renewed responder")
	}
	for name, set := range map[string][]*ocsp.Issuer{
		"two of gen1":     {e.gen1, e.gen2, {Certificate: f.gen1.cert, Responder: renewed, Signer: newKey}},
		"wrong signer":    {{Certificate: f.gen1.cert, Responder: renewed, Signer: mustECDSA(elliptic.P256())}, e.gen2},
		"nil certificate": {{Responder: renewed, Signer: newKey}, e.gen2},
	} {
		if err := e.r.SetIssuers(set); err == nil {
			t.Errorf("%s: SetIssuers accepted it", name)
		}
	}
	if got := ask(); !got.Certificate.Equal(renewed) {
		t.Error("a refused SetIssuers changed the responder")
	}
}

// TestInFront: the responder's path reaches it unaltered, "//" of base64
// included; everything else goes to the next handler.
func TestInFront(t *testing.T) {
	e := newEnv(t, nil)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux := http.NewServeMux()
	mux.Handle("/", next)
	srv := httptest.NewServer(e.r.InFront(mux))
	defer srv.Close()
	if r := get(t, srv.URL, request(t, e.f.gen1.cert, crypto.SHA1, nil, e.f.gen1.leaf(serialGood)), nil); r.StatusCode != http.StatusOK {
		t.Errorf("GET /ocsp/…: %s", r.Status)
	}
	for _, path := range []string{"/metrics", "/ocspx", "/"} {
		r, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusTeapot {
			t.Errorf("GET %s: %s, want the next handler's", path, r.Status)
		}
	}
}
