package ocsp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// responseStatus is OCSPResponseStatus (RFC 6960 §4.2.1).
type responseStatus int

const (
	successful       responseStatus = 0
	malformedRequest responseStatus = 1
	internalError    responseStatus = 2
	tryLater         responseStatus = 3
	unauthorized     responseStatus = 6
)

func (s responseStatus) String() string {
	switch s {
	case successful:
		return "successful"
	case malformedRequest:
		return "malformedRequest"
	case internalError:
		return "internalError"
	case tryLater:
		return "tryLater"
	case unauthorized:
		return "unauthorized"
	}
	return fmt.Sprintf("responseStatus(%d)", int(s))
}

// errorResponse is the OCSPResponse of a status other than successful: a
// bare, unsigned responseStatus.
func errorResponse(s responseStatus) []byte {
	return []byte{0x30, 0x03, byte(cbasn1.ENUM), 0x01, byte(s)}
}

// single is one SingleResponse to sign.
type single struct {
	certID                 []byte // the request's DER CertID, echoed
	status                 Status
	thisUpdate, nextUpdate time.Time
}

// response is a signed, successful OCSPResponse ready to serve.
//
// Its DER is head followed by tail: tail is the certs field, the same for
// every response of an issuer, so a cached response holds only its own
// bytes (see doc.go for the memory this saves).
type response struct {
	head, tail []byte
	// thisUpdate is the latest of the SingleResponses' thisUpdate,
	// nextUpdate the earliest of their nextUpdate; the HTTP caching
	// headers are made of them.
	thisUpdate, nextUpdate time.Time
	// reuseUntil is when the cache stops serving it.
	reuseUntil time.Time
	statuses   []CertStatus
	// cacheable: no nonce, no unknown status. Only these are sent with
	// caching headers.
	cacheable bool
	// good: cacheable, and every status good (Config.GoodMaxAge).
	good bool
	// reusable: no nonce. Only these, single-CertID, are kept in the
	// cache (unknown ones for UnknownReuse only).
	reusable bool
	// Header values, made once: a cached response is sent many times.
	// The caching ones (etagHeader holds the quoted entity tag) are set
	// only when cacheable.
	contentLength, lastModified, expires, etagHeader []string
	// cacheControl is the last Cache-Control value sent, reused while its
	// max-age (whole seconds) stays the same.
	cacheControl atomic.Pointer[cacheControl]
}

// cacheControl is a Cache-Control header value and the max-age it says.
type cacheControl struct {
	maxAge int64
	value  []string
}

// contextSigner is a crypto.Signer that can be given a deadline, like
// hsm.Signer.
type contextSigner interface {
	SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

// sign makes the BasicOCSPResponse of singles, signed by the issuer's
// delegated responder, with the nonce echoed when there is one.
func (is *issuer) sign(ctx context.Context, producedAt time.Time, singles []single, nonce []byte) (*response, error) {
	_, r, err := is.signSingles(ctx, producedAt, singles, nonce)
	return r, err
}

// signSingles is sign, and returns the signed fields of the
// BasicOCSPResponse too (what a pre-signed response keeps).
func (is *issuer) signSingles(ctx context.Context, producedAt time.Time, singles []single, nonce []byte) (signed []byte, r *response, err error) {
	tbs, err := responseData(is.responderKeyHash, producedAt, singles, nonce)
	if err != nil {
		return nil, nil, fmt.Errorf("encode ResponseData: %w", err)
	}
	digest := is.alg.Digest(tbs)
	var sig []byte
	if cs, ok := is.Signer.(contextSigner); ok {
		sig, err = cs.SignContext(ctx, digest, is.alg.Hash)
	} else {
		sig, err = is.Signer.Sign(rand.Reader, digest, is.alg.Hash)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sign with the responder key of issuer %s: %w", is.keyID, err)
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, len(tbs)+len(is.alg.ID)+len(sig)+8))
	b.AddBytes(tbs)
	b.AddBytes(is.alg.ID)
	b.AddASN1BitString(sig)
	if signed, err = b.Bytes(); err != nil {
		return nil, nil, fmt.Errorf("encode BasicOCSPResponse: %w", err)
	}
	if r, err = assemble(signed, is.certs.der); err != nil {
		return nil, nil, err
	}
	for i, s := range singles {
		if i == 0 || s.thisUpdate.After(r.thisUpdate) {
			r.thisUpdate = s.thisUpdate
		}
		if i == 0 || s.nextUpdate.Before(r.nextUpdate) {
			r.nextUpdate = s.nextUpdate
		}
		r.statuses = append(r.statuses, s.status.Status)
	}
	r.prepare(nonce != nil, &is.certs.sum)
	return signed, r, nil
}

// servedUntil is when a response valid from this to next stops being
// served, from the cache or the pre-signed store: halfway, so that every
// response sent has at least half its validity left.
func servedUntil(this, next time.Time) time.Time {
	return this.Add(next.Sub(this) / 2)
}

// assemble makes the successful OCSPResponse of a BasicOCSPResponse whose
// tbsResponseData, signatureAlgorithm and signature are signed, with
// certs (its certs field, the tail) last. Only the head is written (one
// allocation): the tags and lengths before signed, then signed; a
// pre-signed response is assembled this way for every request that reads
// it from the store.
func assemble(signed, certs []byte) (*response, error) {
	basic := len(signed) + len(certs)                    // BasicOCSPResponse contents
	octets := x509enc.Size(basic)                        // OCTET STRING contents
	rb := len(oidOCSPBasicDER) + x509enc.Size(octets)    // ResponseBytes contents
	explicit := x509enc.Size(rb)                         // [0] EXPLICIT contents
	outer := len(successfulDER) + x509enc.Size(explicit) // OCSPResponse contents
	if outer > maxDERLength {
		return nil, fmt.Errorf("encode OCSPResponse: %d bytes", outer)
	}
	head := make([]byte, 0, x509enc.Size(outer)-len(certs))
	head = x509enc.AppendHeader(head, cbasn1.SEQUENCE, outer) // OCSPResponse
	head = append(head, successfulDER...)
	head = x509enc.AppendHeader(head, tagExplicit0, explicit)
	head = x509enc.AppendHeader(head, cbasn1.SEQUENCE, rb) // ResponseBytes
	head = append(head, oidOCSPBasicDER...)
	head = x509enc.AppendHeader(head, cbasn1.OCTET_STRING, octets)
	head = x509enc.AppendHeader(head, cbasn1.SEQUENCE, basic) // BasicOCSPResponse
	head = append(head, signed...)
	return &response{head: head, tail: certs}, nil
}

// prepare works out the header values of a response whose head, tail,
// times and statuses are set; nonced says it echoes a nonce, tailSum is
// the SHA-256 of its tail (certsField).
func (r *response) prepare(nonced bool, tailSum *[sha256.Size]byte) {
	r.contentLength = []string{strconv.Itoa(len(r.head) + len(r.tail))}
	r.cacheable = !nonced && !slices.Contains(r.statuses, Unknown)
	r.good = r.cacheable && !slices.Contains(r.statuses, Revoked)
	if r.cacheable {
		r.lastModified = []string{r.thisUpdate.UTC().Format(http.TimeFormat)}
		r.expires = []string{r.nextUpdate.UTC().Format(http.TimeFormat)}
		// The HTTP entity tag: a quoted hash of the whole DER, its
		// head and its tail's hash.
		h := sha256.New()
		h.Write(r.head)
		h.Write(tailSum[:])
		r.etagHeader = []string{`"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`}
	}
}

var (
	// successfulDER is the responseStatus ENUMERATED successful (0).
	successfulDER = []byte{byte(cbasn1.ENUM), 1, byte(successful)}
	// oidOCSPBasicDER is id-pkix-ocsp-basic as a DER OBJECT IDENTIFIER.
	oidOCSPBasicDER = func() []byte {
		b := cryptobyte.NewBuilder(nil)
		b.AddASN1ObjectIdentifier(oidOCSPBasic)
		return b.BytesOrPanic()
	}()
)

// maxDERLength bounds an OCSPResponse: three length octets, far more
// than any response (a stored record claiming more is damaged).
const maxDERLength = 1<<24 - 1

// responseData encodes the ResponseData: responderID byKey, producedAt, the
// responses, and the nonce extension.
func responseData(keyHash []byte, producedAt time.Time, singles []single, nonce []byte) ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		// version is v1, the DEFAULT, so DER leaves it out.
		b.AddASN1(tagExplicit2, func(b *cryptobyte.Builder) { // ResponderID byKey
			b.AddASN1OctetString(keyHash)
		})
		b.AddASN1GeneralizedTime(producedAt.UTC())
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, s := range singles {
				s.marshal(b)
			}
		})
		if nonce != nil {
			b.AddASN1(tagExplicit1, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addNonce(b, nonce)
				})
			})
		}
	})
	return b.Bytes()
}

// marshal adds the SingleResponse.
func (s single) marshal(b *cryptobyte.Builder) {
	st := s.status
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(s.certID)
		switch st.Status {
		case Good: // [0] IMPLICIT NULL
			b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(*cryptobyte.Builder) {})
		case Revoked: // [1] IMPLICIT RevokedInfo
			b.AddASN1(tagExplicit1, func(b *cryptobyte.Builder) {
				b.AddASN1GeneralizedTime(st.RevokedAt.UTC())
				if st.Reason != 0 {
					b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
						b.AddASN1Enum(int64(st.Reason))
					})
				}
			})
		default: // [2] IMPLICIT UnknownInfo (NULL)
			b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(*cryptobyte.Builder) {})
		}
		b.AddASN1GeneralizedTime(s.thisUpdate.UTC())
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
			b.AddASN1GeneralizedTime(s.nextUpdate.UTC())
		})
		if st.Status == Revoked && !st.InvalidityDate.IsZero() {
			b.AddASN1(tagExplicit1, func(b *cryptobyte.Builder) { // singleExtensions
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidInvalidityDate)
						b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
							b.AddASN1GeneralizedTime(st.InvalidityDate.UTC())
						})
					})
				})
			})
		}
	})
}
