package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/repository"
)

// TestAttackRepositoryPage (issue 13): hostile requests to the public
// repository page of a real CA (open mode) over real HTTP. A page
// parameter that is not a whole number in range, or given twice, is
// refused with 400 echoing at most 20 of its characters, as text/plain
// with nosniff; a request line
// near the header limit is refused, not served; other methods get 405; path
// tricks are cleaned to a redirect or refused, never serve a file outside
// /issuers/ or /crl/; every response of the page carries its CSP and
// nosniff.
func TestAttackRepositoryPage(t *testing.T) {
	dir := t.TempDir()
	p := startCA(t, writeConfig(t, dir, "e2e-attack-repo", ""))
	issueOne(t, p.client(t), "ATTACK-REPO-1")
	base := "http://" + p.http
	noRedirect := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, truncate(path), err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// The first CRL reaches the page's snapshot within its refresh (5 s).
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, body := do("GET", "/index.json")
		var idx repository.Index
		if err := json.Unmarshal([]byte(body), &idx); err != nil {
			t.Fatalf("/index.json: %v\n%s", err, body)
		}
		if idx.CRLs.Total > 0 {
			if idx.CRLs.Pages != 1 {
				t.Fatalf("/index.json: %d pages of %d CRLs, want 1", idx.CRLs.Pages, idx.CRLs.Total)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/index.json lists no CRL 15 s after the first issuance")
		}
	}

	hostile := strings.Repeat("9", 5000)
	for _, path := range []string{"/", "/index.json", "/crl/"} {
		for _, q := range []string{"page=0", "page=-1", "page=2", "page=abc", "page=", "page=+1", "page=01", "page=1.0",
			"page=1&page=1", "page=%00", "page=%3Cscript%3E", "page=99999999999999999999",
			"page=" + hostile} {
			resp, body := do("GET", path+"?"+q)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET %s?%s: HTTP %d, want 400\n%s", path, truncate(q), resp.StatusCode, truncate(body))
			}
			if strings.Contains(body, strings.Repeat("9", 21)) {
				t.Errorf("GET %s?%s: the refusal echoes the parameter: %s", path, truncate(q), truncate(body))
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s?%s: refusal Content-Type %q, nosniff %q", path, truncate(q), ct, resp.Header.Get("X-Content-Type-Options"))
			}
		}
		// Parameters the page does not read are ignored (and so is a pair
		// Go's query parser refuses, such as one with ';'): page 1.
		for _, q := range []string{"page=1&x=" + strings.Repeat("a", 2000), "page=1;page=2", "x=<script>"} {
			if resp, _ := do("GET", path+"?"+q); resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s?%s: HTTP %d, want 200", path, truncate(q), resp.StatusCode)
			}
		}
		// A request line beyond the listener's header limit (16 KiB) is
		// refused before the page sees it.
		if resp, _ := do("GET", path+"?page=1&x="+strings.Repeat("a", 64<<10)); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("GET %s with a 64 KiB query: HTTP %d, want 431", path, resp.StatusCode)
		}
	}

	// Other methods: 405 with Allow; HEAD: the headers only.
	for _, path := range []string{"/", "/index.json", "/crl/", "/issuers/", repository.StylePath} {
		for _, method := range []string{"POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
			resp, _ := do(method, path)
			if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "GET") {
				t.Errorf("%s %s: HTTP %d, Allow %q; want 405 allowing GET", method, path, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
		resp, body := do("HEAD", path)
		if resp.StatusCode != http.StatusOK || body != "" {
			t.Errorf("HEAD %s: HTTP %d with %d bytes of body, want 200 and none", path, resp.StatusCode, len(body))
		}
	}

	// Path tricks: cleaned by the mux to a redirect within the listener,
	// or not found; never a file from elsewhere.
	for path, want := range map[string]int{
		"/issuers/../":                            http.StatusTemporaryRedirect,
		"/crl/x/../../":                           http.StatusTemporaryRedirect,
		"//index.json":                            http.StatusTemporaryRedirect,
		"/issuers/..%2findex.json":                http.StatusNotFound,
		"/issuers/%2e%2e%2f%2e%2e%2fetc%2fpasswd": http.StatusNotFound,
		"/issuers/issuers.pem%2f":                 http.StatusNotFound,
		"/crl/..%2findex.json":                    http.StatusNotFound,
		"/crl/%2e%2e":                             http.StatusNotFound,
		"/index.json/":                            http.StatusNotFound,
		"/repository.css/":                        http.StatusNotFound,
	} {
		resp, body := do("GET", path)
		if resp.StatusCode != want {
			t.Errorf("GET %s: HTTP %d, want %d\n%s", path, resp.StatusCode, want, truncate(body))
		}
		if loc := resp.Header.Get("Location"); want == http.StatusTemporaryRedirect && (!strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.Contains(loc, "..")) {
			t.Errorf("GET %s: redirected to %q, want a clean path on this listener", path, loc)
		}
	}

	// Every response of the page: its CSP, nosniff, no referrer, not
	// "public" (registered mode must not let a shared cache serve it).
	for _, path := range []string{"/", "/?page=1", "/index.json", "/crl/", "/issuers/", repository.StylePath} {
		resp, _ := do("GET", path)
		h := resp.Header
		if resp.StatusCode != http.StatusOK || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || strings.Contains(h.Get("Cache-Control"), "public") {
			t.Errorf("GET %s: HTTP %d, headers %v", path, resp.StatusCode, h)
		}
	}
	p.stop(t)
}

// truncate shortens s for a test's message.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
