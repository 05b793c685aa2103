package ocsp_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/shomei-pki/shomei/ocsp"
)

// openssl runs openssl with args and returns what it printed.
func openssl(t *testing.T, args ...string) string {
	t.Helper()
	return opensslExit(t, 0, args...)
}

// opensslExit is openssl expecting the exit status code.
func opensslExit(t *testing.T, code int, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if exit, _ := err.(*exec.ExitError); code != 0 && exit != nil && exit.ExitCode() == code {
		return string(out)
	}
	if err != nil || code != 0 {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl not installed: run make test (deploy/dev/deps.sh installs it)")
	}
}

// TestOpenSSL asks the responder with openssl ocsp over real HTTP (POST),
// and checks openssl verifies the delegated responder via the issuer.
func TestOpenSSL(t *testing.T) {
	needOpenSSL(t)
	e := newEnv(t, func(c *ocsp.Config) { c.Now = time.Now })
	srv := httptest.NewServer(e.r)
	defer srv.Close()
	dir := t.TempDir()
	f := e.f
	tests := []struct {
		name  string
		gen   *generation
		cert  string // serial hex
		flags []string
		want  []string
		avoid []string
		exit  int
	}{
		{name: "good SHA-1 nonce", gen: f.gen1, cert: "1001",
			want:  []string{": good", "Response verify OK", "OCSP Nonce:", "Cert Status: good", "Hash Algorithm: sha1", "Responder Id: "},
			avoid: []string{"WARNING", "Nonce Verify error"}},
		{name: "good SHA-256 no nonce", gen: f.gen1, cert: "1001", flags: []string{"-sha256", "-no_nonce"},
			want:  []string{": good", "Response verify OK", "Hash Algorithm: sha256"},
			avoid: []string{"OCSP Nonce", "WARNING"}},
		{name: "revoked SHA-256", gen: f.gen1, cert: "1002", flags: []string{"-sha256"},
			want: []string{": revoked", "Reason: keyCompromise", "Revocation Time: May  1 01:00:00 2026 GMT",
				"Invalidity Date: ", "May  1 00:30:00 2026 GMT", "Response verify OK", "OCSP Nonce:"},
			avoid: []string{"WARNING"}},
		{name: "unknown", gen: f.gen1, cert: "1003",
			want: []string{": unknown", "Response verify OK"}, avoid: []string{"WARNING"}},
		{name: "second key generation, RSA responder", gen: f.gen2, cert: "2001", flags: []string{"-sha256"},
			want: []string{": good", "Response verify OK"}, avoid: []string{"WARNING"}},
		{name: "another issuer", gen: f.other, cert: "3001",
			want: []string{"Responder Error: unauthorized (6)"}, exit: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			issuer := writePEM(t, dir, "issuer-"+tc.cert+".pem", tc.gen.cert)
			cert := writePEM(t, dir, "cert-"+tc.cert+".pem", tc.gen.leaves[tc.cert])
			args := append([]string{"ocsp", "-issuer", issuer}, tc.flags...)
			args = append(args, "-cert", cert, "-url", srv.URL+"/ocsp", "-CAfile", issuer, "-resp_text")
			out := opensslExit(t, tc.exit, args...)
			t.Logf("openssl %s\n%s", strings.Join(args, " "), out)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("openssl output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.avoid {
				if strings.Contains(out, a) {
					t.Errorf("openssl output has %q:\n%s", a, out)
				}
			}
		})
	}
}

// TestOpenSSLGet makes the request with openssl, sends it by RFC 5019 GET
// with net/http, and has openssl check the response.
func TestOpenSSLGet(t *testing.T) {
	needOpenSSL(t)
	e := newEnv(t, func(c *ocsp.Config) { c.Now = time.Now })
	srv := httptest.NewServer(e.r)
	defer srv.Close()
	dir := t.TempDir()
	g := e.f.gen1
	issuer := writePEM(t, dir, "issuer.pem", g.cert)
	tests := []struct {
		name      string
		serial    string
		flags     []string
		want      []string
		cacheable bool
	}{
		{name: "good SHA-1", serial: "1001", flags: []string{"-no_nonce"}, want: []string{": good"}, cacheable: true},
		{name: "revoked SHA-256", serial: "1002", flags: []string{"-no_nonce", "-sha256"}, want: []string{": revoked", "Reason: keyCompromise"}, cacheable: true},
		{name: "unknown with nonce", serial: "1003", flags: []string{"-sha256"}, want: []string{": unknown", "OCSP Nonce:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert := writePEM(t, dir, "cert-"+tc.serial+".pem", g.leaves[tc.serial])
			reqFile := filepath.Join(dir, "req-"+tc.serial+".der")
			respFile := filepath.Join(dir, "resp-"+tc.serial+".der")
			args := append([]string{"ocsp", "-issuer", issuer}, tc.flags...)
			openssl(t, append(args, "-cert", cert, "-reqout", reqFile)...)
			der, err := os.ReadFile(reqFile)
			if err != nil {
				t.Fatal(err)
			}
			u := srv.URL + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(der))
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: %v %s", err, resp.Status)
			}
			if err := os.WriteFile(respFile, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			// With the request: openssl checks the nonce echo and prints
			// the response; with the certificate: its status line.
			out := openssl(t, "ocsp", "-reqin", reqFile, "-respin", respFile, "-CAfile", issuer, "-resp_text")
			args = append([]string{"ocsp", "-respin", respFile, "-issuer", issuer}, tc.flags...)
			out += openssl(t, append(args, "-no_nonce", "-cert", cert, "-CAfile", issuer)...)
			for _, w := range append(tc.want, "Response verify OK") {
				if !strings.Contains(out, w) {
					t.Errorf("openssl output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "WARNING") || strings.Contains(out, "Nonce Verify error") || strings.Contains(out, "ERROR") {
				t.Errorf("openssl complains:\n%s", out)
			}
			cc := resp.Header.Get("Cache-Control")
			if tc.cacheable != regexp.MustCompile(`^max-age=\d+, public, no-transform, must-revalidate$`).MatchString(cc) {
				t.Errorf("Cache-Control %q, cacheable %v", cc, tc.cacheable)
			}
			if _, err := xocsp.ParseResponseForCert(raw, g.leaves[tc.serial], g.cert); err != nil {
				t.Errorf("x/crypto/ocsp: %v", err)
			}
		})
	}
}
