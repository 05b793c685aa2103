package x509enc

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"testing"
)

// TestKeyIdentifiers: method (1) of RFC 5280 §4.2.1.2, for every key type,
// and the authorityKeyIdentifier as encoding/asn1 writes it.
func TestKeyIdentifiers(t *testing.T) {
	for name, key := range testKeys() {
		spki, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			Algorithm asn1.RawValue
			PublicKey asn1.BitString
		}
		if _, err := asn1.Unmarshal(spki, &info); err != nil {
			t.Fatal(err)
		}
		want := sha1.Sum(info.PublicKey.Bytes)
		bits, err := PublicKeyBits(spki)
		if err != nil || !bytes.Equal(bits, info.PublicKey.Bytes) {
			t.Errorf("%s: PublicKeyBits = %x, %v", name, bits, err)
		}
		if ski, err := SubjectKeyIDOf(key.Public()); err != nil || !bytes.Equal(ski, want[:]) {
			t.Errorf("%s: SubjectKeyIDOf = %x, %v; want %x", name, ski, err, want)
		}
		if v, _ := asn1.Marshal(want[:]); !bytes.Equal(MarshalSubjectKeyID(want[:]), v) {
			t.Errorf("%s: MarshalSubjectKeyID %x, encoding/asn1 %x", name, MarshalSubjectKeyID(want[:]), v)
		}
		aki, err := MarshalAuthorityKeyID(want[:])
		v, _ := asn1.Marshal(struct {
			ID []byte `asn1:"optional,tag:0"`
		}{want[:]})
		if err != nil || !bytes.Equal(aki, v) {
			t.Errorf("%s: MarshalAuthorityKeyID %x, encoding/asn1 %x", name, aki, v)
		}
		if kid, only, ok := ParseAuthorityKeyID(aki); !ok || !only || !bytes.Equal(kid, want[:]) {
			t.Errorf("%s: ParseAuthorityKeyID = %x, %v, %v", name, kid, only, ok)
		}
	}
	if _, err := SubjectKeyID([]byte{0x30, 0x00}); err == nil {
		t.Error("SubjectKeyID of an empty SEQUENCE: no error")
	}
	withSerial := []byte{0x30, 0x07, 0x80, 0x01, 0x01, 0x82, 0x02, 0x01, 0x01}
	if _, only, ok := ParseAuthorityKeyID(withSerial); !ok || only {
		t.Errorf("ParseAuthorityKeyID with a serial: only %v, ok %v", only, ok)
	}
}
