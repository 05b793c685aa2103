package repository

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shomei-pki/shomei/ca/validity"
	"github.com/shomei-pki/shomei/crl"
)

// CRLs is what the page needs of the CRL publisher (*crl.Publisher).
type CRLs interface {
	// Published lists the CRLs served, ordered by partition name, from
	// memory.
	Published() []crl.PublishedCRL
}

var _ CRLs = (*crl.Publisher)(nil)

// Bounds and defaults of Config.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
	DefaultRefresh  = 5 * time.Second
	MaxRefresh      = time.Minute
)

// Paths the page links to on its own listener.
const (
	CRLPath   = "/crl/"
	CPSPath   = "/cps"
	JSONPath  = "/index.json"
	StylePath = "/repository.css"
)

// Config configures a Page.
type Config struct {
	Issuers *Issuers
	CRLs    CRLs
	// PublicURL is how relying parties reach the listener
	// (server.public_url): the base of the URLs /index.json gives.
	PublicURL string
	// CPSURL is the CPS as certificates name it; OCSPURLs the OCSP
	// responders of their Authority Information Access (none: no OCSP).
	CPSURL   string
	OCSPURLs []string
	// PageSize is how many CRLs a page shows: 1 to MaxPageSize,
	// DefaultPageSize when zero.
	PageSize int
	// Refresh is how long a snapshot of the CRLs is shown before the
	// publisher is asked again: more than zero and at most MaxRefresh,
	// DefaultRefresh when zero.
	Refresh time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Log gets the errors of rendering (none expected); discarded when nil.
	Log *slog.Logger
}

// Page serves the repository page, its JSON and the listings of /issuers/
// and /crl/. It is safe for concurrent use.
type Page struct {
	cfg Config

	mu   sync.Mutex // guards the CRL snapshot; held while it is taken
	at   time.Time
	crls []crl.PublishedCRL // nil: none taken yet

	rendered renderCache
}

// New checks cfg and makes a Page.
func New(cfg Config) (*Page, error) {
	if cfg.Issuers == nil || cfg.CRLs == nil {
		return nil, errors.New("repository: Config.Issuers and Config.CRLs are required")
	}
	if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("repository: Config.PublicURL %q: an absolute http(s) URL is required", cfg.PublicURL)
	}
	if cfg.CPSURL == "" {
		return nil, errors.New("repository: Config.CPSURL: required")
	}
	switch {
	case cfg.PageSize == 0:
		cfg.PageSize = DefaultPageSize
	case cfg.PageSize < 0 || cfg.PageSize > MaxPageSize:
		return nil, fmt.Errorf("repository: Config.PageSize %d: 1 to %d CRLs a page (0: %d)", cfg.PageSize, MaxPageSize, DefaultPageSize)
	}
	switch {
	case cfg.Refresh == 0:
		cfg.Refresh = DefaultRefresh
	case cfg.Refresh < 0 || cfg.Refresh > MaxRefresh:
		return nil, fmt.Errorf("repository: Config.Refresh %v: more than 0 and at most %v (0: %v)", cfg.Refresh, MaxRefresh, DefaultRefresh)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Page{cfg: cfg}, nil
}

// snapshot returns the CRLs as last taken, taking them again when older
// than Refresh (or the clock went back), and when it was taken. One
// caller takes a snapshot while the others wait for it.
func (p *Page) snapshot() ([]crl.PublishedCRL, time.Time) {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.crls == nil || now.Sub(p.at) >= p.cfg.Refresh || now.Before(p.at) {
		p.crls, p.at = p.cfg.CRLs.Published(), now
		if p.crls == nil {
			p.crls = []crl.PublishedCRL{}
		}
	}
	return p.crls, p.at
}

// errPage is a request's page parameter refused.
type errPage struct{ msg string }

func (e *errPage) Error() string { return e.msg }

// maxPageDigits bounds the page parameter before it is parsed.
const maxPageDigits = 9

// pageOf reads ?page= (1-based, default 1) for total items size a page.
func pageOf(r *http.Request, total, size int) (page, pages int, err error) {
	pages = max(1, (total+size-1)/size)
	values := r.URL.Query()["page"]
	switch {
	case len(values) == 0:
		return 1, pages, nil
	case len(values) > 1:
		return 0, pages, &errPage{fmt.Sprintf("page given %d times; once, a whole number from 1 to %d", len(values), pages)}
	}
	v := values[0]
	n, perr := strconv.Atoi(v)
	if len(v) > maxPageDigits || perr != nil || n < 1 || n > pages || v[0] == '+' || v[0] == '0' {
		return 0, pages, &errPage{fmt.Sprintf("page %q: a whole number from 1 to %d (%d CRLs, %d a page)", truncate(v, 20), pages, total, size)}
	}
	return n, pages, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// index is the repository with page of the CRLs all (of pages); base
// prefixes every path (the public URL for JSON, "" for HTML).
func (p *Page) index(all []crl.PublishedCRL, at time.Time, iss *issuerSnapshot, page, pages int, base string) Index {
	out := Index{
		Schema: SchemaVersion, GeneratedAt: at.UTC(), CPSURL: p.cfg.CPSURL, OCSPURLs: append([]string{}, p.cfg.OCSPURLs...),
		BundleURL: base + IssuersPath + BundleFile, Issuers: []Generation{},
		CRLs: CRLPage{Page: page, Pages: pages, PageSize: p.cfg.PageSize, Total: len(all), Items: []CRL{}},
	}
	for _, g := range iss.gens {
		g.Certificate = g.Certificate.under(base)
		links := make([]Certificate, 0, len(g.Links))
		for _, l := range g.Links {
			links = append(links, l.under(base))
		}
		g.Links = links
		out.Issuers = append(out.Issuers, g)
	}
	from := (page - 1) * p.cfg.PageSize
	for _, c := range all[from:min(from+p.cfg.PageSize, len(all))] {
		out.CRLs.Items = append(out.CRLs.Items, CRL{Partition: c.Name, URL: c.URL, Number: c.Number,
			ThisUpdate: c.ThisUpdate.UTC(), NextUpdate: c.NextUpdate.UTC(), Entries: c.Entries, Bytes: c.Bytes})
	}
	return out
}

// under is c with its paths under base.
func (c Certificate) under(base string) Certificate {
	c.PEM, c.DER = base+c.PEM, base+c.DER
	return c
}

// headers are the security headers of every response of the page.
func (p *Page) headers(w http.ResponseWriter, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Not "public": in registered mode a shared cache must not hand a
	// page asked for with a bearer token to anyone else.
	h.Set("Cache-Control", fmt.Sprintf("max-age=%d", int(p.cfg.Refresh.Seconds())))
}

// fail answers a refused page parameter with 400, anything else with 500.
func (p *Page) fail(w http.ResponseWriter, err error) {
	var bad *errPage
	if errors.As(err, &bad) {
		http.Error(w, bad.msg, http.StatusBadRequest)
		return
	}
	p.cfg.Log.Error("repository page", "error", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// What a page of the CRLs is rendered as: JSON, or the template of
// that name.
const (
	asJSON    = "json"
	asPage    = "page"
	asCRLList = "crl-list"
)

// ServeJSON serves GET /index.json[?page=N]: Index.
func (p *Page) ServeJSON(w http.ResponseWriter, r *http.Request) { p.serve(w, r, asJSON) }

// ServeHTML serves GET /[?page=N]: the page.
func (p *Page) ServeHTML(w http.ResponseWriter, r *http.Request) { p.serve(w, r, asPage) }

// ServeCRLList serves GET /crl/[?page=N]: the CRLs' files, a page at a time.
func (p *Page) ServeCRLList(w http.ResponseWriter, r *http.Request) { p.serve(w, r, asCRLList) }

// serve answers r with its page of the CRLs rendered as kind: rendered
// once per snapshot (of the CRLs and of the issuers) and page, then from
// the cache.
func (p *Page) serve(w http.ResponseWriter, r *http.Request, kind string) {
	all, at := p.snapshot()
	iss := p.cfg.Issuers.current()
	page, pages, err := pageOf(r, len(all), p.cfg.PageSize)
	if err != nil {
		p.fail(w, err)
		return
	}
	key := kind + "?" + strconv.Itoa(page)
	body := p.rendered.get(at, iss, key)
	if body == nil {
		if body, err = p.render(p.index(all, at, iss, page, pages, p.base(kind)), kind); err != nil {
			p.fail(w, err)
			return
		}
		p.rendered.put(at, iss, key, body)
	}
	if kind == asJSON {
		p.headers(w, "application/json")
	} else {
		p.headers(w, "text/html; charset=utf-8")
	}
	w.Write(body)
}

// base is what prefixes the paths of a response rendered as kind.
func (p *Page) base(kind string) string {
	if kind == asJSON {
		return p.cfg.PublicURL
	}
	return ""
}

// render renders idx as kind.
func (p *Page) render(idx Index, kind string) ([]byte, error) {
	if kind == asJSON {
		body, err := json.MarshalIndent(idx, "", "  ")
		return append(body, '\n'), err
	}
	path := "/"
	if kind == asCRLList {
		path = CRLPath
	}
	return execute(kind, view{Index: idx, Nav: navOf(idx.CRLs, path)})
}

// execute renders the template name of v.
func execute(name string, v view) ([]byte, error) {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// maxRenderedBytes bounds the bytes renderCache keeps. Its keys are
// bounded already (a page parameter out of range is refused): the kinds
// times the pages, together about one rendering of every CRL per kind
// (~400 B of HTML a CRL: 14 MiB at national scale, 13,928 CRLs), so one
// snapshot's pages all fit and each is rendered once per snapshot however
// a caller walks them.
const maxRenderedBytes = 32 << 20

// renderCache keeps the responses rendered from one snapshot of the CRLs
// and of the issuers; a newer snapshot starts it afresh. Past
// maxRenderedBytes it keeps what it has and stores no more, so a caller
// walking the pages never evicts the ones every visitor asks for.
type renderCache struct {
	mu      sync.Mutex
	at      time.Time
	issuers *issuerSnapshot
	bodies  map[string][]byte
	size    int // bytes of bodies
}

func (c *renderCache) get(at time.Time, iss *issuerSnapshot, key string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.Equal(at) || c.issuers != iss {
		return nil
	}
	return c.bodies[key]
}

func (c *renderCache) put(at time.Time, iss *issuerSnapshot, key string, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.Equal(at) || c.issuers != iss || c.bodies == nil {
		c.at, c.issuers, c.bodies, c.size = at, iss, map[string][]byte{}, 0
	}
	if _, ok := c.bodies[key]; ok || c.size+len(body) > maxRenderedBytes {
		return
	}
	c.bodies[key] = body
	c.size += len(body)
}

// ServeIssuerList serves GET /issuers/: the issuer certificates' files.
func (p *Page) ServeIssuerList(w http.ResponseWriter, _ *http.Request) {
	body, err := execute("issuer-list", view{Files: p.cfg.Issuers.current().names})
	if err != nil {
		p.fail(w, err)
		return
	}
	p.headers(w, "text/html; charset=utf-8")
	w.Write(body)
}

// ServeStyle serves the page's style sheet.
func (p *Page) ServeStyle(w http.ResponseWriter, _ *http.Request) {
	p.headers(w, "text/css; charset=utf-8")
	w.Write(style)
}

// view is what the templates get.
type view struct {
	Index
	Nav   nav
	Files []string // issuer-list
}

// nav links a page of CRLs to the others: first, previous, next, last
// (no link: "").
type nav struct {
	First, Prev, Next, Last string
}

func navOf(c CRLPage, path string) nav {
	link := func(n int) string { return path + "?page=" + strconv.Itoa(n) }
	var n nav
	if c.Page > 1 {
		n.First, n.Prev = link(1), link(c.Page-1)
	}
	if c.Page < c.Pages {
		n.Next, n.Last = link(c.Page+1), link(c.Pages)
	}
	return n
}

//go:embed assets
var assets embed.FS

var (
	style     = must(assets.ReadFile("assets/style.css"))
	templates = template.Must(template.New("").Funcs(template.FuncMap{
		"jst":   jst,
		"utc":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"crl":   func(name string) string { return CRLPath + name + ".crl" },
		"lower": strings.ToLower,
	}).ParseFS(assets, "assets/*.html"))
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// japan is the time zone dates are shown in: ca/validity's JST (UTC+9,
// no DST), the one JST zone of Shomei.
var japan = validity.Location()

func jst(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(japan).Format("2006-01-02 15:04:05 JST")
}
