package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/internal/testenv"
	xocsp "golang.org/x/crypto/ocsp"
)

// clientCert writes a self-signed client certificate to dir/name.pem and
// returns it with its key.
func clientCert(t *testing.T, dir, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	writeCertPEM(t, filepath.Join(dir, name+".pem"), der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestAttackUnregisteredRelyingParty (issue #9 item 6, R-R6): with
// http_access.mode registered on the real shomei-ca, served over TLS, only
// the registered relying parties — bank-a by bearer token (sent by
// `openssl ocsp -header`), gov-portal by its pinned client certificate —
// get OCSP answers and CRLs. Anyone else, a stranger's certificate, or a
// wrong token gets OCSP unauthorized or HTTP 403, and none of those costs
// a signature. Requests are counted per relying party by its configured
// name, never by address.
func TestAttackUnregisteredRelyingParty(t *testing.T) {
	dir := t.TempDir()
	writeServerCert(t, filepath.Join(dir, "http.pem"), filepath.Join(dir, "http.key"))
	const bankToken = "bank-a-0123456789abcdef0123456789"
	if err := os.WriteFile(filepath.Join(dir, "bank-a.token"), []byte(bankToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gov, stranger := clientCert(t, dir, "gov-portal"), clientCert(t, dir, "stranger")
	p := startCA(t, writeConfig(t, dir, "e2e-rp", `http_access:
  mode: registered
  tls:
    cert_file: http.pem
    key_file: http.key
  relying_parties:
    - name: bank-a
      token_file: bank-a.token
    - name: gov-portal
      client_cert_file: gov-portal.pem
`))
	certs := issueOne(t, p.client(t), "RP-1")
	sign, err := certOf(certs[0])
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + p.http
	client := func(cert *tls.Certificate) *http.Client {
		c := &tls.Config{InsecureSkipVerify: true} // the test's self-signed listener
		if cert != nil {
			c.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: c}}
	}
	anyone := client(nil)
	httpGet := func(c *http.Client, url string, header http.Header) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header = header
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, issuerPEM := httpGet(anyone, base+"/issuers/shomei-sign-g1.pem", nil)
	if code != 200 {
		t.Fatalf("issuer certificate: HTTP %d", code)
	}
	block, _ := pem.Decode(issuerPEM)
	issuer, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	// In registered mode /metrics names every CRL partition with its
	// entries: it is read as a relying party (bank-a), as Prometheus does.
	signatures := func() float64 {
		code, b := httpGet(anyone, base+"/metrics", bearer(bankToken))
		if code != http.StatusOK {
			t.Fatalf("GET /metrics with bank-a's token: HTTP %d", code)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "shomei_ocsp_signing_duration_seconds_count "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
		}
		return 0
	}
	der, err := xocsp.CreateRequest(sign, issuer, &xocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	crlURL := strings.Replace(strings.Replace(sign.CRLDistributionPoints[0], "127.0.0.1:8080", p.http, 1), "http:", "https:", 1)

	before := signatures()
	refused := []struct {
		name   string
		client *http.Client
		header http.Header
	}{
		{"no credential", anyone, nil},
		{"wrong token", anyone, bearer("not-bank-a-0123456789abcdef")},
		{"stranger's certificate", client(&stranger), nil},
		{"gov-portal's certificate with another token", client(&gov), bearer("not-bank-a-0123456789abcdef")},
	}
	for _, tc := range refused {
		for range 20 {
			resp, body := postOCSP(t, tc.client, base+"/ocsp", der, tc.header)
			if _, err := xocsp.ParseResponse(body, issuer); resp.StatusCode != 200 || err != (xocsp.ResponseError{Status: xocsp.Unauthorized}) {
				t.Fatalf("%s: OCSP HTTP %d, %v; want unauthorized", tc.name, resp.StatusCode, err)
			}
		}
		if code, _ := httpGet(tc.client, crlURL, tc.header); code != http.StatusForbidden {
			t.Errorf("%s: CRL HTTP %d, want 403", tc.name, code)
		}
	}
	if n := signatures() - before; n != 0 {
		t.Errorf("%v signatures for refused callers", n)
	}

	// Registered: gov-portal by its certificate (Go), bank-a by token
	// (openssl ocsp -header).
	resp, body := postOCSP(t, client(&gov), base+"/ocsp", der, nil)
	if r, err := xocsp.ParseResponseForCert(body, sign, issuer); resp.StatusCode != 200 || err != nil || r.Status != xocsp.Good {
		t.Fatalf("gov-portal: HTTP %d, %v", resp.StatusCode, err)
	}
	work := t.TempDir()
	signPEM, caPEM := filepath.Join(work, "sign.pem"), filepath.Join(work, "ca.pem")
	os.WriteFile(signPEM, []byte(certs[0].Pem), 0o600)
	os.WriteFile(caPEM, issuerPEM, 0o600)
	args := []string{"ocsp", "-issuer", caPEM, "-cert", signPEM, "-CAfile", caPEM, "-url", base + "/ocsp"}
	out, err := exec.Command("openssl", append(args, "-header", "Authorization=Bearer "+bankToken)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Response verify OK") || !strings.Contains(string(out), signPEM+": good") {
		t.Fatalf("openssl ocsp with bank-a's token: %v\n%s", err, out)
	}
	out, _ = exec.Command("openssl", args...).CombinedOutput()
	if !strings.Contains(string(out), "unauthorized (6)") {
		t.Fatalf("openssl ocsp without a token:\n%s", out)
	}
	if code, _ := httpGet(anyone, crlURL, bearer(bankToken)); code == http.StatusForbidden {
		t.Errorf("bank-a's CRL request refused")
	}

	_, metrics := httpGet(anyone, base+"/metrics", bearer(bankToken))
	var series []string
	for _, line := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(line, "shomei_status_requests_total{") && !strings.HasSuffix(line, " 0") {
			series = append(series, line)
			if strings.Contains(line, "127.0.0.1") {
				t.Errorf("an address in a metric label: %s", line)
			}
		}
	}
	for _, want := range []string{
		`shomei_status_requests_total{endpoint="ocsp",outcome="admitted",party="gov-portal"} 1`,
		`shomei_status_requests_total{endpoint="ocsp",outcome="admitted",party="bank-a"} 1`,
		`shomei_status_requests_total{endpoint="ocsp",outcome="refused",party="unregistered"} 81`,
		`shomei_status_requests_total{endpoint="crl",outcome="refused",party="unregistered"} 4`,
	} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("missing %s; have\n%s", want, strings.Join(series, "\n"))
		}
	}
	// The repository page lists the CRLs: it and the CRL listing are
	// refused like the CRLs, and so is /metrics, whose shomei_crl_*
	// series name every partition with its entries and nextUpdate; the
	// issuer certificates stay public.
	if !strings.Contains(string(metrics), `shomei_crl_entries{crl="sign-g1-`) {
		t.Errorf("bank-a's /metrics has no shomei_crl_entries series of sign-g1")
	}
	for path, want := range map[string]int{"/": http.StatusForbidden, "/index.json": http.StatusForbidden, "/crl/": http.StatusForbidden,
		"/metrics": http.StatusForbidden, "/issuers/": http.StatusOK, "/issuers/issuers.pem": http.StatusOK, "/repository.css": http.StatusOK} {
		if code, _ := httpGet(anyone, base+path, nil); code != want {
			t.Errorf("GET %s without a credential: HTTP %d, want %d", path, code, want)
		}
	}
	for _, path := range []string{"/", "/index.json", "/crl/"} {
		// The page's CRL snapshot may predate the first CRL by up to 5 s.
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			code, body := httpGet(anyone, base+path, bearer(bankToken))
			if code == http.StatusOK && strings.Contains(string(body), "sign-g1-") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("GET %s with bank-a's token: HTTP %d, want 200 listing the CRLs", path, code)
				break
			}
		}
	}
	p.stop(t)
}

// TestAttackReplicaUnregisteredRelyingParty: shomei-ocsp serves OCSP
// through the same gate (R-R6): with http_access.mode registered, a caller
// without bank-a's token gets unauthorized and costs no signature; bank-a
// gets a verified answer.
func TestAttackReplicaUnregisteredRelyingParty(t *testing.T) {
	dir := t.TempDir()
	const bankToken = "bank-a-0123456789abcdef0123456789"
	if err := os.WriteFile(filepath.Join(dir, "bank-a.token"), []byte(bankToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := startCA(t, writeConfig(t, dir, "e2e-rp-ca", ""))
	certs := issueOne(t, ca.client(t), "RP-REPL-1")
	sign, err := certOf(certs[0])
	if err != nil {
		t.Fatal(err)
	}
	issuer := fetchIssuer(t, ca, "shomei-sign-g1")
	token, err := testenv.Token(testDir, "e2e-rp-replica")
	if err != nil {
		t.Fatal(err)
	}
	replicaConfig, err := testenv.WriteFile(dir, "replica.yaml", testenv.Replica{Name: "rp1", CAAddress: ca.grpc, HSM: token,
		Extra: `http_access:
  mode: registered
  relying_parties:
    - name: bank-a
      token_file: bank-a.token
`}.YAML())
	if err != nil {
		t.Fatal(err)
	}
	rp, addrs := startBinary(t, "shomei-ocsp", replicaConfig, testenv.ReplicaListening)
	base := "http://" + addrs[0]
	waitSynced(t, rp, addrs[0], 10*time.Second, "the replica")
	der, err := xocsp.CreateRequest(sign, issuer, &xocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		resp, body := postOCSP(t, http.DefaultClient, base+"/ocsp", der, nil)
		if _, err := xocsp.ParseResponse(body, issuer); resp.StatusCode != 200 || err != (xocsp.ResponseError{Status: xocsp.Unauthorized}) {
			t.Fatalf("no token: HTTP %d, %v; want unauthorized", resp.StatusCode, err)
		}
	}
	if n := metric(t, addrs[0], "shomei_ocsp_signing_duration_seconds_count"); n != 0 {
		t.Errorf("%v signatures for unregistered callers", n)
	}
	resp, body := postOCSP(t, http.DefaultClient, base+"/ocsp", der, http.Header{"Authorization": {"Bearer " + bankToken}})
	if r, err := xocsp.ParseResponseForCert(body, sign, issuer); resp.StatusCode != 200 || err != nil || r.Status != xocsp.Good {
		t.Fatalf("bank-a: HTTP %d, %v", resp.StatusCode, err)
	}
	if n := metric(t, addrs[0], `shomei_status_requests_total{endpoint="ocsp",outcome="refused",party="unregistered"}`); n != 50 {
		t.Errorf("%v refusals counted, want 50", n)
	}
	rp.stop(t)
	ca.stop(t)
}
