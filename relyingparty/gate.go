package relyingparty

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/internal/ratelimit"
)

// Defaults of Config.
const (
	DefaultAddressRate  = 200
	DefaultAddressBurst = 400
	DefaultAddressTable = 1 << 16
	DefaultPartyRate    = 1000
)

// Labels of callers who are not a registered relying party.
const (
	anonymous    = "anonymous"    // Open mode, no credential
	unregistered = "unregistered" // Registered mode: refused
)

// Party is a registered relying party.
type Party struct {
	// Name labels its metrics and log lines: an organisation's short name,
	// never anything personal. Lower-case letters, digits and dashes.
	Name string
	// Token is its bearer token; empty: none.
	Token []byte
	// Keys are the SHA-256 digests of the SubjectPublicKeyInfo of its TLS
	// client certificates (KeyDigest); none: it identifies by token.
	Keys [][sha256.Size]byte
	// Rate is its requests per second over all endpoints; default
	// DefaultPartyRate; negative: unlimited. Burst defaults to twice Rate.
	Rate  float64
	Burst int
}

// Config configures a Gate.
type Config struct {
	// Registered limits status to the Parties; otherwise (Open, the
	// default) anyone may ask and Parties only get their own counters
	// and limits.
	Registered bool
	Parties    []Party
	// AddressRate limits callers who are not a relying party, per
	// address: requests per second; default DefaultAddressRate, negative:
	// no limit. AddressBurst defaults to DefaultAddressBurst (or twice the
	// rate if larger), AddressTable (addresses kept) to
	// DefaultAddressTable.
	AddressRate  float64
	AddressBurst int
	AddressTable int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log gets refusals at debug level; default discards.
	Log *slog.Logger
	// Metrics, when set, registers the gate's metrics.
	Metrics prometheus.Registerer
}

// Gate admits status requests. It is safe for concurrent use.
type Gate struct {
	registered bool
	byToken    map[[sha256.Size]byte]*party
	byKey      map[[sha256.Size]byte]*party
	parties    []*party
	addresses  *ratelimit.Table // nil: no per-address limit
	now        func() time.Time
	log        *slog.Logger
	requests   *prometheus.CounterVec
}

type party struct {
	name   string
	bucket *ratelimit.Bucket // nil: unlimited
}

var partyName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// New checks cfg and makes a Gate.
func New(cfg Config) (*Gate, error) {
	g := &Gate{
		registered: cfg.Registered,
		byToken:    map[[sha256.Size]byte]*party{},
		byKey:      map[[sha256.Size]byte]*party{},
		now:        cfg.Now,
		log:        cfg.Log,
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registered && len(cfg.Parties) == 0 {
		return nil, errors.New("relyingparty: Registered mode with no relying party would refuse everyone")
	}
	now := g.now()
	names := map[string]bool{}
	for i, p := range cfg.Parties {
		switch {
		case !partyName.MatchString(p.Name) || p.Name == anonymous || p.Name == unregistered:
			return nil, fmt.Errorf("relyingparty: Parties[%d]: name %q: 1 to 63 lower-case letters, digits and dashes, not %q or %q", i, p.Name, anonymous, unregistered)
		case names[p.Name]:
			return nil, fmt.Errorf("relyingparty: Parties[%d]: name %q twice", i, p.Name)
		case len(p.Token) == 0 && len(p.Keys) == 0:
			return nil, fmt.Errorf("relyingparty: %s: a token or a client certificate is required", p.Name)
		case len(p.Token) > 0 && len(p.Token) < 16:
			return nil, fmt.Errorf("relyingparty: %s: the token has %d bytes; at least 16", p.Name, len(p.Token))
		}
		names[p.Name] = true
		in := &party{name: p.Name}
		if p.Rate >= 0 {
			rate, burst := p.Rate, p.Burst
			if rate == 0 {
				rate = DefaultPartyRate
			}
			if burst == 0 {
				burst = max(1, int(2*rate))
			}
			b, err := ratelimit.NewBucket(rate, burst, now)
			if err != nil {
				return nil, fmt.Errorf("relyingparty: %s: %w", p.Name, err)
			}
			in.bucket = b
		}
		if len(p.Token) > 0 {
			d := sha256.Sum256(p.Token)
			if other := g.byToken[d]; other != nil {
				return nil, fmt.Errorf("relyingparty: %s has the token of %s", p.Name, other.name)
			}
			g.byToken[d] = in
		}
		for _, k := range p.Keys {
			if other := g.byKey[k]; other != nil {
				return nil, fmt.Errorf("relyingparty: %s has a client key of %s", p.Name, other.name)
			}
			g.byKey[k] = in
		}
		g.parties = append(g.parties, in)
	}
	if cfg.AddressRate >= 0 {
		rate, burst, size := cfg.AddressRate, cfg.AddressBurst, cfg.AddressTable
		if rate == 0 {
			rate = DefaultAddressRate
		}
		if burst == 0 {
			burst = max(DefaultAddressBurst, int(2*rate))
		}
		if size == 0 {
			size = DefaultAddressTable
		}
		t, err := ratelimit.NewTable(ratelimit.Config{Rate: rate, Burst: burst, Size: size})
		if err != nil {
			return nil, fmt.Errorf("relyingparty: per-address limit: %w", err)
		}
		g.addresses = t
	}
	g.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shomei_status_requests_total",
		Help: "Certificate-status requests (OCSP, CRL) on the HTTP listener, by endpoint, relying party (its configured name, anonymous, or unregistered) and outcome (admitted, rate_limited, refused).",
	}, []string{"endpoint", "party", "outcome"})
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(g.requests); err != nil {
			return nil, fmt.Errorf("relyingparty: metrics: %w", err)
		}
		if g.addresses != nil {
			t := g.addresses
			if err := cfg.Metrics.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "shomei_status_rate_limit_addresses",
				Help: "Caller addresses (IPv4, IPv6 /64) whose rate limit is being tracked; bounded.",
			}, func() float64 { return float64(t.Len()) })); err != nil {
				return nil, fmt.Errorf("relyingparty: metrics: %w", err)
			}
		}
	}
	return g, nil
}

// KeyDigest is the digest a Party's Keys hold for a certificate: SHA-256
// of its SubjectPublicKeyInfo.
func KeyDigest(rawSubjectPublicKeyInfo []byte) [sha256.Size]byte {
	return sha256.Sum256(rawSubjectPublicKeyInfo)
}

// TLSConfig adds to a server TLS configuration what the Gate needs to see
// client certificates: it asks for one without requiring or verifying a
// chain (the pinned key is the check).
func TLSConfig(base *tls.Config) *tls.Config {
	c := base.Clone()
	c.ClientAuth = tls.RequestClientCert
	return c
}

// errConflict: a token and a client certificate of two relying parties.
var errConflict = errors.New("the bearer token and the client certificate name different relying parties")

// identify returns the relying party of a request, nil for none. A
// credential that names nobody is an error only in Registered mode.
func (g *Gate) identify(r *http.Request) (*party, error) {
	var byToken, byCert *party
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return nil, errors.New("an Authorization header that is not a bearer token")
		}
		d := sha256.Sum256([]byte(strings.TrimSpace(token)))
		for k, p := range g.byToken {
			if subtle.ConstantTimeCompare(k[:], d[:]) == 1 {
				byToken = p
			}
		}
		if byToken == nil {
			return nil, errors.New("a bearer token of no relying party")
		}
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		byCert = g.byKey[KeyDigest(r.TLS.PeerCertificates[0].RawSubjectPublicKeyInfo)]
		if byCert == nil {
			return nil, errors.New("a client certificate of no relying party")
		}
	}
	if byToken != nil && byCert != nil && byToken != byCert {
		return nil, errConflict
	}
	if byToken != nil {
		return byToken, nil
	}
	return byCert, nil
}

// Guard admits requests to next, the status endpoint named endpoint
// ("ocsp", "crl"): refuse answers those refused in Registered mode, cheaply
// (for OCSP the unsigned unauthorized response, for CRLs Forbidden).
func (g *Gate) Guard(endpoint string, next, refuse http.Handler) http.Handler {
	// Counters looked up once: admitted and rate_limited per party.
	type pair struct{ admitted, limited prometheus.Counter }
	count := func(name string) pair {
		return pair{g.requests.WithLabelValues(endpoint, name, "admitted"), g.requests.WithLabelValues(endpoint, name, "rate_limited")}
	}
	parties := make(map[*party]pair, len(g.parties))
	for _, p := range g.parties {
		parties[p] = count(p.name)
	}
	anon := count(anonymous)
	if g.registered {
		anon = count(unregistered) // its admitted series stays 0
	}
	refused := g.requests.WithLabelValues(endpoint, unregistered, "refused")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := g.now()
		p, err := g.identify(r)
		if p != nil {
			c := parties[p]
			if p.bucket != nil {
				if ok, wait := p.bucket.Allow(now); !ok {
					c.limited.Inc()
					tooMany(w, wait)
					return
				}
			}
			c.admitted.Inc()
			next.ServeHTTP(w, r)
			return
		}
		if g.addresses != nil {
			if ok, wait := g.addresses.Allow(ratelimit.AddressKey(r.RemoteAddr), now); !ok {
				anon.limited.Inc()
				tooMany(w, wait)
				return
			}
		}
		if g.registered || errors.Is(err, errConflict) {
			refused.Inc()
			g.log.Debug("relyingparty: refused", "endpoint", endpoint, "reason", reason(err))
			refuse.ServeHTTP(w, r)
			return
		}
		anon.admitted.Inc()
		next.ServeHTTP(w, r)
	})
}

// GuardRegistered is Guard in Registered mode and next itself otherwise:
// for an endpoint that is no status endpoint but tells what one does,
// such as /metrics (its shomei_crl_* series name every CRL partition with
// its entries and nextUpdate). Open mode leaves it unlimited and
// uncounted, as it was; registered mode refuses it to unregistered
// callers, so Prometheus scrapes it as a registered relying party.
func (g *Gate) GuardRegistered(endpoint string, next, refuse http.Handler) http.Handler {
	if !g.registered {
		return next
	}
	return g.Guard(endpoint, next, refuse)
}

func reason(err error) string {
	if err == nil {
		return "no credential"
	}
	return err.Error()
}

// tooMany answers 429 with Retry-After.
func tooMany(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(ratelimit.RetryAfter(wait), 10))
	http.Error(w, "too many requests", http.StatusTooManyRequests)
}

// Forbidden is the refusal of an endpoint without one of its own (CRLs):
// HTTP 403.
var Forbidden http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "status is served to registered relying parties only (R-R6)", http.StatusForbidden)
})
