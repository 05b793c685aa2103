package profile_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/internal/testenv"
)

const (
	sign = storev1.Profile_PROFILE_SIGN
	auth = storev1.Profile_PROFILE_AUTH
)

var jst = time.FixedZone("JST", 9*60*60)

// keys are generated once per test binary: RSA key generation dominates
// the run time otherwise.
var keys = sync.OnceValue(func() map[string]crypto.Signer {
	k := map[string]crypto.Signer{}
	for _, name := range []string{"ca", "holder-sign", "holder-auth", "other-ca"} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		k[name] = key
	}
	for name, curve := range map[string]elliptic.Curve{"ca-p256": elliptic.P256(), "ca-p384": elliptic.P384(), "holder-p256": elliptic.P256()} {
		key, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			panic(err)
		}
		k[name] = key
	}
	return k
})

func key(name string) crypto.Signer { return keys()[name] }

// newIssuer makes a self-signed software issuer for p with key.
func newIssuer(t testing.TB, p storev1.Profile, key crypto.Signer) *x509.Certificate {
	t.Helper()
	raw, err := issuer.DefaultDN(p).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := testenv.SelfSigned(testenv.IssuerTemplate(raw, nil), key)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func config() profile.Config {
	return profile.Config{
		OCSPURL: "http://ocsp.shomei.example/",
		CPSURL:  "https://www.shomei.example/cps/",
	}
}

const (
	testName    = "渡邊　太郎"
	testAddress = "東京都清瀬市中里五丁目８４２番地"
)

// signRequest is a SIGN request for a holder of Kiyose-shi, Tokyo.
func signRequest() profile.Request {
	return profile.Request{
		Profile:   sign,
		Serial:    testenv.Serial(),
		NotBefore: time.Date(2026, 1, 10, 10, 30, 0, 0, jst),
		NotAfter:  time.Date(2030, 12, 31, 23, 59, 59, 0, jst),
		PublicKey: key("holder-sign").Public(),
		SubjectCN: "13221SIGN0123456789ABCDEF",
		CRL: profile.CRLDistributionPoint{
			Name: profile.CRLDistributionPointName(sign, "東京都", "清瀬市", 0),
			URL:  "http://crl.shomei.example/sign/g1/13221.crl",
		},
		PrefectureRomaji:   "Tokyo-to",
		MunicipalityRomaji: "Kiyose-shi",
		Name:               testName,
		NameMap:            "01000",
		DateOfBirth:        "319801231",
		Sex:                "1",
		Address:            testAddress,
		AddressMap:         strings.Repeat("0", len([]rune(testAddress))),
	}
}

// authRequest is the AUTH request of the same holder.
func authRequest() profile.Request {
	return profile.Request{
		Profile:   auth,
		Serial:    testenv.Serial(),
		NotBefore: time.Date(2026, 1, 10, 10, 30, 0, 0, jst),
		NotAfter:  time.Date(2030, 12, 31, 23, 59, 59, 0, jst),
		PublicKey: key("holder-auth").Public(),
		SubjectCN: "13221AUTH0123456789ABCDEF",
		CRL: profile.CRLDistributionPoint{
			Name: profile.CRLDistributionPointName(auth, "東京都", "清瀬市", 0),
			URL:  "http://crl.shomei.example/auth/g1/13221.crl",
		},
	}
}

// issue builds and signs the certificate of req with the issuer's key.
func issue(t testing.TB, issuer *x509.Certificate, signer crypto.Signer, cfg profile.Config, req profile.Request) (*x509.Certificate, []byte) {
	t.Helper()
	tmpl, err := profile.Template(issuer, cfg, req)
	if err != nil {
		t.Fatalf("Template: %v", err)
	}
	return create(t, tmpl, issuer, signer)
}

func create(t testing.TB, tmpl, issuer *x509.Certificate, signer crypto.Signer) (*x509.Certificate, []byte) {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, tmpl.PublicKey, signer)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	return cert, der
}
