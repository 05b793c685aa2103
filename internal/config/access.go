package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/relyingparty"
)

// HTTPAccess says who may fetch OCSP responses and CRLs on an HTTP
// listener, and how often (R-R6; issue #9 items 5 and 6). The zero value
// is open to anyone, limited per address.
type HTTPAccess struct {
	// Mode is "open" (the default): anyone may ask; or "registered": only
	// the relying parties below; others get OCSP unauthorized or HTTP 403
	// for CRLs.
	Mode string `yaml:"mode"`
	// PerAddress limits callers that are not a relying party.
	PerAddress AddressLimit `yaml:"per_address"`
	// TLS serves the listener over TLS and asks callers for a client
	// certificate (not required), so relying parties can identify by one.
	TLS *HTTPTLS `yaml:"tls"`
	// RelyingParties are the registered relying parties.
	RelyingParties []RelyingParty `yaml:"relying_parties"`
}

// AddressLimit is a per-address rate limit (IPv4 address, IPv6 /64).
type AddressLimit struct {
	// Rate is requests per second per address; default 200; negative: no
	// limit.
	Rate float64 `yaml:"rate"`
	// Burst defaults to 400 (or twice the rate if larger).
	Burst int `yaml:"burst"`
	// TableSize bounds the addresses tracked; default 65,536.
	TableSize int `yaml:"table_size"`
}

// HTTPTLS is the HTTP listener's server certificate and key (PEM).
type HTTPTLS struct {
	// CertFile is the listener's PEM certificate (chain); required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is its PEM private key, readable by its owner only; required.
	KeyFile string `yaml:"key_file"`
}

// RelyingParty is a registered relying party: an organisation allowed to
// check status.
type RelyingParty struct {
	// Name labels its metrics: lower-case letters, digits and dashes,
	// never anything personal.
	Name string `yaml:"name"`
	// TokenFile holds its bearer token (first line, at least 16 bytes).
	TokenFile string `yaml:"token_file"`
	// ClientCertFile holds its TLS client certificate(s), PEM; the public
	// keys are pinned. Needs tls.
	ClientCertFile string `yaml:"client_cert_file"`
	// Rate is its requests per second; default 1000; negative: no limit.
	// Burst defaults to twice the rate.
	Rate float64 `yaml:"rate"`
	// Burst is the relying party's burst; default twice its rate.
	Burst int `yaml:"burst"`
}

func (a *HTTPAccess) resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if a.TLS != nil {
		abs(&a.TLS.CertFile)
		abs(&a.TLS.KeyFile)
	}
	for i := range a.RelyingParties {
		abs(&a.RelyingParties[i].TokenFile)
		abs(&a.RelyingParties[i].ClientCertFile)
	}
}

func (a HTTPAccess) validate() []error {
	var errs []error
	switch a.Mode {
	case "", "open":
	case "registered":
		if len(a.RelyingParties) == 0 {
			errs = append(errs, errors.New("http_access.mode registered needs relying_parties"))
		}
	default:
		errs = append(errs, fmt.Errorf("http_access.mode %q: open or registered", a.Mode))
	}
	if a.PerAddress.Burst < 0 || a.PerAddress.TableSize < 0 {
		errs = append(errs, errors.New("http_access.per_address: burst and table_size must not be negative"))
	}
	if a.TLS != nil && (a.TLS.CertFile == "" || a.TLS.KeyFile == "") {
		errs = append(errs, errors.New("http_access.tls: cert_file and key_file are required"))
	}
	for i, rp := range a.RelyingParties {
		switch {
		case rp.Name == "":
			errs = append(errs, fmt.Errorf("http_access.relying_parties[%d]: name is required", i))
		case rp.TokenFile == "" && rp.ClientCertFile == "":
			errs = append(errs, fmt.Errorf("http_access.relying_parties[%d] (%s): token_file or client_cert_file is required", i, rp.Name))
		case rp.ClientCertFile != "" && a.TLS == nil:
			errs = append(errs, fmt.Errorf("http_access.relying_parties[%d] (%s): client_cert_file needs http_access.tls", i, rp.Name))
		case rp.Burst < 0:
			errs = append(errs, fmt.Errorf("http_access.relying_parties[%d] (%s): burst must not be negative", i, rp.Name))
		}
	}
	return errs
}

// GateConfig reads the relying parties' tokens and certificates into a
// relyingparty.Config (its Log, Metrics and Now are the caller's).
func (a HTTPAccess) GateConfig() (relyingparty.Config, error) {
	gc := relyingparty.Config{
		Registered:   a.Mode == "registered",
		AddressRate:  a.PerAddress.Rate,
		AddressBurst: a.PerAddress.Burst,
		AddressTable: a.PerAddress.TableSize,
	}
	for _, rp := range a.RelyingParties {
		p := relyingparty.Party{Name: rp.Name, Rate: rp.Rate, Burst: rp.Burst}
		if rp.TokenFile != "" {
			token, err := clienttoken.Read(rp.TokenFile)
			if err != nil {
				return gc, fmt.Errorf("http_access.relying_parties %s: %w", rp.Name, err)
			}
			p.Token = []byte(token)
		}
		if rp.ClientCertFile != "" {
			keys, err := pinnedKeys(rp.ClientCertFile)
			if err != nil {
				return gc, fmt.Errorf("http_access.relying_parties %s: client_cert_file: %w", rp.Name, err)
			}
			p.Keys = keys
		}
		gc.Parties = append(gc.Parties, p)
	}
	return gc, nil
}

// pinnedKeys are the key digests of the PEM certificates in path.
func pinnedKeys(path string) ([][sha256.Size]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys [][sha256.Size]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		keys = append(keys, relyingparty.KeyDigest(c.RawSubjectPublicKeyInfo))
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return keys, nil
}

// ServerTLS is the HTTP listener's TLS configuration (TLS 1.2 or later,
// asking for client certificates); nil when http_access.tls is not set.
func (a HTTPAccess) ServerTLS() (*tls.Config, error) {
	if a.TLS == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(a.TLS.CertFile, a.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("http_access.tls: %w", err)
	}
	return relyingparty.TLSConfig(&tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}), nil
}
