package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/repository"
)

// chromiumTimeout bounds one run of the browser; it is killed after it.
const chromiumTimeout = 90 * time.Second

// chromium runs headless Chromium (Debian's chromium, installed by
// deploy/dev/deps.sh) on url with args (--dump-dom, --screenshot=…) and
// returns its standard output. It runs as root here, hence --no-sandbox;
// its profile is a fresh directory of the test's.
func chromium(t *testing.T, pageURL string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (deploy/dev/deps.sh installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--disable-background-networking", "--disable-extensions", "--user-data-dir=" + t.TempDir(), "--window-size=1280,2100"}, args...)
	cmd := exec.CommandContext(ctx, path, append(all, pageURL)...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v (context: %v)\n%s", args, err, ctx.Err(), tail(stderr.String(), 4000))
	}
	return stdout.String()
}

// TestRepositoryPageInChromium (issue 13): the real CA's repository page,
// rendered by real headless Chromium, shows the issuer fingerprints and
// the CRL numbers the CA really serves; every link in the rendered DOM
// resolves on the CA (200; certificates and CRLs parse with Go's x509);
// /index.json agrees. A screenshot is left in var/test-output.
func TestRepositoryPageInChromium(t *testing.T) {
	dir := t.TempDir()
	conf, _, _ := writeOperatorsConfig(t, dir, "e2e-repository")
	p := startCA(t, conf)
	cl := cav1.NewCertificateAuthorityClient(testenv.Dial(t, p.grpc, operatorsMunicipalToken))
	base := "http://" + p.http
	// Certificates in both profiles' Kiyose partitions; a rotation of the
	// SIGN issuer (generation 2 and its link certificates) and a
	// certificate of it; a revocation so that one CRL lists an entry.
	sign, auth := issuePair(t, cl, "REPO-1")
	revoked, _ := issuePair(t, cl, "REPO-2")
	as := func(token string, args ...string) string {
		t.Helper()
		out, err := shomeictl(conf, append(args, "--ca", p.grpc, "--token-file", filepath.Join(dir, token))...)
		if err != nil {
			t.Fatalf("shomeictl %v: %v\n%s", args, err, out)
		}
		return out
	}
	m := proposalID.FindStringSubmatch(as("alice.token", "keys", "rotate", "--profile", "sign", "--reason", "e2e repository page"))
	if m == nil {
		t.Fatal("keys rotate printed no proposal id")
	}
	as("bob.token", "approvals", "approve", m[1])
	var signG2 *cav1.Certificate
	for n, deadline := 3, time.Now().Add(30*time.Second); signG2 == nil; n++ {
		if c, _ := issuePair(t, cl, fmt.Sprintf("REPO-%d", n)); !bytes.Equal(akiOf(t, c), akiOf(t, sign)) {
			signG2 = c
		}
		if time.Now().After(deadline) {
			t.Fatal("issuance still uses SIGN generation 1 30 s after the rotation was approved")
		}
	}
	if _, err := cl.Revoke(context.Background(), &cav1.RevokeRequest{Serial: revoked.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	crlEntries(t, p, revoked, revoked.Serial)

	// What the CA really has: its issuer and link certificates, and the
	// number of each CRL its certificates point to.
	fingerprints := map[string]string{}
	for _, name := range []string{"shomei-sign-g1", "shomei-sign-g2", "shomei-auth-g1", "shomei-sign-g2-by-g1", "shomei-sign-g1-by-g2"} {
		code, body := httpGet(t, base+"/issuers/"+name+".cer")
		if _, err := x509.ParseCertificate([]byte(body)); code != http.StatusOK || err != nil {
			t.Fatalf("/issuers/%s.cer: %d %v", name, code, err)
		}
		fingerprints[name] = repository.Fingerprint([]byte(body))
	}
	numbers := map[string]string{} // partition → CRL number
	for _, c := range []*cav1.Certificate{sign, auth, revoked, signG2} {
		cert, err := certOf(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, dp := range cert.CRLDistributionPoints {
			name := strings.TrimSuffix(dp[strings.LastIndexByte(dp, '/')+1:], ".crl")
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				code, body := httpGet(t, base+"/crl/"+name+".crl")
				if code == http.StatusOK {
					list, err := x509.ParseRevocationList([]byte(body))
					if err != nil {
						t.Fatalf("CRL %s: %v", name, err)
					}
					numbers[name] = list.Number.String()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("CRL %s: HTTP %d 60 s on (R-R4)", name, code)
				}
			}
		}
	}
	if len(numbers) != 3 {
		t.Fatalf("CRLs %v, want SIGN generations 1 and 2 and AUTH", numbers)
	}
	// /index.json shows them once its snapshot (at most 5 s old) has them.
	var idx repository.Index
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, body := httpGet(t, base+repository.JSONPath)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", repository.JSONPath, code, body)
		}
		idx = repository.Index{}
		if err := json.Unmarshal([]byte(body), &idx); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, c := range idx.CRLs.Items {
			got[c.Partition] = fmt.Sprint(c.Number)
		}
		if maps.Equal(got, numbers) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lists CRLs %v; the CA serves %v", repository.JSONPath, got, numbers)
		}
	}
	states := map[string]string{}
	for _, g := range idx.Issuers {
		states[g.Certificate.Name] = g.State
		for _, c := range append([]repository.Certificate{g.Certificate}, g.Links...) {
			if c.SHA256 != fingerprints[c.Name] {
				t.Errorf("%s: %s %s, the CA serves %s", repository.JSONPath, c.Name, c.SHA256, fingerprints[c.Name])
			}
		}
	}
	if want := map[string]string{"shomei-sign-g1": "SUPERSEDED", "shomei-sign-g2": "ACTIVE", "shomei-auth-g1": "ACTIVE"}; !maps.Equal(states, want) {
		t.Errorf("%s: generations %v, want %v", repository.JSONPath, states, want)
	}
	if len(idx.OCSPURLs) != 1 || idx.Schema != repository.SchemaVersion {
		t.Errorf("%s: OCSP %v, schema %q", repository.JSONPath, idx.OCSPURLs, idx.Schema)
	}

	// The page as Chromium renders it.
	dom := chromium(t, base+"/", "--dump-dom")
	if !strings.Contains(dom, "Issuer certificates") || !strings.Contains(dom, `lang="ja"`) {
		t.Fatalf("the rendered DOM is not the repository page:\n%s", tail(dom, 3000))
	}
	for label, fp := range fingerprints {
		if !strings.Contains(dom, fp) {
			t.Errorf("the rendered page lacks %s's fingerprint %s", label, fp)
		}
	}
	for name, n := range numbers {
		if !strings.Contains(dom, `href="/crl/`+name+`.crl"`) || !strings.Contains(dom, `data-crl-number="`+n+`"`) {
			t.Errorf("the rendered page lacks CRL %s number %s", name, n)
		}
	}
	links := regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	if len(links) < 10 {
		t.Fatalf("%d links in the rendered page", len(links))
	}
	page, _ := url.Parse(base + "/")
	seen := map[string]bool{}
	for _, m := range links {
		ref, err := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
		if err != nil {
			t.Errorf("link %q: %v", m[1], err)
			continue
		}
		u := page.ResolveReference(ref)
		if u.Host != p.http || seen[u.String()] {
			if u.Host != p.http {
				t.Errorf("link %s leaves the CA", u)
			}
			continue
		}
		seen[u.String()] = true
		code, body := httpGet(t, u.String())
		if code != http.StatusOK {
			t.Errorf("link %s: HTTP %d", u, code)
			continue
		}
		switch {
		case strings.HasSuffix(u.Path, ".crl"):
			if _, err := x509.ParseRevocationList([]byte(body)); err != nil {
				t.Errorf("link %s: %v", u, err)
			}
		case strings.HasSuffix(u.Path, ".cer"):
			if _, err := x509.ParseCertificate([]byte(body)); err != nil {
				t.Errorf("link %s: %v", u, err)
			}
		}
	}
	t.Logf("%d links on the page, each 200 from the CA", len(seen))

	// The screenshot, for a person to look at (not committed: var/).
	out, err := filepath.Abs(filepath.Join("..", "..", "var", "test-output"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(out, "repository-page.png")
	os.Remove(shot)
	chromium(t, base+"/", "--screenshot="+shot, "--hide-scrollbars")
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("screenshot of the repository page: %s", shot)
	p.stop(t)
}
