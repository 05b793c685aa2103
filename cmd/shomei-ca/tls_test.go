package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/clienttoken"
)

// TestGRPCTLS: with server.tls the API speaks only TLS. A client that
// verifies the CA's certificate (clienttoken.DialOptions, as shomeictl and
// shomei-ocsp use it, and grpcurl, a client nobody here wrote) issues and
// lists; a plaintext client gets nothing, and neither does a client that
// does not trust the certificate.
func TestGRPCTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	writeServerCert(t, certFile, keyFile)
	if err := os.WriteFile(filepath.Join(dir, "kiyose.token"), []byte("tls-test-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := writeConfig(t, dir, "e2e-tls", `  tls:
    cert_file: server.pem
    key_file: server-key.pem
clients:
  - name: kiyose
    token_file: kiyose.token
    municipalities: ["13221"]
`)
	p := startCA(t, conf)
	if !strings.Contains(p.Log.String(), "grpc_tls=true") {
		t.Errorf("the CA does not say it listens with TLS:\n%s", p.Log.String())
	}
	ctx := context.Background()

	opts, err := clienttoken.DialOptions(filepath.Join(dir, "kiyose.token"), certFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.grpc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out, err := cav1.NewCertificateAuthorityClient(conn).Issue(ctx, &cav1.IssueRequest{
		Municipality: kiyose, Holder: holder("TLS-1"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, rsaKey(t))}},
	})
	if err != nil {
		t.Fatalf("Issue over TLS: %v", err)
	}

	// grpcurl over TLS, trusting the server certificate.
	cmd := exec.Command("go", "tool", "-modfile=../../internal/tools/go.mod", "grpcurl", "-cacert", certFile,
		"-H", "authorization: Bearer tls-test-token-0123456789", "-d", `{"municipality_code":"13221","holder_id":"TLS-1"}`,
		p.grpc, "shomei.ca.v1.CertificateAuthority/ListCertificates")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	listed, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(listed), out.Certificates[0].Serial) {
		t.Errorf("grpcurl -cacert ListCertificates: %v\n%s", err, listed)
	}

	refused := func(name string, opts ...grpc.DialOption) {
		t.Helper()
		conn, err := grpc.NewClient(p.grpc, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = cav1.NewCertificateAuthorityClient(conn).ListCertificates(ctx, &cav1.ListCertificatesRequest{MunicipalityCode: "13221", HolderId: "TLS-1"})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s: %v, want Unavailable", name, err)
		}
	}
	refused("plaintext", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(clienttoken.Bearer("tls-test-token-0123456789")))
	otherCA := filepath.Join(t.TempDir(), "other.pem")
	writeServerCert(t, otherCA, otherCA+".key")
	untrusting, err := clienttoken.DialOptions(filepath.Join(dir, "kiyose.token"), otherCA)
	if err != nil {
		t.Fatal(err)
	}
	refused("TLS, another certificate trusted", untrusting...)
}

// writeServerCert writes a self-signed ECDSA P-256 certificate for
// 127.0.0.1 and its key.
func writeServerCert(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "shomei-ca test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	writeCertAndKey(t, certFile, keyFile, der, key)
}

// writeCertAndKey writes a certificate and its private key as PEM files
// that only their owner may read.
func writeCertAndKey(t *testing.T, certFile, keyFile string, der []byte, key crypto.PrivateKey) {
	t.Helper()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeCertPEM(t, certFile, der)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeCertPEM writes a certificate as a PEM file that only its owner may
// read, and returns its path.
func writeCertPEM(t testing.TB, path string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
