package config

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/secfile"
	"github.com/shomei-pki/shomei/internal/server"
	"github.com/shomei-pki/shomei/internal/x509enc"
	"github.com/shomei-pki/shomei/ocsp"
)

// Config is the whole configuration file.
type Config struct {
	// Store is where the CA keeps its state.
	Store Store `yaml:"store"`
	// HSM is the PKCS#11 token of the issuer and responder keys.
	HSM HSM `yaml:"hsm"`
	// Issuers: how `shomeictl init` makes the issuer keys and certificates.
	Issuers Issuers `yaml:"issuers"`
	// Server: where shomei-ca listens, and the limits of its listeners.
	Server Server `yaml:"server"`
	// Certificates: the certificate content that is configuration.
	Certificates Certificates `yaml:"certificates"`
	// OCSP: the CA's own OCSP responder.
	OCSP OCSP `yaml:"ocsp"`
	// HTTPAccess: who may fetch OCSP and CRLs on server.http_listen (R-R6).
	HTTPAccess HTTPAccess `yaml:"http_access"`
	// Audit: the signed checkpoints of the audit log (R-K3).
	Audit Audit `yaml:"audit"`
	// Approvals: how many operators must agree to a key operation (R-K1,
	// R-K2).
	Approvals Approvals `yaml:"approvals"`
	// Clients are the municipal systems, OCSP replicas and operators
	// allowed to call the API. With none, anyone who reaches the gRPC
	// address may act for any municipality and as any operator: acceptable
	// only for development on a loopback address.
	Clients []Client `yaml:"clients"`

	// Path is the file the configuration was read from.
	Path string `yaml:"-"`
}

// HSM says which PKCS#11 token holds the issuer keys.
type HSM struct {
	// Module is the PKCS#11 library of the HSM vendor.
	Module string `yaml:"module"`
	// ModuleEnv are environment variables the module reads when it is
	// loaded, such as SOFTHSM2_CONF or a vendor's configuration path.
	ModuleEnv map[string]string `yaml:"module_env"`
	// TokenLabel is the label of the token holding the keys; required.
	TokenLabel string `yaml:"token_label"`
	// PINSource: the user PIN from pin_file or pin_env, exactly one of
	// them, never the PIN itself.
	hsm.PINSource `yaml:",inline"`
	// PoolSize bounds concurrent HSM sessions; 0 means the number of CPUs.
	PoolSize int `yaml:"pool_size"`
	// WaitTimeout bounds the wait for a free session; 0 means 5s.
	WaitTimeout time.Duration `yaml:"wait_timeout"`
}

// Issuers says how the key ceremony makes the issuers.
type Issuers struct {
	// KeyAlgorithm of the issuer keys: rsa2048 (the default, as the real
	// JPKI), rsa3072, rsa4096, ecdsa-p256 or ecdsa-p384.
	KeyAlgorithm string `yaml:"key_algorithm"`
	// ValidityYears of the issuer certificates, 1 to 30; default 10. They
	// must outlive every certificate they issue (R-V7).
	ValidityYears int `yaml:"validity_years"`
	// SignDN is the SIGN issuer's DN, one attribute per entry (C=JP,
	// O=JPKI, …); default R-P1's. A rotated key keeps it (R-K1).
	SignDN []string `yaml:"sign_dn"`
	// AuthDN is the AUTH issuer's DN, as sign_dn; default R-P1's.
	AuthDN []string `yaml:"auth_dn"`
}

// Server says where shomei-ca listens.
type Server struct {
	// GRPCListen is the gRPC API address; default 127.0.0.1:8443.
	GRPCListen string `yaml:"grpc_listen"`
	// HTTPListen serves CRLs, OCSP, the CPS and /metrics; default 127.0.0.1:8080.
	HTTPListen string `yaml:"http_listen"`
	// PublicURL is how relying parties reach the HTTP listener; it is
	// written into certificates (CRL and OCSP URLs). Default
	// http://<http_listen>.
	PublicURL string `yaml:"public_url"`
	// ShutdownTimeout bounds the graceful stop; default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TLS secures the gRPC API. Without it the API is plaintext, which is
	// refused on a non-loopback address when clients are configured:
	// their bearer tokens would cross the network in clear.
	TLS *ServerTLS `yaml:"tls"`
	// RateLimits bound gRPC calls per client and failed authentications
	// per address.
	RateLimits RateLimits `yaml:"rate_limits"`
	// GRPCLimits and HTTPLimits bound each listener separately: timeouts,
	// connection caps, gRPC keepalive, streams and message size (issue 9,
	// item 3). Defaults in internal/server; the caps are lowered at start
	// to fit the file-descriptor limit.
	GRPCLimits server.GRPCLimits `yaml:"grpc_limits"`
	// HTTPLimits bound the HTTP listener (http_listen), as grpc_limits
	// the gRPC one.
	HTTPLimits server.HTTPLimits `yaml:"http_limits"`
}

// ServerTLS is the gRPC API's TLS (1.2 or later).
type ServerTLS struct {
	// CertFile and KeyFile are the server's PEM certificate (chain) and
	// private key; both required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the server's PEM private key, readable by its owner only.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile, when set, makes clients present a certificate issued
	// by one of its PEM CA certificates (mutual TLS), on top of their
	// bearer tokens; the certificate must name the client whose token it
	// comes with (clients[].tls_name).
	ClientCAFile string `yaml:"client_ca_file"`
}

// GRPCTLS returns the gRPC API's TLS configuration, reading the files
// server.tls names; nil when server.tls is not set.
func (c *Config) GRPCTLS() (*tls.Config, error) {
	t := c.Server.TLS
	if t == nil {
		return nil, nil
	}
	cert, err := secfile.LoadKeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls.cert_file, key_file: %w", err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server.tls.client_ca_file %s: no PEM certificate in it", t.ClientCAFile)
		}
		conf.ClientCAs, conf.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// IsLoopback reports whether a listen address (host:port) is reachable
// from this machine only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// Certificates is the certificate content that is configuration.
type Certificates struct {
	// OCSP adds the authorityInfoAccess OCSP URL (R-P1); default true.
	OCSP *bool `yaml:"ocsp"`
	// CPSURL is the CPS URI policy qualifier; default <public_url>/cps.
	CPSURL string `yaml:"cps_url"`
	// IssuerAltName is the SIGN issuerAltName, one RDN per entry (R-P2);
	// default C=JP, O=公的個人認証サービス.
	IssuerAltName []string `yaml:"issuer_alt_name"`
	// AllowECDSAP256 accepts ECDSA P-256 card keys besides RSA (R-P1).
	AllowECDSAP256 bool `yaml:"allow_ecdsa_p256"`
	// CRLShardSize is the most certificates one CRL partition is given,
	// and so the most entries its CRL can ever list (R-R5): a
	// municipality's certificates of one issuer key generation fill shard
	// after shard of this size (sign-g1-13221, sign-g1-13221-s1, …). 1 to
	// 1,000,000; default 100,000. Every CA process sharing a store should
	// have the same; lowering it leaves fuller shards as they are, raising
	// it fills the earlier shards up to the new size.
	CRLShardSize int `yaml:"crl_shard_size"`
}

// Client is a municipal system allowed to call the API.
type Client struct {
	// Name identifies the client in logs and the audit trail.
	Name string `yaml:"name"`
	// TokenFile holds the client's bearer token (first line).
	TokenFile string `yaml:"token_file"`
	// Municipalities are the 5-digit codes the client may act for.
	Municipalities []string `yaml:"municipalities"`
	// Replica: the client is an OCSP replica (shomei-ocsp). It may follow
	// every certificate's status and have its responder keys certified,
	// and nothing else; it acts for no municipality.
	Replica bool `yaml:"replica"`
	// Operator: the client is a person operating the CA, through
	// shomeictl and the Operations service (key rotation, approvals, audit,
	// backup), and nothing else; it acts for no municipality. Its name is
	// the one the audit log and approvals record.
	Operator bool `yaml:"operator"`
	// TLSName is, with server.tls.client_ca_file, the name the client's
	// certificate carries (subject CN or a DNS name); default Name. A
	// certificate and a token of different clients are refused.
	TLSName string `yaml:"tls_name"`
	// Rate and Burst are the client's own request limit (calls a second);
	// 0: server.rate_limits.client_rate and client_burst.
	Rate float64 `yaml:"rate"`
	// Burst is the client's own burst; 0: server.rate_limits.client_burst.
	Burst int `yaml:"burst"`
	// ResponderKeys (replicas only) are the responder keys the replica may
	// have certified, each "sha256:" and the hex SHA-256 of the key's
	// SubjectPublicKeyInfo DER, as `shomei-ocsp --print-responder-keys`
	// prints them (R-R6). No key, no certificate.
	ResponderKeys []string `yaml:"responder_keys"`
	// Issuers (replicas only) are the issuer key generations the replica
	// serves, e.g. [sign-g1, auth-g1]: it follows their statuses and has
	// responders certified for them only. Empty: every generation.
	Issuers []string `yaml:"issuers"`
}

// OCSP configures the OCSP responder (R-R6).
type OCSP struct {
	// ResponderValidity is how long a delegated responder certificate is
	// valid; default 24h. On the CA it also bounds what replicas get. The
	// certificate carries id-pkix-ocsp-nocheck, so a revoked responder
	// stops being usable when it expires unrenewed: keep it short.
	ResponderValidity time.Duration `yaml:"responder_validity"`
	// RenewBefore: the responder certificate is renewed when less than
	// this is left; default 8h.
	RenewBefore time.Duration `yaml:"renew_before"`
	// ResponseValidity is nextUpdate - thisUpdate of a response; default 1h.
	ResponseValidity time.Duration `yaml:"response_validity"`
	// MaxAge caps Cache-Control max-age; 0: up to nextUpdate.
	MaxAge time.Duration `yaml:"max_age"`
	// GoodMaxAge, when set, caps the Cache-Control max-age of "good"
	// answers instead of max_age (revoked ones keep max_age; unknown and
	// nonce answers are no-cache): 0s to response_validity, whole
	// seconds; 0s sends max-age=0. Unset: as max_age. A relying party or
	// proxy that honours it may keep a "good" that long after the
	// certificate is revoked, on top of R-R4's 1 s (docs/operations.md).
	GoodMaxAge *time.Duration `yaml:"good_max_age"`
	// CacheSize is how many signed responses are kept; 0: the default
	// (262,144), negative: none.
	CacheSize int `yaml:"cache_size"`
	// SignatureBudget bounds fresh signatures (nonce, several CertIDs,
	// unknown serials) per second; default 50; negative: none
	// (ocsp.Config.SignatureBudget). SignatureBurst defaults to 100.
	SignatureBudget float64 `yaml:"signature_budget"`
	// SignatureBurst is how many fresh signatures signature_budget allows
	// at once; default 100.
	SignatureBurst int `yaml:"signature_burst"`
	// UnknownReuse is how long an "unknown" answer is served from the
	// cache; default 1m.
	UnknownReuse time.Duration `yaml:"unknown_reuse"`
	// Presign keeps a pre-signed response for every live certificate
	// (ocsp.Presigner).
	Presign Presign `yaml:"presign"`
}

// Presign configures the OCSP pre-signer (ocsp.PresignConfig): a response
// signed ahead of time for every live certificate, refreshed before it
// stops being served, within its own HSM budget. On the CA the leader
// pre-signs into the store and every process serves from it; a replica
// pre-signs into its own store with its own responder keys.
type Presign struct {
	// Enabled: default true. Off, every response is signed when first
	// asked for, as before.
	Enabled *bool `yaml:"enabled"`
	// Budget is the pre-signer's signatures a second, apart from
	// signature_budget; default 100, at most 100,000. It must cover the
	// live certificates / refresh_after, plus the status changes.
	Budget float64 `yaml:"budget"`
	// Burst is how many signatures it may make at once; default one
	// second's worth, at most 100,000.
	Burst int `yaml:"burst"`
	// RefreshAfter is how old a pre-signed response is when it is signed
	// again; default 3/8 of response_validity, and less than half of it
	// (a response is served until it is half its validity old).
	RefreshAfter time.Duration `yaml:"refresh_after"`
	// Workers is how many signatures it makes at once; default 4, at most
	// 64.
	Workers int `yaml:"workers"`
}

// On says whether pre-signing is on (the default).
func (p Presign) On() bool { return p.Enabled == nil || *p.Enabled }

// Audit configures the signed checkpoints of the audit log (R-K3, ca/audit).
type Audit struct {
	// CheckpointEvery: a checkpoint at most this many records after the
	// last; default 100.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointInterval: a checkpoint at most this long after a record
	// was written; default 10s. One is also signed at start and at a clean
	// stop.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// decodeStrict decodes YAML into v; unknown keys are errors.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the file is empty")
		}
		return err
	}
	return nil
}

func (o OCSP) validate() error {
	if o.ResponderValidity < 0 || o.RenewBefore < 0 || o.ResponseValidity < 0 || o.MaxAge < 0 || o.UnknownReuse < 0 {
		return errors.New("ocsp: durations must not be negative")
	}
	if o.ResponderValidity > ca.MaxResponderValidity {
		return fmt.Errorf("ocsp.responder_validity %v: at most %v; a revoked responder certificate stays usable until it expires (R-R6)", o.ResponderValidity, ca.MaxResponderValidity)
	}
	if o.SignatureBurst < 0 {
		return errors.New("ocsp.signature_burst must not be negative")
	}
	validity := cmp.Or(o.ResponseValidity, ocsp.DefaultValidity)
	if o.GoodMaxAge != nil {
		if err := ocsp.CheckGoodMaxAge(*o.GoodMaxAge, validity); err != nil {
			return fmt.Errorf("ocsp.good_max_age: %w", err)
		}
	}
	return o.Presign.validate(validity)
}

// validate checks the pre-signer's settings against the response
// validity the responder uses.
func (p Presign) validate(validity time.Duration) error {
	var errs []error
	if p.Budget < 0 || p.Budget > ocsp.MaxPresignBudget {
		errs = append(errs, fmt.Errorf("ocsp.presign.budget %v: 0 (the default, %d) to %d signatures a second", p.Budget, ocsp.DefaultPresignBudget, ocsp.MaxPresignBudget))
	}
	if p.Burst < 0 || p.Burst > ocsp.MaxPresignBudget {
		errs = append(errs, fmt.Errorf("ocsp.presign.burst %d: 0 (one second's worth) to %d", p.Burst, ocsp.MaxPresignBudget))
	}
	if p.RefreshAfter < 0 || p.RefreshAfter >= validity/2 {
		errs = append(errs, fmt.Errorf("ocsp.presign.refresh_after %v: 0 (the default, 3/8 of the response validity) or less than half the response validity %v, when a response stops being served", p.RefreshAfter, validity))
	}
	if p.Workers < 0 || p.Workers > ocsp.MaxPresignWorkers {
		errs = append(errs, fmt.Errorf("ocsp.presign.workers %d: 0 (the default, %d) to %d", p.Workers, ocsp.DefaultPresignWorkers, ocsp.MaxPresignWorkers))
	}
	return errors.Join(errs...)
}

// Load reads, strictly decodes and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, err := Decode(f, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// Decode reads a configuration; relative paths are resolved against dir.
func Decode(r io.Reader, dir string) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := decodeStrict(data, &c); err != nil {
		return nil, err
	}
	c.resolve(dir)
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	c.Store.resolve(dir)
	c.HSM.resolve(dir)
	c.HTTPAccess.resolve(dir)
	for i := range c.Clients {
		abs(&c.Clients[i].TokenFile)
	}
	if t := c.Server.TLS; t != nil {
		abs(&t.CertFile)
		abs(&t.KeyFile)
		abs(&t.ClientCAFile)
	}
	if c.Server.GRPCListen == "" {
		c.Server.GRPCListen = "127.0.0.1:8443"
	}
	if c.Server.HTTPListen == "" {
		c.Server.HTTPListen = "127.0.0.1:8080"
	}
	if c.Server.PublicURL == "" {
		c.Server.PublicURL = "http://" + c.Server.HTTPListen
	}
	c.Server.PublicURL = strings.TrimRight(c.Server.PublicURL, "/")
	if c.Server.ShutdownTimeout == 0 {
		c.Server.ShutdownTimeout = 10 * time.Second
	}
	if c.Certificates.CPSURL == "" {
		c.Certificates.CPSURL = c.Server.PublicURL + "/cps"
	}
}

func (c *Config) validate() error {
	var errs []error
	errs = append(errs, c.Store.validate()...)
	errs = append(errs, c.HSM.validate()...)
	if _, err := c.IssuerConfig(); err != nil {
		errs = append(errs, err)
	}
	if u, err := url.Parse(c.Server.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("server.public_url %q must be an http(s) URL", c.Server.PublicURL))
	}
	if _, err := store.CRLShardSize(c.Certificates.CRLShardSize); err != nil {
		errs = append(errs, fmt.Errorf("certificates.crl_shard_size: %d: must be 1 to %d certificates a CRL partition (0: the default, %d)",
			c.Certificates.CRLShardSize, store.MaxCRLShardSize, store.DefaultCRLShardSize))
	}
	if len(c.Certificates.IssuerAltName) > 0 {
		if _, err := x509enc.ParseDN(c.Certificates.IssuerAltName); err != nil {
			errs = append(errs, fmt.Errorf("certificates.issuer_alt_name: %w", err))
		}
	}
	for i, cl := range c.Clients {
		switch {
		case cl.Name == "" || cl.TokenFile == "":
			errs = append(errs, fmt.Errorf("clients[%d]: name and token_file are required", i))
		case cl.Replica && cl.Operator:
			errs = append(errs, fmt.Errorf("clients[%d]: a client is a replica or an operator, not both", i))
		case (cl.Replica || cl.Operator) && len(cl.Municipalities) > 0:
			errs = append(errs, fmt.Errorf("clients[%d]: a replica or an operator acts for no municipality; remove municipalities", i))
		case !cl.Replica && !cl.Operator && len(cl.Municipalities) == 0:
			errs = append(errs, fmt.Errorf("clients[%d]: municipalities are required (or replica: true, or operator: true)", i))
		case !cl.Replica && (len(cl.ResponderKeys) > 0 || len(cl.Issuers) > 0):
			errs = append(errs, fmt.Errorf("clients[%d]: responder_keys and issuers are for replicas only", i))
		}
		for j, k := range cl.ResponderKeys {
			if _, err := ocsp.ParseKeyPin(k); err != nil {
				errs = append(errs, fmt.Errorf("clients[%d].responder_keys[%d]: %w", i, j, err))
			}
		}
	}
	for i, cl := range c.Clients {
		if err := validateClientLimits(i, cl); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.Approvals.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Server.RateLimits.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.OCSP.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.HTTPAccess.validate()...)
	if c.Audit.CheckpointEvery < 0 || c.Audit.CheckpointInterval < 0 {
		errs = append(errs, errors.New("audit: checkpoint_every and checkpoint_interval must not be negative"))
	}
	if err := errors.Join(c.Server.GRPCLimits.Validate("server.grpc_limits"), c.Server.HTTPLimits.Validate("server.http_limits")); err != nil {
		errs = append(errs, err)
	}
	switch t := c.Server.TLS; {
	case t != nil && (t.CertFile == "" || t.KeyFile == ""):
		errs = append(errs, errors.New("server.tls: cert_file and key_file are required"))
	case t == nil && len(c.Clients) > 0 && !IsLoopback(c.Server.GRPCListen):
		errs = append(errs, fmt.Errorf("server.tls is required: the API listens on %s, not loopback, and the clients' bearer tokens would cross the network in clear", c.Server.GRPCListen))
	}
	return errors.Join(errs...)
}

// IssuerConfig returns the key ceremony's configuration.
func (c *Config) IssuerConfig() (issuer.Config, error) {
	ic := issuer.Config{Algorithm: hsm.KeyAlgorithm(c.Issuers.KeyAlgorithm), ValidityYears: c.Issuers.ValidityYears}
	var err error
	if len(c.Issuers.SignDN) > 0 {
		if ic.SignDN, err = x509enc.ParseDN(c.Issuers.SignDN); err != nil {
			return ic, fmt.Errorf("issuers.sign_dn: %w", err)
		}
	}
	if len(c.Issuers.AuthDN) > 0 {
		if ic.AuthDN, err = x509enc.ParseDN(c.Issuers.AuthDN); err != nil {
			return ic, fmt.Errorf("issuers.auth_dn: %w", err)
		}
	}
	return ic, ic.Validate()
}

// OpenHSM sets the module's environment, reads the PIN and opens the token.
func (c *Config) OpenHSM() (*hsm.Token, error) { return c.HSM.Open() }

// Open sets the module's environment, reads the PIN and opens the token.
func (h HSM) Open() (*hsm.Token, error) {
	keys := make([]string, 0, len(h.ModuleEnv))
	for k := range h.ModuleEnv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := os.Setenv(k, h.ModuleEnv[k]); err != nil {
			return nil, fmt.Errorf("config: hsm.module_env %s: %w", k, err)
		}
	}
	pin, err := h.PINSource.Read()
	if err != nil {
		return nil, err
	}
	return hsm.Open(hsm.Config{
		Module:      h.Module,
		TokenLabel:  h.TokenLabel,
		PIN:         pin,
		PoolSize:    h.PoolSize,
		WaitTimeout: h.WaitTimeout,
	})
}

// resolve makes the HSM's relative paths relative to dir.
func (h *HSM) resolve(dir string) {
	if h.File != "" && !filepath.IsAbs(h.File) {
		h.File = filepath.Join(dir, h.File)
	}
	if strings.Contains(h.Module, "/") && !filepath.IsAbs(h.Module) {
		h.Module = filepath.Join(dir, h.Module)
	}
	for k, v := range h.ModuleEnv {
		if strings.HasPrefix(v, "./") || strings.HasPrefix(v, "../") {
			h.ModuleEnv[k] = filepath.Join(dir, v)
		}
	}
}

// validate reports what is missing or wrong in the HSM section.
func (h *HSM) validate() []error {
	var errs []error
	if h.Module == "" {
		errs = append(errs, errors.New("hsm.module is required"))
	}
	if h.TokenLabel == "" {
		errs = append(errs, errors.New("hsm.token_label is required"))
	}
	if (h.File == "") == (h.Env == "") {
		errs = append(errs, errors.New("hsm: set exactly one of pin_file and pin_env (the PIN itself never goes in this file)"))
	}
	if h.PoolSize < 0 {
		errs = append(errs, errors.New("hsm.pool_size must not be negative"))
	}
	if h.WaitTimeout < 0 {
		errs = append(errs, errors.New("hsm.wait_timeout must not be negative"))
	}
	return errs
}

// OCSPEnabled says whether certificates carry the OCSP URL (default yes).
func (c *Config) OCSPEnabled() bool { return c.Certificates.OCSP == nil || *c.Certificates.OCSP }
