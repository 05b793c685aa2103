package service_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// holderKeys are the card keys of every test.
var holderKeys = &keyPool{lent: map[string]*rsa.PrivateKey{}}

// keyPool hands out RSA-2048 card keys, which are slow to generate. Every
// certificate needs a key of its own (R-P1), but the key of a refused
// request was never certified, so it comes back to the pool for the next
// request. Each test has a store of its own, so the pool only has to keep a
// key from being certified twice within one test; it keeps it from being
// certified twice at all.
//
// A key is lent in a request of its own (a subject with a lending number),
// and comes back only by that request: a test that still holds a request
// it gave back, and sends it again, cannot return the key a second time
// while another test holds it. A key certified after it came back leaves
// the pool.
type keyPool struct {
	mu   sync.Mutex
	free []*rsa.PrivateKey
	// lent are the requests handed out and not known to be certified, by
	// the SHA-256 of their DER, with their keys.
	lent  map[string]*rsa.PrivateKey
	loans int
}

// fill generates n keys in the background, on two goroutines.
func (p *keyPool) fill(n int) {
	for w := range 2 {
		go func() {
			for range (n + 1 - w) / 2 {
				k, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					return // key() generates its own
				}
				p.mu.Lock()
				p.free = append(p.free, k)
				p.mu.Unlock()
			}
		}()
	}
}

// csr returns the PKCS#10 request of a fresh card key.
func (p *keyPool) csr(t testing.TB) []byte {
	t.Helper()
	p.mu.Lock()
	var k *rsa.PrivateKey
	if n := len(p.free); n > 0 {
		k, p.free = p.free[n-1], p.free[:n-1]
	}
	p.mu.Unlock()
	if k == nil {
		var err error
		if k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.Lock()
	p.loans++
	loan := p.loans
	p.mu.Unlock()
	der := csrWith(t, k, fmt.Sprintf("JPKI card key, loan %d", loan))
	sum := sha256.Sum256(der)
	p.mu.Lock()
	p.lent[string(sum[:])] = k
	p.mu.Unlock()
	return der
}

// certified records that the key of csr is certified: it never comes back,
// and leaves the pool if it had come back already.
func (p *keyPool) certified(t testing.TB, csr []byte) {
	t.Helper()
	sum := sha256.Sum256(csr)
	spki := spkiHash(t, csr)
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.lent, string(sum[:]))
	p.free = slices.DeleteFunc(p.free, func(k *rsa.PrivateKey) bool {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		s := sha256.Sum256(der)
		return err == nil && bytes.Equal(s[:], spki)
	})
}

// giveBack returns the keys of refused requests to the pool, unless they
// were certified (or blocked) meanwhile.
func (p *keyPool) giveBack(t testing.TB, csrs ...[]byte) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, der := range csrs {
		sum := sha256.Sum256(der)
		if k, ok := p.lent[string(sum[:])]; ok {
			delete(p.lent, string(sum[:]))
			p.free = append(p.free, k)
		}
	}
}

// csrOf returns a DER PKCS#10 request signed by key. The CA ignores its
// subject.
func csrOf(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	return csrWith(t, key, "JPKI card key")
}

// csrWith is csrOf with the subject's common name cn.
func csrWith(t testing.TB, key crypto.Signer, cn string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// spkiHash is the SHA-256 of a request's SubjectPublicKeyInfo, as the
// store keys certified and blocked keys (R-P1, R-V8).
func spkiHash(t testing.TB, csrDER []byte) []byte {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	return sum[:]
}

// Requests of keys the CA must refuse, or accept only when configured (R-P1).

func rsa1024CSR(t testing.TB) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return csrOf(t, k)
}

func ecdsaCSR(t testing.TB, curve elliptic.Curve) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return csrOf(t, k)
}

func ed25519CSR(t testing.TB) []byte {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return csrOf(t, k)
}

// tampered returns csr with the last byte of its signature flipped: it
// still parses, but proves possession of nothing.
func tampered(csr []byte) []byte {
	out := append([]byte(nil), csr...)
	out[len(out)-1] ^= 0x01
	return out
}
