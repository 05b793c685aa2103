package clienttoken

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shomei-pki/shomei/internal/secfile"
)

// DialOptions are how a client of the CA's gRPC API connects: over TLS,
// verifying the CA's certificate against the PEM certificates in caFile,
// when caFile is set, else in plaintext (a CA on loopback); with the bearer
// token of tokenFile when it is set. The file names are for messages only.
func DialOptions(tokenFile, caFile string) ([]grpc.DialOption, error) {
	return Dial{TokenFile: tokenFile, CAFile: caFile}.Options()
}

// Dial says how a client of the CA's gRPC API connects.
type Dial struct {
	// TokenFile holds the client's bearer token; empty for none (a
	// development CA with no clients).
	TokenFile string
	// CAFile holds the PEM certificate(s) that verify the CA's TLS
	// certificate; empty means plaintext (a CA on loopback).
	CAFile string
	// CertFile and KeyFile are the client's certificate and private key,
	// presented when the CA requires mutual TLS (server.tls.client_ca_file);
	// the certificate names the client whose token is sent. Both or
	// neither; they need CAFile.
	CertFile, KeyFile string
}

// Options are the grpc.DialOptions of d. TLS is 1.2 at least; Go prefers
// 1.3 when the CA offers it.
func (d Dial) Options() ([]grpc.DialOption, error) {
	if (d.CertFile == "") != (d.KeyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	if d.CertFile != "" && d.CAFile == "" {
		return nil, errors.New("a client certificate is only sent over TLS: give the CA's certificate too")
	}
	creds := insecure.NewCredentials()
	if d.CAFile != "" {
		pem, err := os.ReadFile(d.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", d.CAFile)
		}
		conf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		if d.CertFile != "" {
			cert, err := secfile.LoadKeyPair(d.CertFile, d.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			conf.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(conf)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if d.TokenFile != "" {
		token, err := Read(d.TokenFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(Bearer(token)))
	}
	return opts, nil
}
