package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// CardCSR is the PKCS#10 request a card's chip makes for key: subject CN
// "card", nothing personal (the CA takes the holder's data from the
// request's other fields).
func CardCSR(key crypto.Signer) ([]byte, error) {
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "card"}}, key)
}

// NewCardCSR makes a fresh ECDSA P-256 card key, cheap to make in numbers,
// and its request (CardCSR). The CA takes P-256 card keys when configured
// with certificates.allow_ecdsa_p256.
func NewCardCSR() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return CardCSR(key)
}

// Kiyose is the municipality of the tests' and benchmarks' requests:
// 清瀬市, 東京都, local government code 13221.
func Kiyose() *cav1.Municipality {
	return &cav1.Municipality{Code: "13221", PrefectureRomaji: "Tokyo-to", MunicipalityRomaji: "Kiyose-shi",
		Prefecture: "東京都", Municipality: "清瀬市"}
}
