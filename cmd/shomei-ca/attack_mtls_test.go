package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// TestAttackMTLSIdentity: issue 9 item 11. With mutual TLS, a
// municipality's client certificate plus another municipality's token
// used to act as the other. Now the certificate must name the client whose
// token comes with it (clients[].tls_name, default the client's name, as
// subject CN or a DNS name), and shomeictl presents a client certificate.
func TestAttackMTLSIdentity(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	writeServerCert(t, path("server.pem"), path("server-key.pem"))
	caKey, caCert := writeClientCA(t, path("clients-ca.pem"))
	writeClientCert(t, caKey, caCert, path("kiyose.pem"), path("kiyose-key.pem"), "kiyose", nil)
	writeClientCert(t, caKey, caCert, path("kurume.pem"), path("kurume-key.pem"), "Higashikurume City", []string{"kurume.municipal.example"})
	writeToken(t, dir, "kiyose.token", kiyoseToken)
	writeToken(t, dir, "kurume.token", kurumeToken)
	writeClientCert(t, caKey, caCert, path("ocsp1.pem"), path("ocsp1-key.pem"), "ocsp1", nil)
	writeToken(t, dir, "replica.token", "replica-mtls-token-0123456789")
	caConfig := writeConfig(t, dir, "e2e-mtls", `  tls:
    cert_file: server.pem
    key_file: server-key.pem
    client_ca_file: clients-ca.pem
clients:
  - name: kiyose
    token_file: kiyose.token
    municipalities: ["13221"]
  - name: higashikurume
    token_file: kurume.token
    municipalities: ["13222"]
    tls_name: kurume.municipal.example
  - name: ocsp1
    token_file: replica.token
    replica: true
`)
	p := startCA(t, caConfig)
	ctx := context.Background()
	dial := func(cert, token string) cav1.CertificateAuthorityClient {
		t.Helper()
		opts, err := clienttoken.Dial{TokenFile: path(token), CAFile: path("server.pem"),
			CertFile: path(cert + ".pem"), KeyFile: path(cert + "-key.pem")}.Options()
		if err != nil {
			t.Fatal(err)
		}
		conn, err := grpc.NewClient(p.grpc, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return cav1.NewCertificateAuthorityClient(conn)
	}
	list := func(cl cav1.CertificateAuthorityClient, municipality string) error {
		_, err := cl.ListCertificates(ctx, &cav1.ListCertificatesRequest{MunicipalityCode: municipality, HolderId: "MTLS-1"})
		return err
	}

	kiyoseCA := dial("kiyose", "kiyose.token")
	if _, err := kiyoseCA.Issue(ctx, &cav1.IssueRequest{
		Municipality: kiyose, Holder: holder("MTLS-1"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, rsaKey(t))}},
	}); err != nil {
		t.Fatalf("Issue with kiyose's certificate and token: %v", err)
	}
	if err := list(dial("kurume", "kurume.token"), "13222"); err != nil {
		t.Errorf("higashikurume's certificate (DNS name = tls_name) and token: %v", err)
	}
	// The attack: kiyose's certificate with higashikurume's token.
	if err := list(dial("kiyose", "kurume.token"), "13222"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("kiyose's certificate with higashikurume's token: %v, want Unauthenticated", err)
	}
	if err := list(dial("kurume", "kiyose.token"), "13221"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("higashikurume's certificate with kiyose's token: %v, want Unauthenticated", err)
	}

	// shomei-ocsp presents its client certificate (ca.tls_cert_file) and
	// syncs; the replica's token with a municipality's certificate is
	// refused.
	replicaOpts, err := clienttoken.Dial{TokenFile: path("replica.token"), CAFile: path("server.pem"),
		CertFile: path("kiyose.pem"), KeyFile: path("kiyose-key.pem")}.Options()
	if err != nil {
		t.Fatal(err)
	}
	rconn, err := grpc.NewClient(p.grpc, replicaOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer rconn.Close()
	if _, err := cav1.NewReplicationClient(rconn).ListIssuers(ctx, &cav1.ListIssuersRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("the replica's token with kiyose's certificate: %v, want Unauthenticated", err)
	}
	token, err := testenv.Token(testDir, "e2e-mtls")
	if err != nil {
		t.Fatal(err)
	}
	replicaConfig := path("replica.yaml")
	writeReplicaConfig := func(caAddr string) {
		t.Helper()
		if err := os.WriteFile(replicaConfig, []byte(testenv.Replica{Name: "r1", CAAddress: caAddr,
			CA:  "  token_file: replica.token\n  tls_ca_file: server.pem\n  tls_cert_file: ocsp1.pem\n  tls_key_file: ocsp1-key.pem\n",
			HSM: token}.YAML()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The operator enrols the replica's responder keys (R-R6), then
	// restarts the CA with them.
	writeReplicaConfig(p.grpc)
	pins := printResponderKeys(t, replicaConfig)
	p.stop(t)
	conf, err := os.ReadFile(caConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caConfig, []byte(strings.Replace(string(conf), "    replica: true\n",
		"    replica: true\n    responder_keys: ["+strings.Join(pins, ", ")+"]\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	p = startCA(t, caConfig)
	writeReplicaConfig(p.grpc)
	rp, addrs := startBinary(t, "shomei-ocsp", replicaConfig, testenv.ReplicaListening)
	waitSynced(t, rp, addrs[0], 20*time.Second, "shomei-ocsp over mutual TLS")
	rp.stop(t)

	// TLS 1.3 when the client offers it; nothing below 1.2.
	pair, err := tls.LoadX509KeyPair(path("kiyose.pem"), path("kiyose-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, path("server.pem")))
	conn, err := tls.Dial("tcp", p.grpc, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(v))
	}
	conn.Close()
	if conn, err := tls.Dial("tcp", p.grpc, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair},
		MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10, NextProtos: []string{"h2"}}); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	// shomeictl events import presents a client certificate; the wrong
	// one for its token is refused.
	effective := time.Now().Add(time.Second).In(time.FixedZone("JST", 9*3600)).Format(time.RFC3339)
	feed := path("feed.jsonl")
	if err := os.WriteFile(feed, []byte(`{"event_id":"mtls-loss-1","municipality_code":"13221","holder_id":"MTLS-1","kind":"loss_report","effective_time":"`+effective+`"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shomeictl := func(cert, token string) (string, error) {
		cmd := exec.Command(filepath.Join(binDir, "shomeictl"), "events", "import", "--addr", p.grpc, "--ca-cert", path("server.pem"),
			"--client-cert", path(cert+".pem"), "--client-key", path(cert+"-key.pem"), "--token-file", path(token), feed)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := shomeictl("kiyose", "kurume.token"); err == nil || !strings.Contains(out, "events applied          0") {
		t.Errorf("events import with kiyose's certificate and higashikurume's token: %v\n%s", err, out)
	}
	if out, err := shomeictl("kiyose", "kiyose.token"); err != nil || !strings.Contains(out, "events applied          1") {
		t.Errorf("events import with kiyose's certificate and token: %v\n%s", err, out)
	}
}

// writeClientCA writes a self-signed CA for client certificates.
func writeClientCA(t *testing.T, certFile string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "municipal clients CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	writeCertPEM(t, certFile, der)
	return key, cert
}

// writeClientCert writes a client certificate named cn (and dnsNames)
// issued by the CA, and its key.
func writeClientCert(t *testing.T, caKey *ecdsa.PrivateKey, ca *x509.Certificate, certFile, keyFile, cn string, dnsNames []string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: dnsNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	writeCertAndKey(t, certFile, keyFile, der, key)
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
