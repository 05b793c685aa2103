package relyingparty_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/relyingparty"
)

// endpoint counts what reaches the status handler and the refusal.
type endpoint struct {
	mu               sync.Mutex
	served, refusals int
}

func (e *endpoint) handlers() (next, refuse http.Handler) {
	next = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.mu.Lock()
		e.served++
		e.mu.Unlock()
		w.Write([]byte("status"))
	})
	refuse = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.mu.Lock()
		e.refusals++
		e.mu.Unlock()
		http.Error(w, "refused", http.StatusForbidden)
	})
	return next, refuse
}

func newGate(t *testing.T, cfg relyingparty.Config) (*relyingparty.Gate, *testenv.Clock, *prometheus.Registry) {
	t.Helper()
	c := testenv.NewClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	cfg.Now, cfg.Metrics = c.Now, reg
	g, err := relyingparty.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g, c, reg
}

func do(t *testing.T, client *http.Client, url, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

const bankToken = "bank-a-token-0123456789abcdef"

// TestAttackAddressFlood: one address asking without limit gets 429 with
// Retry-After once over its burst; another address, and a registered
// relying party, are not affected; the table of addresses stays bounded.
func TestAttackAddressFlood(t *testing.T) {
	g, clk, reg := newGate(t, relyingparty.Config{
		AddressRate: 1, AddressBurst: 10, AddressTable: 4,
		Parties: []relyingparty.Party{{Name: "bank-a", Token: []byte(bankToken), Rate: -1}},
	})
	var ep endpoint
	next, refuse := ep.handlers()
	srv := httptest.NewServer(g.Guard("ocsp", next, refuse))
	defer srv.Close()
	codes := map[int]int{}
	for range 100 {
		resp := do(t, srv.Client(), srv.URL, "")
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
	}
	if codes[200] != 10 || codes[429] != 90 || ep.served != 10 {
		t.Fatalf("codes %v, %d served; want 10 OK, 90 429", codes, ep.served)
	}
	// The registered relying party, from the same address, is limited by
	// its own bucket (here none).
	for range 50 {
		if resp := do(t, srv.Client(), srv.URL, bankToken); resp.StatusCode != 200 {
			t.Fatalf("relying party: HTTP %d", resp.StatusCode)
		}
	}
	clk.Add(time.Second)
	if resp := do(t, srv.Client(), srv.URL, ""); resp.StatusCode != 200 {
		t.Fatalf("a second later: HTTP %d", resp.StatusCode)
	}
	want := map[string]float64{
		`endpoint="ocsp",outcome="admitted",party="anonymous"`:     11,
		`endpoint="ocsp",outcome="rate_limited",party="anonymous"`: 90,
		`endpoint="ocsp",outcome="admitted",party="bank-a"`:        50,
	}
	checkCounters(t, reg, want)
}

// checkCounters compares shomei_status_requests_total's non-zero series.
func checkCounters(t *testing.T, reg *prometheus.Registry, want map[string]float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "shomei_status_requests_total" {
			continue
		}
		for _, m := range mf.Metric {
			if m.Counter.GetValue() == 0 {
				continue
			}
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			got[strings.Join(labels, ",")] = m.Counter.GetValue()
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
}

// selfSigned makes a client certificate and its key.
func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: nil}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestAttackUnregisteredCaller: in Registered mode a caller with no
// credential, a wrong token, an unknown client certificate, or a token and
// a certificate of two different relying parties gets the endpoint's
// refusal and never reaches it; registered ones by token or by pinned
// client key do, each limited by its own bucket.
func TestAttackUnregisteredCaller(t *testing.T) {
	bankCert, govCert, strangerCert := selfSigned(t, "bank-a"), selfSigned(t, "gov"), selfSigned(t, "stranger")
	g, _, reg := newGate(t, relyingparty.Config{
		Registered: true,
		Parties: []relyingparty.Party{
			{Name: "bank-a", Token: []byte(bankToken), Rate: 1, Burst: 3},
			{Name: "gov-portal", Keys: [][32]byte{relyingparty.KeyDigest(govCert.Leaf.RawSubjectPublicKeyInfo)}},
		},
	})
	var ep endpoint
	next, refuse := ep.handlers()
	srv := httptest.NewUnstartedServer(g.Guard("crl", next, refuse))
	srv.TLS = relyingparty.TLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})
	srv.StartTLS()
	defer srv.Close()
	client := func(cert *tls.Certificate) *http.Client {
		c := srv.Client()
		tr := c.Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: tr}
	}
	tests := []struct {
		name   string
		cert   *tls.Certificate
		token  string
		status int
	}{
		{"no credential", nil, "", 403},
		{"wrong token", nil, "not-a-registered-token-at-all", 403},
		{"unknown client certificate", &strangerCert, "", 403},
		{"token of one party, certificate of another", &govCert, bankToken, 403},
		{"registered certificate", &govCert, "", 200},
		{"registered token", nil, bankToken, 200},
		{"registered token again", nil, bankToken, 200},
		{"registered token, third time", nil, bankToken, 200},
		{"over its own limit", nil, bankToken, 429},
		{"bank-a's certificate is not pinned", &bankCert, "", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if resp := do(t, client(tc.cert), srv.URL, tc.token); resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	if ep.served != 4 || ep.refusals != 5 {
		t.Fatalf("%d served, %d refused; want 4 and 5", ep.served, ep.refusals)
	}
	checkCounters(t, reg, map[string]float64{
		`endpoint="crl",outcome="admitted",party="bank-a"`:      3,
		`endpoint="crl",outcome="rate_limited",party="bank-a"`:  1,
		`endpoint="crl",outcome="admitted",party="gov-portal"`:  1,
		`endpoint="crl",outcome="refused",party="unregistered"`: 5,
	})
}

func TestNewRefuses(t *testing.T) {
	tok := []byte(bankToken)
	for name, cfg := range map[string]relyingparty.Config{
		"registered without parties": {Registered: true},
		"bad name":                   {Parties: []relyingparty.Party{{Name: "Bank A", Token: tok}}},
		"reserved name":              {Parties: []relyingparty.Party{{Name: "anonymous", Token: tok}}},
		"no credential":              {Parties: []relyingparty.Party{{Name: "bank-a"}}},
		"short token":                {Parties: []relyingparty.Party{{Name: "bank-a", Token: []byte("short")}}},
		"same token twice":           {Parties: []relyingparty.Party{{Name: "bank-a", Token: tok}, {Name: "bank-b", Token: tok}}},
		"same name twice":            {Parties: []relyingparty.Party{{Name: "bank-a", Token: tok}, {Name: "bank-a", Token: append([]byte("x"), tok...)}}},
	} {
		if _, err := relyingparty.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestGuardRegistered: in open mode GuardRegistered is next itself (no
// limit per address, nothing counted: /metrics as before); in registered
// mode it is Guard, refusing unregistered callers and serving registered
// ones.
func TestGuardRegistered(t *testing.T) {
	for _, registered := range []bool{false, true} {
		t.Run(fmt.Sprintf("registered=%v", registered), func(t *testing.T) {
			g, _, reg := newGate(t, relyingparty.Config{Registered: registered, AddressRate: 1, AddressBurst: 1,
				Parties: []relyingparty.Party{{Name: "bank-a", Token: []byte(bankToken), Rate: -1}}})
			var ep endpoint
			next, refuse := ep.handlers()
			srv := httptest.NewServer(g.GuardRegistered("metrics", next, refuse))
			defer srv.Close()
			for range 5 {
				want := http.StatusOK
				if registered {
					want = http.StatusForbidden
				}
				if resp := do(t, srv.Client(), srv.URL, ""); resp.StatusCode != want && !(registered && resp.StatusCode == http.StatusTooManyRequests) {
					t.Fatalf("no credential: HTTP %d, want %d", resp.StatusCode, want)
				}
			}
			if resp := do(t, srv.Client(), srv.URL, bankToken); resp.StatusCode != http.StatusOK {
				t.Fatalf("bank-a: HTTP %d, want 200", resp.StatusCode)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			counted := false
			for _, mf := range mfs {
				for _, m := range mf.Metric {
					for _, l := range m.Label {
						counted = counted || l.GetValue() == "metrics"
					}
				}
			}
			if counted != registered {
				t.Errorf("series of endpoint metrics: %v, want %v", counted, registered)
			}
			if registered && ep.served != 1 || !registered && ep.served != 6 {
				t.Errorf("%d served", ep.served)
			}
		})
	}
}
