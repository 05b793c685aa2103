package repository_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/repository"
)

var now = time.Date(2026, 12, 7, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))

// fakeCRLs is the publisher's list of CRLs, counting how often it is asked.
type fakeCRLs struct {
	mu    sync.Mutex
	list  []crl.PublishedCRL
	calls int
}

func (f *fakeCRLs) Published() []crl.PublishedCRL {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return append([]crl.PublishedCRL(nil), f.list...)
}

// crls are n partitions sign-g1-<code>, CRL number 1000+i.
func crls(n int) *fakeCRLs {
	f := &fakeCRLs{}
	for i := range n {
		name := fmt.Sprintf("sign-g1-%05d", 1000+i)
		f.list = append(f.list, crl.PublishedCRL{Name: name, URL: "http://shomei.example/crl/" + name + ".crl", Number: uint64(1000 + i),
			ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour), Entries: i, Bytes: 500 + i})
	}
	return f
}

// certificate is a certificate of key with subject cn, signed by signer
// (itself when nil) under issuerName.
func certificate(t *testing.T, cn string, key *ecdsa.PrivateKey, issuerName string, signer *ecdsa.PrivateKey) []byte {
	t.Helper()
	if signer == nil {
		signer, issuerName = key, cn
	}
	parent := &x509.Certificate{Subject: pkix.Name{CommonName: issuerName, Organization: []string{"JPKI"}}}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"JPKI"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	if signer == key {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), crypto.Signer(signer))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// generations are SIGN generation 1 (SUPERSEDED) and 2 (ACTIVE, with its
// two link certificates) and AUTH generation 1 (PENDING), whose subject
// holds markup.
func generations(t *testing.T) []issuer.Issuer {
	t.Helper()
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	const signDN, authDN = "JPKI for digital signature", "<script>alert(1)</script>"
	mk := func(p storev1.Profile, gen uint32, state storev1.KeyState, der []byte) issuer.Issuer {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return issuer.Issuer{IssuerKey: &storev1.IssuerKey{Profile: p, Generation: gen, KeyLabel: issuer.KeyLabel(p, gen), State: state, CertificateDer: der}, Certificate: cert}
	}
	g2 := mk(storev1.Profile_PROFILE_SIGN, 2, storev1.KeyState_KEY_STATE_ACTIVE, certificate(t, signDN, k2, "", nil))
	g2.LinkNewWithOldDer = certificate(t, signDN, k2, signDN, k1)
	g2.LinkOldWithNewDer = certificate(t, signDN, k1, signDN, k2)
	return []issuer.Issuer{
		mk(storev1.Profile_PROFILE_SIGN, 1, storev1.KeyState_KEY_STATE_SUPERSEDED, certificate(t, signDN, k1, "", nil)),
		g2,
		mk(storev1.Profile_PROFILE_AUTH, 1, storev1.KeyState_KEY_STATE_PENDING, certificate(t, authDN, k3, "", nil)),
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// server serves a Page of gens and src as cmd/shomei-ca's mux mounts it.
func server(t *testing.T, gens []issuer.Issuer, src repository.CRLs, c *clock) *httptest.Server {
	t.Helper()
	issuers := repository.NewIssuers()
	issuers.Set(gens)
	page, err := repository.New(repository.Config{Issuers: issuers, CRLs: src, PublicURL: "http://shomei.example", CPSURL: "http://shomei.example/cps",
		OCSPURLs: []string{"http://shomei.example/ocsp"}, PageSize: 100, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", page.ServeHTML)
	mux.HandleFunc("GET "+repository.JSONPath, page.ServeJSON)
	mux.HandleFunc("GET "+repository.StylePath, page.ServeStyle)
	mux.HandleFunc("GET /issuers/{$}", page.ServeIssuerList)
	mux.Handle("GET /issuers/{file}", issuers)
	mux.HandleFunc("GET /crl/{$}", page.ServeCRLList)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var href = regexp.MustCompile(`href="([^"]*)"`)

// TestPage: the page at / shows every generation (state, subject, key id,
// fingerprint, validity, links to its files and link certificates), the
// OCSP and CPS URLs and the first page of the CRLs, escaped, with the
// security headers; every link on it resolves; markup in a subject stays
// text.
func TestPage(t *testing.T) {
	gens := generations(t)
	srv := server(t, gens, crls(250), &clock{t: now})
	resp, body := get(t, srv.URL+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s\n%s", resp.Status, body)
	}
	for h, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": "default-src 'none'; style-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "max-age=5",
	} {
		if got := resp.Header.Get(h); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q…", h, got, want)
		}
	}
	var want []string
	for _, g := range gens {
		want = append(want, repository.Fingerprint(g.CertificateDer), g.KeyLabel+".pem", g.KeyLabel+".cer")
		for _, l := range [][]byte{g.LinkNewWithOldDer, g.LinkOldWithNewDer} {
			if l != nil {
				want = append(want, repository.Fingerprint(l))
			}
		}
	}
	want = append(want, "SUPERSEDED", "ACTIVE", "PENDING", "Link certificate NewWithOld", "Link certificate OldWithNew",
		"shomei-sign-g2-by-g1.cer", "shomei-sign-g1-by-g2.pem", "http://shomei.example/ocsp", "http://shomei.example/cps",
		`href="/crl/sign-g1-01000.crl"`, `data-crl-number="1099"`, "Page 1 of 3", `href="/?page=2"`, `href="/?page=3"`,
		"&lt;script", "alert(1)", `lang="ja"`, "2026-12-07 09:00:00 JST")
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
	for _, not := range []string{"<script", "sign-g1-01100", "previous"} {
		if strings.Contains(body, not) {
			t.Errorf("the page holds %q", not)
		}
	}
	for _, m := range href.FindAllStringSubmatch(body, -1) {
		if r, b := get(t, srv.URL+m[1]); r.StatusCode != http.StatusOK && !strings.HasPrefix(m[1], "/cps") && !strings.HasSuffix(m[1], ".crl") {
			t.Errorf("link %s: %s %s", m[1], r.Status, b)
		}
	}
	// /crl/ lists the same CRLs a page at a time.
	_, body = get(t, srv.URL+"/crl/?page=2")
	if n := strings.Count(body, "data-crl-number="); n != 100 || !strings.Contains(body, `href="/crl/sign-g1-01100.crl"`) ||
		!strings.Contains(body, `href="/crl/?page=3"`) || !strings.Contains(body, `href="/crl/?page=1"`) || strings.Contains(body, "sign-g1-01099.crl") {
		t.Errorf("/crl/?page=2: %d CRLs\n%s", n, body)
	}
	// The last page: 50 CRLs, links back.
	_, body = get(t, srv.URL+"/?page=3")
	if n := strings.Count(body, "data-crl-number="); n != 50 || !strings.Contains(body, `href="/?page=2"`) || !strings.Contains(body, "sign-g1-01249.crl") {
		t.Errorf("page 3: %d CRLs", n)
	}
}

// TestPageBadPage: a page that is not a whole number from 1 to the last
// is refused with 400 naming the range, on /, /index.json and /crl/.
func TestPageBadPage(t *testing.T) {
	srv := server(t, generations(t), crls(250), &clock{t: now})
	for _, path := range []string{"/", repository.JSONPath, "/crl/"} {
		for _, q := range []string{"page=0", "page=-1", "page=abc", "page=4", "page=1e2", "page=%2B1", "page=01", "page=", "page=99999999999999999999", "page=1&page=2"} {
			t.Run(path+"?"+q, func(t *testing.T) {
				resp, body := get(t, srv.URL+path+"?"+q)
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "a whole number from 1 to 3") {
					t.Errorf("%s %q, want 400 naming 1 to 3", resp.Status, body)
				}
			})
		}
		if resp, _ := get(t, srv.URL+path+"?page=3&other=x"); resp.StatusCode != http.StatusOK {
			t.Errorf("%s?page=3: %s", path, resp.Status)
		}
	}
	// Nothing published: one empty page.
	empty := server(t, nil, &fakeCRLs{}, &clock{t: now})
	if resp, body := get(t, empty.URL+"/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "No CRL has been published yet") || !strings.Contains(body, "No issuer certificate") {
		t.Errorf("empty /: %s", resp.Status)
	}
	if resp, body := get(t, empty.URL+"/?page=2"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "from 1 to 1") {
		t.Errorf("empty /?page=2: %s %s", resp.Status, body)
	}
}

// TestPageJSON: /index.json holds what the page shows, under its schema,
// with absolute URLs under the public URL.
func TestPageJSON(t *testing.T) {
	gens := generations(t)
	srv := server(t, gens, crls(250), &clock{t: now})
	resp, body := get(t, srv.URL+repository.JSONPath+"?page=2")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var idx repository.Index
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&idx); err != nil {
		t.Fatal(err)
	}
	if idx.Schema != repository.SchemaVersion || idx.CPSURL != "http://shomei.example/cps" || len(idx.OCSPURLs) != 1 ||
		idx.BundleURL != "http://shomei.example/issuers/issuers.pem" || !idx.GeneratedAt.Equal(now) {
		t.Errorf("index: %+v", idx)
	}
	if c := idx.CRLs; c.Page != 2 || c.Pages != 3 || c.PageSize != 100 || c.Total != 250 || len(c.Items) != 100 ||
		c.Items[0].Partition != "sign-g1-01100" || c.Items[0].Number != 1100 || c.Items[0].URL != "http://shomei.example/crl/sign-g1-01100.crl" ||
		!c.Items[0].NextUpdate.Equal(now.Add(24*time.Hour)) || c.Items[0].Bytes != 600 {
		t.Errorf("crls: %+v", c.Items[0])
	}
	if len(idx.Issuers) != 3 {
		t.Fatalf("%d generations", len(idx.Issuers))
	}
	g2 := idx.Issuers[1]
	if g2.Profile != "sign" || g2.Generation != 2 || g2.State != "ACTIVE" || g2.Certificate.Kind != repository.KindIssuer ||
		g2.Certificate.SHA256 != repository.Fingerprint(gens[1].CertificateDer) || g2.Certificate.PEM != "http://shomei.example/issuers/shomei-sign-g2.pem" ||
		len(g2.Links) != 2 || g2.Links[0].Kind != repository.KindNewWithOld || g2.Links[0].Name != "shomei-sign-g2-by-g1" ||
		g2.Links[1].Kind != repository.KindOldWithNew || g2.Links[1].DER != "http://shomei.example/issuers/shomei-sign-g1-by-g2.cer" ||
		g2.Certificate.KeyID == "" || !g2.Certificate.NotAfter.Equal(gens[1].Certificate.NotAfter) {
		t.Errorf("sign generation 2: %+v", g2)
	}
	if g := idx.Issuers[2]; g.Profile != "auth" || g.State != "PENDING" || len(g.Links) != 0 || g.Certificate.Subject != gens[2].Certificate.Subject.String() {
		t.Errorf("auth generation 1: %+v", g)
	}
}

// TestPageSnapshot: the CRLs are asked of the publisher at most once per
// Refresh, however many requests come; again once it has passed, or when
// the clock went back.
func TestPageSnapshot(t *testing.T) {
	src, c := crls(3), &clock{t: now}
	srv := server(t, generations(t), src, c)
	for range 20 {
		for _, path := range []string{"/", repository.JSONPath, "/crl/"} {
			get(t, srv.URL+path)
		}
	}
	if src.calls != 1 {
		t.Errorf("60 requests within Refresh asked the publisher %d times, want 1", src.calls)
	}
	c.add(repository.DefaultRefresh)
	src.mu.Lock()
	src.list = src.list[:1]
	src.mu.Unlock()
	if _, body := get(t, srv.URL+"/"); src.calls != 2 || strings.Count(body, "data-crl-number=") != 1 {
		t.Errorf("after Refresh: asked %d times, want 2, and the new list", src.calls)
	}
	c.add(-time.Second)
	if get(t, srv.URL+"/"); src.calls != 3 {
		t.Errorf("clock back: asked %d times, want 3", src.calls)
	}
}

// TestPageIssuersChange: a change of the issuer generations shows at once,
// in the HTML and the JSON, though the CRL snapshot is still the same.
func TestPageIssuersChange(t *testing.T) {
	gens := generations(t)
	issuers := repository.NewIssuers()
	issuers.Set(gens[:1])
	page, err := repository.New(repository.Config{Issuers: issuers, CRLs: crls(3), PublicURL: "http://shomei.example", CPSURL: "http://shomei.example/cps",
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(h http.HandlerFunc, path string) string {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Body.String()
	}
	g2 := repository.Fingerprint(gens[1].CertificateDer)
	for _, h := range []struct {
		serve http.HandlerFunc
		path  string
	}{{page.ServeHTML, "/"}, {page.ServeJSON, repository.JSONPath}} {
		issuers.Set(gens[:1])
		if body := serve(h.serve, h.path); strings.Contains(body, g2) || !strings.Contains(body, "sign-g1-01002") {
			t.Errorf("%s before the rotation shows sign generation 2, or not the CRLs", h.path)
		}
		issuers.Set(gens)
		if body := serve(h.serve, h.path); !strings.Contains(body, g2) {
			t.Errorf("%s after the rotation lacks sign generation 2", h.path)
		}
	}
}

// TestIssuerFiles: /issuers/ lists every file, and each is served with
// its content type; a name not published is 404.
func TestIssuerFiles(t *testing.T) {
	gens := generations(t)
	srv := server(t, gens, crls(0), &clock{t: now})
	resp, body := get(t, srv.URL+"/issuers/")
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	links := href.FindAllStringSubmatch(body, -1)
	files := 0
	for _, m := range links {
		if !strings.HasPrefix(m[1], "/issuers/") || m[1] == "/issuers/" {
			continue
		}
		files++
		r, b := get(t, srv.URL+m[1])
		switch {
		case r.StatusCode != http.StatusOK:
			t.Errorf("%s: %s", m[1], r.Status)
		case strings.HasSuffix(m[1], ".cer"):
			if _, err := x509.ParseCertificate([]byte(b)); err != nil || r.Header.Get("Content-Type") != "application/pkix-cert" {
				t.Errorf("%s: %v %s", m[1], err, r.Header.Get("Content-Type"))
			}
		case strings.HasSuffix(m[1], ".pem"):
			if !strings.HasPrefix(b, "-----BEGIN CERTIFICATE-----") {
				t.Errorf("%s: not PEM", m[1])
			}
		}
	}
	// 3 generations and 2 links, each .pem and .cer, and the bundle.
	if files != 11 {
		t.Errorf("/issuers/ lists %d files, want 11:\n%s", files, body)
	}
	if _, b := get(t, srv.URL+"/issuers/"+repository.BundleFile); strings.Count(b, "BEGIN CERTIFICATE") != 3 {
		t.Errorf("the bundle holds %d certificates, want the 3 generations'", strings.Count(b, "BEGIN CERTIFICATE"))
	}
	if r, _ := get(t, srv.URL+"/issuers/shomei-sign-g3.pem"); r.StatusCode != http.StatusNotFound {
		t.Errorf("an unpublished name: %s", r.Status)
	}
}

// TestNewRefuses: every bound of Config is checked with a precise error.
func TestNewRefuses(t *testing.T) {
	ok := repository.Config{Issuers: repository.NewIssuers(), CRLs: &fakeCRLs{}, PublicURL: "http://ca.example", CPSURL: "http://ca.example/cps"}
	for _, tc := range []struct {
		edit func(*repository.Config)
		want string
	}{
		{func(c *repository.Config) { c.CRLs = nil }, "Config.Issuers and Config.CRLs are required"},
		{func(c *repository.Config) { c.PublicURL = "ca.example" }, `Config.PublicURL "ca.example": an absolute http(s) URL`},
		{func(c *repository.Config) { c.CPSURL = "" }, "Config.CPSURL: required"},
		{func(c *repository.Config) { c.PageSize = -1 }, "Config.PageSize -1: 1 to 1000"},
		{func(c *repository.Config) { c.PageSize = repository.MaxPageSize + 1 }, "Config.PageSize 1001: 1 to 1000"},
		{func(c *repository.Config) { c.Refresh = -time.Second }, "Config.Refresh -1s: more than 0 and at most 1m0s"},
		{func(c *repository.Config) { c.Refresh = time.Hour }, "Config.Refresh 1h0m0s: more than 0 and at most 1m0s"},
	} {
		c := ok
		tc.edit(&c)
		if _, err := repository.New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
	if _, err := repository.New(ok); err != nil {
		t.Error(err)
	}
}

// BenchmarkPage serves the page at national scale: 2 profiles × 1,741
// municipalities × 4 shards = 13,928 CRLs, 100 a page, from the cached
// snapshot (B/page: the size of one response, bounded by the page size).
//
//	go test -run '^$' -bench Page -benchtime 2000x ./repository
func BenchmarkPage(b *testing.B) {
	src := &fakeCRLs{}
	for _, prof := range []string{"auth", "sign"} {
		for m := range 1741 {
			for s := range 4 {
				name := fmt.Sprintf("%s-g1-%05d-s%d", prof, 1000+m, s)
				src.list = append(src.list, crl.PublishedCRL{Name: name, URL: "http://shomei.example/crl/" + name + ".crl", Number: uint64(m),
					ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour)})
			}
		}
	}
	issuers := repository.NewIssuers()
	c := &clock{t: now}
	page, err := repository.New(repository.Config{Issuers: issuers, CRLs: src, PublicURL: "http://shomei.example", CPSURL: "http://shomei.example/cps",
		Now: c.now})
	if err != nil {
		b.Fatal(err)
	}
	for _, bench := range []struct {
		path  string
		fresh bool // a new snapshot every time: taken, sorted and rendered
	}{{"/?page=70", false}, {repository.JSONPath + "?page=70", false}, {"/?page=70", true}, {repository.JSONPath + "?page=70", true}} {
		path := bench.path
		b.Run(fmt.Sprintf("%s/fresh=%v", path, bench.fresh), func(b *testing.B) {
			size := 0
			for b.Loop() {
				if bench.fresh {
					c.add(repository.DefaultRefresh)
				}
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if strings.HasPrefix(path, "/?") {
					page.ServeHTML(rec, req)
				} else {
					page.ServeJSON(rec, req)
				}
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code, rec.Body.String())
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "B/page")
		})
	}
}

// BenchmarkPageScan: a caller walking every page of / at national scale
// (13,928 CRLs, 140 pages) within one snapshot: each page is rendered
// once, then served from the cache.
func BenchmarkPageScan(b *testing.B) {
	src := &fakeCRLs{}
	for i := range 13928 {
		name := fmt.Sprintf("sign-g1-%05d-s%d", 1000+i/8, i%8)
		src.list = append(src.list, crl.PublishedCRL{Name: name, URL: "http://shomei.example/crl/" + name + ".crl", Number: uint64(i),
			ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour)})
	}
	page, err := repository.New(repository.Config{Issuers: repository.NewIssuers(), CRLs: src, PublicURL: "http://shomei.example",
		CPSURL: "http://shomei.example/cps", Now: (&clock{t: now}).now})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		page.ServeHTML(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/?page=%d", n%140+1), nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code, rec.Body.String())
		}
		n++
	}
}
