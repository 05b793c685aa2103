package x509enc

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"slices"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

const testURL = "http://shomei.example/crl/sign-g1-13221.crl"

func testDirectoryName(t *testing.T) []byte {
	t.Helper()
	der, err := DN{{"C", "JP"}, {"O", "JPKI"}, {"OU", "CRL Distribution Points"}, {"OU", "東京都"}, {"CN", "清瀬市 CRLDP"}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestDistributionPointRoundTrip: what the encoders write the parsers
// read back, and crypto/x509 finds the URL in the certificate extension.
func TestDistributionPointRoundTrip(t *testing.T) {
	name := testDirectoryName(t)
	dp, err := MarshalCRLDistributionPoints(testURL, name)
	if err != nil {
		t.Fatal(err)
	}
	uri, dir, err := ParseCRLDistributionPoints(dp)
	if err != nil || uri != testURL || string(dir) != string(name) {
		t.Fatalf("ParseCRLDistributionPoints = %q, %x, %v", uri, dir, err)
	}
	idp, err := MarshalIssuingDistributionPoint(testURL, name)
	if err != nil {
		t.Fatal(err)
	}
	uri, dir, err = ParseIssuingDistributionPoint(idp)
	if err != nil || uri != testURL || string(dir) != string(name) {
		t.Fatalf("ParseIssuingDistributionPoint = %q, %x, %v", uri, dir, err)
	}
	if _, _, err := ParseCRLDistributionPoints(idp); err == nil {
		t.Error("an issuingDistributionPoint parses as cRLDistributionPoints")
	}
	if _, _, err := ParseIssuingDistributionPoint(dp); err == nil {
		t.Error("a cRLDistributionPoints parses as an issuingDistributionPoint")
	}
}

// TestCRLDistributionPointsForGo: crypto/x509 reads the URL of the
// extension (it stops at the first name that is not a URI).
func TestCRLDistributionPointsForGo(t *testing.T) {
	key := testKeys()["p256"]
	ca := selfSigned(t, key, x509.ECDSAWithSHA256)
	dp, err := MarshalCRLDistributionPoints(testURL, testDirectoryName(t))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := *ca
	tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 31}, Value: dp}}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.CRLDistributionPoints, []string{testURL}) {
		t.Errorf("crypto/x509 reads %v", cert.CRLDistributionPoints)
	}
}

// TestDistributionPointErrors: each malformed shape gives its error.
func TestDistributionPointErrors(t *testing.T) {
	name := testDirectoryName(t)
	seq := func(f func(b *cryptobyte.Builder)) []byte {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, f)
		return b.BytesOrPanic()
	}
	point := func(reasons bool, names ...func(b *cryptobyte.Builder)) func(b *cryptobyte.Builder) {
		return func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(tagDistributionPoint, func(b *cryptobyte.Builder) {
					b.AddASN1(tagFullName, func(b *cryptobyte.Builder) {
						for _, n := range names {
							n(b)
						}
					})
				})
				if reasons {
					b.AddBytes([]byte{0x81, 0x02, 0x06, 0x40})
				}
			})
		}
	}
	uri := func(b *cryptobyte.Builder) {
		b.AddASN1(TagURI, func(b *cryptobyte.Builder) { b.AddBytes([]byte(testURL)) })
	}
	dir := func(b *cryptobyte.Builder) {
		b.AddASN1(TagDirectoryName, func(b *cryptobyte.Builder) { b.AddBytes(name) })
	}
	for _, tc := range []struct {
		name  string
		value []byte
		want  error
	}{
		{"as written", seq(point(false, uri, dir)), nil},
		{"not DER", []byte{0x30, 0x05}, ErrDPMalformed},
		{"empty", seq(func(*cryptobyte.Builder) {}), ErrDPMalformed},
		{"two points", seq(func(b *cryptobyte.Builder) { point(false, uri, dir)(b); point(false, uri, dir)(b) }), ErrDPNotOne},
		{"reasons", seq(point(true, uri, dir)), ErrDPMoreFields},
		{"directoryName first", seq(point(false, dir, uri)), ErrDPNames},
		{"URL only", seq(point(false, uri)), ErrDPNames},
		{"no name", seq(func(b *cryptobyte.Builder) { b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {}) }), ErrDPNoName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ParseCRLDistributionPoints(tc.value); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}

	idp := func(user []byte, extra bool, names ...func(b *cryptobyte.Builder)) []byte {
		return seq(func(b *cryptobyte.Builder) {
			b.AddASN1(tagDistributionPoint, func(b *cryptobyte.Builder) {
				b.AddASN1(tagFullName, func(b *cryptobyte.Builder) {
					for _, n := range names {
						n(b)
					}
				})
			})
			if user != nil {
				b.AddASN1(tagOnlyContainsUserCerts, func(b *cryptobyte.Builder) { b.AddBytes(user) })
			}
			if extra {
				b.AddBytes([]byte{0x84, 0x01, 0xff}) // indirectCRL
			}
		})
	}
	for _, tc := range []struct {
		name  string
		value []byte
		want  error
	}{
		{"as written", idp([]byte{0xff}, false, uri, dir), nil},
		{"no onlyContainsUserCerts", idp(nil, false, uri, dir), ErrIDPNotUserCerts},
		{"onlyContainsUserCerts FALSE", idp([]byte{0}, false, uri, dir), ErrIDPNotUserCerts},
		{"indirectCRL", idp([]byte{0xff}, true, uri, dir), ErrIDPMoreFields},
		{"names reversed", idp([]byte{0xff}, false, dir, uri), ErrDPNames},
		{"no distribution point", seq(func(b *cryptobyte.Builder) { b.AddBytes([]byte{0x81, 0x01, 0xff}) }), ErrDPNoName},
		{"trailing data", append(idp([]byte{0xff}, false, uri, dir), 0), ErrDPMalformed},
	} {
		t.Run("IDP "+tc.name, func(t *testing.T) {
			if _, _, err := ParseIssuingDistributionPoint(tc.value); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}
