package ocsp_test

import (
	"bytes"
	"crypto"
	"encoding/asn1"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/ocsp"
)

var (
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidOther  = asn1.ObjectIdentifier{1, 2, 3, 4}
	explicit  = func(n int) cbasn1.Tag { return cbasn1.Tag(n).ContextSpecific().Constructed() }
)

// der runs a cryptobyte builder.
func der(t testing.TB, f func(b *cryptobyte.Builder)) []byte {
	t.Helper()
	b := cryptobyte.NewBuilder(nil)
	f(b)
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// certIDSpec describes a CertID to encode; zero values make a valid one.
type certIDSpec struct {
	alg      asn1.ObjectIdentifier
	noParams bool
	params   []byte // raw parameters instead of NULL
	nameLen  int
	serial   *big.Int
}

func (c certIDSpec) der(t testing.TB) []byte {
	alg, size := c.alg, 20
	if alg == nil {
		alg = oidSHA1
	}
	if alg.Equal(oidSHA256) {
		size = 32
	}
	nameLen := size
	if c.nameLen != 0 {
		nameLen = c.nameLen
	}
	serial := c.serial
	if serial == nil {
		serial = big.NewInt(0x1001)
	}
	return der(t, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(alg)
				switch {
				case c.params != nil:
					b.AddBytes(c.params)
				case !c.noParams:
					b.AddASN1NULL()
				}
			})
			b.AddASN1OctetString(bytes.Repeat([]byte{1}, nameLen))
			b.AddASN1OctetString(bytes.Repeat([]byte{2}, size))
			b.AddASN1BigInt(serial)
		})
	})
}

// ext encodes an Extension; critical nil leaves the field out.
func ext(t testing.TB, oid asn1.ObjectIdentifier, critical *bool, value []byte) []byte {
	return der(t, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			if critical != nil {
				b.AddASN1Boolean(*critical)
			}
			b.AddASN1OctetString(value)
		})
	})
}

func octets(t testing.TB, v []byte) []byte {
	return der(t, func(b *cryptobyte.Builder) { b.AddASN1OctetString(v) })
}

// reqSpec describes an OCSPRequest to encode.
type reqSpec struct {
	version    *int64
	requestor  bool
	certIDs    [][]byte
	singleExts [][]byte // on the first Request
	exts       [][]byte
	emptyExts  bool
	sig        []byte // content of optionalSignature
}

func (r reqSpec) der(t testing.TB) []byte {
	return der(t, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				if r.version != nil {
					b.AddASN1(explicit(0), func(b *cryptobyte.Builder) { b.AddASN1Int64(*r.version) })
				}
				if r.requestor {
					b.AddASN1(explicit(1), func(b *cryptobyte.Builder) {
						// dNSName [2] IMPLICIT IA5String
						b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte("rp.example")) })
					})
				}
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for i, id := range r.certIDs {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(id)
							if i == 0 && r.singleExts != nil {
								b.AddASN1(explicit(0), func(b *cryptobyte.Builder) {
									b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
										for _, e := range r.singleExts {
											b.AddBytes(e)
										}
									})
								})
							}
						})
					}
				})
				if r.exts != nil || r.emptyExts {
					b.AddASN1(explicit(2), func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							for _, e := range r.exts {
								b.AddBytes(e)
							}
						})
					})
				}
			})
			if r.sig != nil {
				b.AddASN1(explicit(0), func(b *cryptobyte.Builder) { b.AddBytes(r.sig) })
			}
		})
	})
}

func TestParseRequest(t *testing.T) {
	yes, no := true, false
	one := int64(1)
	zero := int64(0)
	id := certIDSpec{}.der(t)
	nonce := ext(t, oidNonce, nil, octets(t, []byte("0123456789abcdef")))
	signature := der(t, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidOther) })
			b.AddASN1BitString([]byte{1, 2, 3})
		})
	})
	tests := []struct {
		name   string
		der    []byte
		field  string // in the error; "" for success
		nonce  string
		ids    int
		signed bool
		hash   crypto.Hash
		serial int64
	}{
		{name: "minimal", der: reqSpec{certIDs: [][]byte{id}}.der(t), ids: 1, hash: crypto.SHA1, serial: 0x1001},
		{name: "SHA-256 without parameters", der: reqSpec{certIDs: [][]byte{certIDSpec{alg: oidSHA256, noParams: true}.der(t)}}.der(t), ids: 1, hash: crypto.SHA256, serial: 0x1001},
		{name: "nonce", der: reqSpec{certIDs: [][]byte{id}, exts: [][]byte{nonce}}.der(t), ids: 1, nonce: "0123456789abcdef", hash: crypto.SHA1, serial: 0x1001},
		{name: "critical nonce", der: reqSpec{certIDs: [][]byte{id}, exts: [][]byte{ext(t, oidNonce, &yes, octets(t, []byte("x")))}}.der(t), ids: 1, nonce: "x", hash: crypto.SHA1, serial: 0x1001},
		{name: "explicit v1", der: reqSpec{version: &zero, certIDs: [][]byte{id}}.der(t), ids: 1, hash: crypto.SHA1, serial: 0x1001},
		{name: "requestorName", der: reqSpec{requestor: true, certIDs: [][]byte{id}}.der(t), ids: 1, hash: crypto.SHA1, serial: 0x1001},
		{name: "signed", der: reqSpec{certIDs: [][]byte{id}, sig: signature}.der(t), ids: 1, signed: true, hash: crypto.SHA1, serial: 0x1001},
		{name: "unknown non-critical extensions", der: reqSpec{certIDs: [][]byte{id}, exts: [][]byte{ext(t, oidOther, &no, []byte{5, 0})}, singleExts: [][]byte{ext(t, oidOther, nil, nil)}}.der(t), ids: 1, hash: crypto.SHA1, serial: 0x1001},
		{name: "two CertIDs", der: reqSpec{certIDs: [][]byte{id, certIDSpec{alg: oidSHA256, serial: big.NewInt(7)}.der(t)}}.der(t), ids: 2, hash: crypto.SHA1, serial: 0x1001},
		{name: "negative serial", der: reqSpec{certIDs: [][]byte{certIDSpec{serial: big.NewInt(-3)}.der(t)}}.der(t), ids: 1, hash: crypto.SHA1, serial: -3},

		{name: "empty", der: nil, field: "OCSPRequest"},
		{name: "not DER", der: []byte("hello"), field: "OCSPRequest"},
		{name: "trailing data", der: append(reqSpec{certIDs: [][]byte{id}}.der(t), 0, 0), field: "trailing data"},
		{name: "long-form length for a short value", der: append([]byte{0x30, 0x81, 0x03}, []byte{0x30, 0x01, 0x00}...), field: "OCSPRequest"},
		{name: "v2", der: reqSpec{version: &one, certIDs: [][]byte{id}}.der(t), field: "tbsRequest.version"},
		{name: "no CertID", der: reqSpec{}.der(t), field: "tbsRequest.requestList: empty"},
		{name: "SHA-384", der: reqSpec{certIDs: [][]byte{certIDSpec{alg: oidSHA384}.der(t)}}.der(t), field: "requestList[0].reqCert.hashAlgorithm"},
		{name: "hash parameters", der: reqSpec{certIDs: [][]byte{certIDSpec{params: octets(t, nil)}.der(t)}}.der(t), field: "requestList[0].reqCert.hashAlgorithm"},
		{name: "short name hash", der: reqSpec{certIDs: [][]byte{certIDSpec{nameLen: 19}.der(t)}}.der(t), field: "requestList[0].reqCert.issuerNameHash"},
		{name: "second CertID bad", der: reqSpec{certIDs: [][]byte{id, certIDSpec{alg: oidSHA256, nameLen: 20}.der(t)}}.der(t), field: "requestList[1].reqCert.issuerNameHash"},
		{name: "empty nonce", der: reqSpec{certIDs: [][]byte{id}, exts: [][]byte{ext(t, oidNonce, nil, octets(t, []byte{}))}}.der(t), field: "nonce: 0 octets"},
		{name: "33-octet nonce", der: reqSpec{certIDs: [][]byte{id}, exts: [][]byte{ext(t, oidNonce, nil, octets(t, make([]byte, 33)))}}.der(t), field: "nonce: 33 octets"},
		{name: "nonce not an OCTET STRING", der: reqSpec{certIDs: [][]byte{id}, exts: [][]byte{ext(t, oidNonce, nil, []byte("0123456789abcdef"))}}.der(t), field: "nonce"},
		{name: "two nonces", der: reqSpec{certIDs: [][]byte{id}, exts: [][]byte{nonce, nonce}}.der(t), field: "appears twice"},
		{name: "empty extensions", der: reqSpec{certIDs: [][]byte{id}, emptyExts: true}.der(t), field: "requestExtensions: empty"},
		{name: "critical unknown extension", der: reqSpec{certIDs: [][]byte{id}, exts: [][]byte{ext(t, oidOther, &yes, nil)}}.der(t), field: "critical extension 1.2.3.4"},
		{name: "critical unknown single extension", der: reqSpec{certIDs: [][]byte{id}, singleExts: [][]byte{ext(t, oidOther, &yes, nil)}}.der(t), field: "requestList[0].singleRequestExtensions"},
		{name: "bad signature", der: reqSpec{certIDs: [][]byte{id}, sig: []byte{5, 0}}.der(t), field: "optionalSignature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ocsp.ParseRequest(tc.der)
			if tc.field != "" {
				if !errors.Is(err, ocsp.ErrMalformed) || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("error %v, want ErrMalformed about %q", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(req.CertIDs) != tc.ids || string(req.Nonce) != tc.nonce || req.Signed != tc.signed {
				t.Errorf("%d CertIDs, nonce %q, signed %v", len(req.CertIDs), req.Nonce, req.Signed)
			}
			if got := req.CertIDs[0]; got.HashAlgorithm != tc.hash || got.SerialNumber.Int64() != tc.serial {
				t.Errorf("CertID %v %v", got.HashAlgorithm, got.SerialNumber)
			}
		})
	}
}

// TestParseOpenSSLRequests parses the requests openssl made (testdata, also
// the fuzz seeds).
func TestParseOpenSSLRequests(t *testing.T) {
	tests := []struct {
		file   string
		ids    int
		hashes []crypto.Hash
		nonce  bool
		signed bool
	}{
		{file: "openssl-sha1-nonce.der", ids: 1, hashes: []crypto.Hash{crypto.SHA1}, nonce: true},
		{file: "openssl-sha256-nonce.der", ids: 1, hashes: []crypto.Hash{crypto.SHA256}, nonce: true},
		{file: "openssl-sha1-no-nonce.der", ids: 1, hashes: []crypto.Hash{crypto.SHA1}},
		{file: "openssl-two-certs.der", ids: 2, hashes: []crypto.Hash{crypto.SHA1, crypto.SHA256}, nonce: true},
		{file: "openssl-signed.der", ids: 1, hashes: []crypto.Hash{crypto.SHA1}, nonce: true, signed: true},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			req, err := ocsp.ParseRequest(raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(req.CertIDs) != tc.ids || (len(req.Nonce) == 16) != tc.nonce || req.Signed != tc.signed {
				t.Errorf("%d CertIDs, nonce %x, signed %v", len(req.CertIDs), req.Nonce, req.Signed)
			}
			for i, h := range tc.hashes {
				if req.CertIDs[i].HashAlgorithm != h {
					t.Errorf("CertID %d: %v, want %v", i, req.CertIDs[i].HashAlgorithm, h)
				}
			}
			if !tc.signed {
				// openssl's unsigned requests are what Marshal makes.
				again, err := req.Marshal()
				if err != nil || !bytes.Equal(again, raw) {
					t.Errorf("Marshal: %v\n%x\nwant\n%x", err, again, raw)
				}
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	good := ocsp.CertID{HashAlgorithm: crypto.SHA1, IssuerNameHash: make([]byte, 20), IssuerKeyHash: make([]byte, 20), SerialNumber: big.NewInt(1)}
	sha384 := good
	sha384.HashAlgorithm = crypto.SHA384
	short := good
	short.IssuerKeyHash = short.IssuerKeyHash[:19]
	noSerial := good
	noSerial.SerialNumber = nil
	for name, r := range map[string]*ocsp.Request{
		"no CertID":   {},
		"SHA-384":     {CertIDs: []ocsp.CertID{sha384}},
		"short hash":  {CertIDs: []ocsp.CertID{short}},
		"no serial":   {CertIDs: []ocsp.CertID{noSerial}},
		"empty nonce": {CertIDs: []ocsp.CertID{good}, Nonce: []byte{}},
		"long nonce":  {CertIDs: []ocsp.CertID{good}, Nonce: make([]byte, 33)},
	} {
		if _, err := r.Marshal(); err == nil {
			t.Errorf("%s: Marshal succeeded", name)
		}
	}
}
