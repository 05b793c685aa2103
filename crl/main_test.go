package crl_test

import (
	"context"
	"crypto/rand"
	"os"
	"sync"
	"testing"

	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/open"
)

// tokenLabel is the throwaway SoftHSM2 token of the tests that sign with a
// key in an HSM, as the CA does (the other tests use software keys).
const tokenLabel = "crl-test"

// TestMain makes the SoftHSM2 token before any test runs: SoftHSM2 reads
// its configuration once per process.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "crl tests", []string{tokenLabel}, nil))
}

// hsmFixture is an RSA-2048 SIGN issuer whose key was generated in the
// SoftHSM2 token, made once per test binary (the token stays open until
// the process ends).
var hsmFixture = sync.OnceValues(func() (*fixture, error) {
	tok, err := open.TokenPool(tokenLabel, 2)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	signer, err := tok.GenerateKey(context.Background(), hsm.KeyRef{Label: "crl-issuer", ID: id}, hsm.RSA2048)
	if err != nil {
		return nil, err
	}
	issuer, err := newIssuer(issuer.DefaultDN(sign), signer)
	if err != nil {
		return nil, err
	}
	return &fixture{
		name: "softhsm-rsa-2048", profile: sign, key: signer, issuer: issuer,
		partition: partition(sign, "sign", "13221", "清瀬市"),
		other:     partition(sign, "sign", "13222", "東久留米市"),
	}, nil
})

// hsmIssuer is hsmFixture, failing t when the token cannot be used.
func hsmIssuer(t testing.TB) *fixture {
	t.Helper()
	f, err := hsmFixture()
	if err != nil {
		t.Fatalf("SoftHSM2 issuer: %v", err)
	}
	return f
}
