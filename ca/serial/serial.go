package serial

import (
	"crypto/rand"
	"encoding/base32"
	"math/big"
)

// New returns a fresh serial number: positive, 127 random bits, 16 octets.
func New() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b[0] = b[0]&0x7f | 0x40 // positive, and always 16 octets long
	return new(big.Int).SetBytes(b), nil
}

// idAlphabet is base32 without the letters easily misread (no padding).
var idEncoding = base32.NewEncoding("ABCDEFGHJKLMNPQRSTUVWXYZ23456789").WithPadding(base32.NoPadding)

// OpaqueID returns a random opaque identifier (R-P4) prefixed by prefix,
// e.g. the 5-digit municipality code: prefix followed by 20 characters
// (100 random bits) of an unambiguous alphabet.
func OpaqueID(prefix string) (string, error) {
	b := make([]byte, 13)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + idEncoding.EncodeToString(b)[:20], nil
}

// Code returns a one-time code of n characters from the unambiguous
// alphabet (5 bits each), for inquiry letters (R-A2).
func Code(n int) (string, error) {
	b := make([]byte, (n*5+7)/8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return idEncoding.EncodeToString(b)[:n], nil
}
