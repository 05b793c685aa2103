package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/shomei-pki/shomei/internal/server"
)

// Replica is the configuration file of shomei-ocsp, an OCSP replica that
// follows a CA (R-R6).
type Replica struct {
	// Name identifies the replica: its responder keys are labelled
	// shomei-ocsp-<name>-<issuer>, e.g. shomei-ocsp-tokyo1-sign-g1.
	Name string `yaml:"name"`
	// CA is where the CA's gRPC API is and the replica's client token.
	CA ReplicaCA `yaml:"ca"`
	// Store is the replica's own bbolt file.
	Store ReplicaStore `yaml:"store"`
	// HSM holds the replica's responder keys.
	HSM HSM `yaml:"hsm"`
	// HTTPListen serves /ocsp, /metrics and /healthz; default 127.0.0.1:8081.
	HTTPListen string `yaml:"http_listen"`
	// OCSP: the replica's responder, as the CA's ocsp section.
	OCSP OCSP `yaml:"ocsp"`
	// HTTPAccess: who may ask for OCSP on http_listen (R-R6).
	HTTPAccess HTTPAccess `yaml:"http_access"`
	// HTTPLimits bound the HTTP listener as the CA's server.http_limits
	// do (issue 9, item 3).
	HTTPLimits server.HTTPLimits `yaml:"http_limits"`

	Path string `yaml:"-"`
}

// ReplicaCA says how to reach the CA.
type ReplicaCA struct {
	// Address of the CA's gRPC API; default 127.0.0.1:8443.
	Address string `yaml:"address"`
	// TokenFile holds the bearer token of a client configured on the CA
	// with replica: true. Optional against a development CA with no clients.
	TokenFile string `yaml:"token_file"`
	// TLSCAFile holds the PEM certificate(s) that verify the CA's gRPC TLS
	// certificate (its server.tls). Without it the connection is plaintext,
	// which is refused when the CA is not on loopback and a token is set.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are the replica's client certificate and
	// key (PEM, the key mode 0600), presented when the CA requires mutual
	// TLS (its server.tls.client_ca_file); the certificate names the
	// replica's client (clients[].tls_name on the CA). Both or neither;
	// they need tls_ca_file.
	TLSCertFile string `yaml:"tls_cert_file"`
	// TLSKeyFile is the key of tls_cert_file (PEM, mode 0600).
	TLSKeyFile string `yaml:"tls_key_file"`
}

var replicaName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

// LoadReplica reads, strictly decodes and validates a replica's file.
func LoadReplica(path string) (*Replica, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, err := DecodeReplica(f, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// DecodeReplica reads a replica's configuration; relative paths are
// resolved against dir.
func DecodeReplica(r io.Reader, dir string) (*Replica, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var c Replica
	if err := decodeStrict(data, &c); err != nil {
		return nil, err
	}
	for _, p := range []*string{&c.Store.Path, &c.CA.TokenFile, &c.CA.TLSCAFile, &c.CA.TLSCertFile, &c.CA.TLSKeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	c.HSM.resolve(dir)
	c.HTTPAccess.resolve(dir)
	if c.CA.Address == "" {
		c.CA.Address = "127.0.0.1:8443"
	}
	if c.HTTPListen == "" {
		c.HTTPListen = "127.0.0.1:8081"
	}
	var errs []error
	if !replicaName.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name %q: 1 to 31 lower-case letters, digits and dashes", c.Name))
	}
	if c.Store.Path == "" {
		errs = append(errs, errors.New("store.path is required"))
	}
	errs = append(errs, c.HSM.validate()...)
	if err := c.OCSP.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.HTTPAccess.validate()...)
	if err := c.HTTPLimits.Validate("http_limits"); err != nil {
		errs = append(errs, err)
	}
	if c.CA.TokenFile != "" && c.CA.TLSCAFile == "" && !IsLoopback(c.CA.Address) {
		errs = append(errs, fmt.Errorf("ca.tls_ca_file is required: the CA is at %s, not loopback, and the token would cross the network in clear", c.CA.Address))
	}
	if (c.CA.TLSCertFile == "") != (c.CA.TLSKeyFile == "") {
		errs = append(errs, errors.New("ca.tls_cert_file and ca.tls_key_file: both or neither"))
	} else if c.CA.TLSCertFile != "" && c.CA.TLSCAFile == "" {
		errs = append(errs, errors.New("ca.tls_cert_file needs ca.tls_ca_file: a client certificate is only sent over TLS"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &c, nil
}

// ReplicaStore is where a replica keeps what it follows: its own bbolt
// file, never the CA's store.
type ReplicaStore struct {
	// Path is the replica's bbolt file; required.
	Path string `yaml:"path"`
}
