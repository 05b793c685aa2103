package ocsp

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
)

// KeyPin is how an operator names a responder key when enrolling it for a
// replica (R-R6): "sha256:" and the hex SHA-256 of the key's
// SubjectPublicKeyInfo DER, as `openssl pkey -pubin -outform DER | sha256sum`
// gives it.
func KeyPin(pub crypto.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(spki)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ParseKeyPin reads a pin as KeyPin writes it (the "sha256:" prefix may be
// left out).
func ParseKeyPin(s string) ([sha256.Size]byte, error) {
	var pin [sha256.Size]byte
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "sha256:"))
	if err != nil || len(b) != sha256.Size {
		return pin, fmt.Errorf("key pin %q: want sha256: and 64 hex digits (SHA-256 of the SubjectPublicKeyInfo DER)", s)
	}
	copy(pin[:], b)
	return pin, nil
}
