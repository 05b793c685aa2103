package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/ocsp"
)

// metric reads one sample of the CA's /metrics, 0 when absent.
func metric(t testing.TB, httpAddr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// ocspSignatures is how many responses the CA's responder keys signed.
func ocspSignatures(t testing.TB, httpAddr string) float64 {
	return metric(t, httpAddr, "shomei_ocsp_signing_duration_seconds_count")
}

// issueOne issues SIGN and AUTH for holder id and returns them.
func issueOne(t testing.TB, cl cav1.CertificateAuthorityClient, id string) []*cav1.Certificate {
	t.Helper()
	sign, auth := issuePair(t, cl, id)
	return []*cav1.Certificate{sign, auth}
}

// signRequest issues SIGN and AUTH to holder id and returns the SIGN
// certificate, its issuer and an OCSP request for it (SHA-1 CertID, no
// nonce), a template for certIDRequest.
func signRequest(t testing.TB, p *caProc, cl cav1.CertificateAuthorityClient, id string) (sign, issuer *x509.Certificate, template []byte) {
	t.Helper()
	sign, err := certOf(issueOne(t, cl, id)[0])
	if err != nil {
		t.Fatal(err)
	}
	issuer = fetchIssuer(t, p, "shomei-sign-g1")
	template, err = xocsp.CreateRequest(sign, issuer, &xocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	return sign, issuer, template
}

// certIDRequest is the DER OCSP request for serial under the issuer of
// template (a request for one of its certificates), with nonce if set.
func certIDRequest(t testing.TB, template []byte, serial *big.Int, nonce []byte) []byte {
	t.Helper()
	one, err := ocsp.ParseRequest(template)
	if err != nil {
		t.Fatal(err)
	}
	id := one.CertIDs[0]
	if serial != nil {
		id.SerialNumber = serial
	}
	der, err := (&ocsp.Request{CertIDs: []ocsp.CertID{id}, Nonce: nonce}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// postOCSP posts der to url and returns the HTTP response and its body.
func postOCSP(t testing.TB, client *http.Client, url string, der []byte, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestAttackOCSPSignatureFlood (issue #9 item 5) floods the real
// shomei-ca's OCSP responder, from one address, with what used to cost an
// HSM signature each — fresh nonces and serials it never issued — next to
// unsigned ones (garbage, another issuer), while a municipal system keeps
// issuing. The responder's signatures stay within its budget (5 at once,
// 1 a second here), nonces over it are answered from the cache without the
// nonce, unknown serials over it get tryLater, nothing is internalError,
// and every issuance succeeds.
func TestAttackOCSPSignatureFlood(t *testing.T) {
	dir := t.TempDir()
	p := startCA(t, writeConfig(t, dir, "e2e-ocsp-flood", `ocsp:
  signature_budget: 1
  signature_burst: 5
http_access:
  per_address:
    rate: -1
`))
	cl := p.client(t)
	_, issuer, template := signRequest(t, p, cl, "FLOOD-0")
	otherIssuer := certIDRequest(t, template, nil, nil)
	otherIssuer[len(otherIssuer)-30] ^= 0xff // an issuerKeyHash byte: an issuer not served
	url := "http://" + p.http + "/ocsp"
	before := ocspSignatures(t, p.http)
	start := time.Now()

	kinds := []string{"nonce", "unknown", "garbage", "other issuer"}
	var mu sync.Mutex
	answers := map[string]map[string]int{}
	for _, k := range kinds {
		answers[k] = map[string]int{}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			client := &http.Client{}
			for i := range 100 {
				kind := kinds[(w+i)%len(kinds)]
				var der []byte
				switch kind {
				case "nonce":
					nonce := make([]byte, 16)
					rand.Read(nonce)
					der = certIDRequest(t, template, nil, nonce)
				case "unknown":
					serial := new(big.Int).SetBytes(append([]byte{0x40}, bytes.Repeat([]byte{byte(w), byte(i)}, 7)...))
					der = certIDRequest(t, template, serial, nil)
				case "garbage":
					der = []byte("\x30\x82\xff\xffnot an OCSP request")
				case "other issuer":
					der = otherIssuer
				}
				resp, body := postOCSP(t, client, url, der, nil)
				answer := fmt.Sprintf("HTTP %d", resp.StatusCode)
				if resp.StatusCode == http.StatusOK {
					r, err := xocsp.ParseResponse(body, issuer)
					switch e := err.(type) {
					case nil:
						answer = map[int]string{xocsp.Good: "good", xocsp.Unknown: "unknown", xocsp.Revoked: "revoked"}[r.Status]
					case xocsp.ResponseError:
						answer = e.Status.String()
					default:
						answer = err.Error()
					}
				}
				mu.Lock()
				answers[kind][answer]++
				mu.Unlock()
			}
		})
	}
	// A municipal system issues meanwhile.
	for i := range 3 {
		issueOne(t, cl, fmt.Sprintf("FLOOD-%d", i+1))
	}
	wg.Wait()
	elapsed := time.Since(start)
	signed := ocspSignatures(t, p.http) - before
	t.Logf("answers %v; %v responses signed in %v", answers, signed, elapsed.Round(time.Millisecond))

	// The burst, one a second, and the cached nonce-less response.
	if limit := 5 + elapsed.Seconds() + 2; signed > limit {
		t.Errorf("%v responses signed for 400 fresh-signature requests in %v; the budget allows %.0f", signed, elapsed, limit)
	}
	want := map[string][]string{
		"nonce":        {"good"},
		"unknown":      {"unknown", "try later"},
		"garbage":      {"malformed"},
		"other issuer": {"unauthorized"},
	}
	for kind, got := range answers {
		n := 0
		for _, ok := range want[kind] {
			n += got[ok]
		}
		if n != 200 {
			t.Errorf("%s: answers %v, want only %v", kind, got, want[kind])
		}
	}
	if answers["unknown"]["try later"] == 0 {
		t.Errorf("no unknown serial was answered tryLater: %v", answers["unknown"])
	}
	if n := metric(t, p.http, `shomei_ocsp_responses_total{status="internalError"}`); n != 0 {
		t.Errorf("%v internalError answers", n)
	}
	p.stop(t)
}

// TestAttackStatusAddressFlood (issue #9 item 5): one address asking for
// OCSP and CRLs without limit gets HTTP 429 with Retry-After once over its
// burst, on both endpoints; no response is signed for the refused ones.
func TestAttackStatusAddressFlood(t *testing.T) {
	dir := t.TempDir()
	p := startCA(t, writeConfig(t, dir, "e2e-addr-flood", `http_access:
  per_address:
    rate: 1
    burst: 20
    table_size: 16
`))
	sign, _, template := signRequest(t, p, p.client(t), "ADDR-0")
	crlURL := strings.Replace(sign.CRLDistributionPoints[0], "127.0.0.1:8080", p.http, 1)
	before := ocspSignatures(t, p.http)
	codes := map[int]int{}
	for i := range 100 {
		var resp *http.Response
		if i%2 == 0 {
			nonce := make([]byte, 16)
			rand.Read(nonce)
			resp, _ = postOCSP(t, http.DefaultClient, "http://"+p.http+"/ocsp", certIDRequest(t, template, nil, nonce), nil)
		} else {
			r, err := http.Get(crlURL)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			resp = r
			if r.StatusCode == http.StatusNotFound {
				codes[200]++ // not published yet: admitted all the same
				continue
			}
		}
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
	}
	t.Logf("HTTP statuses %v", codes)
	if codes[http.StatusTooManyRequests] < 70 || codes[200] < 20 || codes[200]+codes[429] != 100 {
		t.Fatalf("HTTP statuses %v; want about 20 admitted, the rest 429", codes)
	}
	if signed := ocspSignatures(t, p.http) - before; signed > float64(codes[200]) {
		t.Errorf("%v signatures for %d admitted requests", signed, codes[200])
	}
	if n := metric(t, p.http, `shomei_status_requests_total{endpoint="ocsp",outcome="rate_limited",party="anonymous"}`); n == 0 {
		t.Errorf("no rate-limited OCSP request counted")
	}
	p.stop(t)
}

func certOf(c *cav1.Certificate) (*x509.Certificate, error) { return x509.ParseCertificate(c.Der) }
