package replica

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// RemoteCertifier has the CA certify the replica's responder keys over
// gRPC (it satisfies ocsp/responders.Certifier). The key proves possession
// by signing a CSR in the HSM; the CA names the responder and bounds the
// validity.
type RemoteCertifier struct {
	Client cav1.ReplicationClient
}

// CertifyResponder implements ocsp/responders.Certifier.
func (c RemoteCertifier) CertifyResponder(ctx context.Context, issuer string, responder crypto.Signer, notBefore, notAfter time.Time) ([]byte, error) {
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "OCSP Responder"}}, responder)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.Client.CertifyResponder(ctx, &cav1.CertifyResponderRequest{
		Issuer: issuer, Csr: csr, NotBefore: timestamppb.New(notBefore), NotAfter: timestamppb.New(notAfter),
	})
	if err != nil {
		return nil, err
	}
	return resp.CertificateDer, nil
}
