package clienttoken

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// DialOptions are how a client of the CA's gRPC API connects: over TLS,
// verifying the CA's certificate against the PEM certificates in caFile,
// when caFile is set, else in plaintext (a CA on loopback); with the bearer
// token of tokenFile when it is set. The file names are for messages only.
func DialOptions(tokenFile, caFile string) ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", caFile)
		}
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool})
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if tokenFile != "" {
		token, err := Read(tokenFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(Bearer(token)))
	}
	return opts, nil
}
