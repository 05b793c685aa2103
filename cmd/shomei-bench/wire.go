package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	xocsp "golang.org/x/crypto/ocsp"
)

// The load generator builds its requests and checks the responses itself,
// with nothing from package ocsp, so that it measures Shomei with the same
// yardstick as the peer.

var (
	oidSHA1      = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidOCSPNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
)

// nonceLen is the length of the nonces the benchmark sends (RFC 8954
// recommends 32 at most; 16 is what openssl sends).
const nonceLen = 16

// issuerHashes are a CertID's SHA-1 issuerNameHash and issuerKeyHash.
type issuerHashes struct{ name, key []byte }

func hashesOf(issuer *x509.Certificate) (issuerHashes, error) {
	var spki struct {
		Algorithm asn1.RawValue
		Key       asn1.BitString
	}
	if rest, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil || len(rest) != 0 {
		return issuerHashes{}, fmt.Errorf("issuer subjectPublicKeyInfo: %v", err)
	}
	name, key := sha1.Sum(issuer.RawSubject), sha1.Sum(spki.Key.Bytes)
	return issuerHashes{name: name[:], key: key[:]}, nil
}

// buildRequest is the DER OCSPRequest for one SHA-1 CertID (RFC 6960
// §4.1.1), unsigned, with a nonce extension when withNonce: its value is
// then the request's last nonceLen octets, zero, for setNonce to fill.
func buildRequest(h issuerHashes, serial *big.Int, withNonce bool) ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPRequest
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TBSRequest
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // requestList
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Request
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // CertID
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(oidSHA1)
							b.AddASN1NULL()
						})
						b.AddASN1OctetString(h.name)
						b.AddASN1OctetString(h.key)
						b.AddASN1BigInt(serial)
					})
				})
			})
			if withNonce {
				b.AddASN1(cbasn1.Tag(2).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Extensions
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(oidOCSPNonce)
							b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
								b.AddASN1OctetString(make([]byte, nonceLen)) // RFC 8954 §2.1
							})
						})
					})
				})
			}
		})
	})
	return b.Bytes()
}

// setNonce writes nonce into a request buildRequest made withNonce.
func setNonce(req, nonce []byte) { copy(req[len(req)-nonceLen:], nonce) }

// errOCSP is a response that is not a successful OCSP response.
var errOCSP = errors.New("not a successful OCSP response")

// checkResponse is the structural check every response gets: an
// OCSPResponse whose responseStatus is successful and whose responseBytes
// are a non-empty id-pkix-ocsp-basic response. It costs far less than the
// response did, so it does not slow the load generator down.
func checkResponse(der []byte) error {
	in := cryptobyte.String(der)
	var resp, rb, body cryptobyte.String
	var status int
	var oid asn1.ObjectIdentifier
	switch {
	case !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !in.Empty():
		return fmt.Errorf("%w: not one DER SEQUENCE (%d bytes)", errOCSP, len(der))
	case !resp.ReadASN1Enum(&status):
		return fmt.Errorf("%w: no responseStatus", errOCSP)
	case status != 0:
		return fmt.Errorf("%w: responseStatus %d", errOCSP, status)
	case !resp.ReadASN1(&rb, cbasn1.Tag(0).ContextSpecific().Constructed()) || !resp.Empty():
		return fmt.Errorf("%w: no responseBytes", errOCSP)
	case !rb.ReadASN1(&rb, cbasn1.SEQUENCE) || !rb.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidOCSPBasic):
		return fmt.Errorf("%w: responseType is not id-pkix-ocsp-basic", errOCSP)
	case !rb.ReadASN1(&body, cbasn1.OCTET_STRING) || len(body) == 0 || !rb.Empty():
		return fmt.Errorf("%w: empty response", errOCSP)
	}
	return nil
}

// verifyResponse is the full check some responses get: x/crypto/ocsp
// parses it and verifies its signature and its responder's certificate
// against the issuer; the serial and status must be want's, and a nonce
// sent must come back.
func verifyResponse(der []byte, issuer *x509.Certificate, want *entry, nonce []byte, now time.Time) error {
	r, err := xocsp.ParseResponse(der, issuer)
	if err != nil {
		return fmt.Errorf("x/crypto/ocsp: %w", err)
	}
	if r.SerialNumber.Cmp(want.Serial) != 0 {
		return fmt.Errorf("response for serial %X, asked for %X", r.SerialNumber, want.Serial)
	}
	switch {
	case !want.Revoked && r.Status != xocsp.Good:
		return fmt.Errorf("serial %X: status %d, want good", want.Serial, r.Status)
	case want.Revoked && r.Status != xocsp.Revoked:
		return fmt.Errorf("serial %X: status %d, want revoked", want.Serial, r.Status)
	case want.Revoked && (!r.RevokedAt.Equal(want.RevokedAt) || r.RevocationReason != want.Reason):
		return fmt.Errorf("serial %X: revoked at %v reason %d, want %v reason %d", want.Serial, r.RevokedAt, r.RevocationReason, want.RevokedAt, want.Reason)
	case now.Before(r.ThisUpdate.Add(-time.Minute)) || !now.Before(r.NextUpdate):
		return fmt.Errorf("serial %X: thisUpdate %v nextUpdate %v, not current at %v", want.Serial, r.ThisUpdate, r.NextUpdate, now)
	}
	if nonce != nil {
		got, err := responseNonce(der)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, nonce) {
			return fmt.Errorf("serial %X: nonce %x sent, %x echoed", want.Serial, nonce, got)
		}
	}
	return nil
}

// responseNonce is the nonce in a response's responseExtensions (RFC
// 8954: an OCTET STRING in the extension's value), or nil.
// x/crypto/ocsp does not return responseExtensions.
func responseNonce(der []byte) ([]byte, error) {
	in := cryptobyte.String(der)
	var resp, rb, basic, tbs, exts, skipped cryptobyte.String
	var tag cbasn1.Tag
	var ok bool
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !resp.SkipASN1(cbasn1.ENUM) ||
		!resp.ReadASN1(&rb, cbasn1.Tag(0).ContextSpecific().Constructed()) ||
		!rb.ReadASN1(&rb, cbasn1.SEQUENCE) || !rb.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
		!rb.ReadASN1(&basic, cbasn1.OCTET_STRING) || !basic.ReadASN1(&basic, cbasn1.SEQUENCE) ||
		!basic.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).ContextSpecific().Constructed()) || // version
		!tbs.ReadAnyASN1Element(&skipped, &tag) || // responderID
		!tbs.SkipASN1(cbasn1.GeneralizedTime) || !tbs.SkipASN1(cbasn1.SEQUENCE) ||
		!tbs.ReadOptionalASN1(&exts, &ok, cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("%w: cannot parse the ResponseData", errOCSP)
	}
	if !ok {
		return nil, nil
	}
	if !exts.ReadASN1(&exts, cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: responseExtensions is not a SEQUENCE", errOCSP)
	}
	for !exts.Empty() {
		var ext, value, nonce cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) ||
			!ext.SkipOptionalASN1(cbasn1.BOOLEAN) || !ext.ReadASN1(&value, cbasn1.OCTET_STRING) {
			return nil, fmt.Errorf("%w: a responseExtension cannot be parsed", errOCSP)
		}
		if !oid.Equal(oidOCSPNonce) {
			continue
		}
		if !value.ReadASN1(&nonce, cbasn1.OCTET_STRING) || !value.Empty() {
			return nil, fmt.Errorf("%w: the nonce is not an OCTET STRING", errOCSP)
		}
		return nonce, nil
	}
	return nil, nil
}
