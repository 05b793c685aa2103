package service_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/ocsp"
)

// TestAttackReplicaHugeResponderKey: a stolen replica credential sends
// CertifyResponder a request for a key of hundreds of thousands of bits
// with a huge public exponent, just under the server's message limit. The
// handler verified its signature (proof of possession) before anything
// looked at the key: about 3 s of CPU per call, and the client's rate
// allows 200 calls a second. Now the size and the key are checked first,
// in the domain, like a card's request (parseCSR): refused for what they
// are, never for a signature nobody should have verified.
func TestAttackReplicaHugeResponderKey(t *testing.T) {
	enrolled := mustRSA(t)
	pin, err := ocsp.KeyPin(enrolled.Public())
	if err != nil {
		t.Fatal(err)
	}
	pinBytes, _ := ocsp.ParseKeyPin(pin)
	authz, err := service.NewTokenAuthorizer([]service.Client{{Name: "replica1", Token: replicaToken, Replica: true}})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, tokenResponders, options{auth: authz, maxRecv: ca.MaxRequestBytes, responders: ca.ResponderPolicy{
		Replicas: map[string]ca.ReplicaEnrollment{"replica1": {Keys: [][sha256.Size]byte{pinBytes}}},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	replica := cav1.NewReplicationClient(testenv.Dial(t, h.addr, replicaToken))
	for name, tc := range map[string]struct {
		bits int
		want string // in the violation's description
	}{
		"250,000 bits, 62 KB":         {250_000, "bytes"},
		"8,192 bits, under the bytes": {8192, "8192 bits"},
	} {
		csr := unverifiableCSR(t, tc.bits)
		if len(csr) >= ca.MaxRequestBytes {
			t.Fatalf("%s: the request is %d bytes, over the message limit", name, len(csr))
		}
		_, err := replica.CertifyResponder(ctx, &cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: csr})
		fields := violations(err)
		if status.Code(err) != codes.InvalidArgument || len(fields) == 0 || fields[0].Field != "csr" ||
			!strings.Contains(fields[0].Description, tc.want) || strings.Contains(fields[0].Description, "signature") {
			t.Errorf("%s: %v; want InvalidArgument naming csr, refused for %q before its signature is verified", name, describe(err), tc.want)
		}
	}
	// The enrolled key still gets its certificate.
	if _, err := replica.CertifyResponder(ctx, &cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: responderCSR(t, enrolled)}); err != nil {
		t.Errorf("the enrolled key: %v", describe(err))
	}
}

// unverifiableCSR is a PKCS#10 request for an RSA key of bits with
// exponent 2^31-1 and a random signature: as costly to verify as a key of
// that size can be, and never valid.
func unverifiableCSR(t *testing.T, bits int) []byte {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1)
	n.SetBit(n, 0, 1)
	spki, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 1<<31 - 1})
	if err != nil {
		t.Fatal(err)
	}
	subject, err := asn1.Marshal(pkix.Name{CommonName: "OCSP Responder"}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, (bits+7)/8)
	rand.Read(sig)
	sig[0] = 0
	type info struct {
		Version    int
		Subject    asn1.RawValue
		SPKI       asn1.RawValue
		Attributes asn1.RawValue `asn1:"tag:0"`
	}
	der, err := asn1.Marshal(struct {
		Info      info
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{
		Info: info{Subject: asn1.RawValue{FullBytes: subject}, SPKI: asn1.RawValue{FullBytes: spki},
			Attributes: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true}},
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1.NullRawValue},
		Signature: asn1.BitString{Bytes: sig, BitLength: len(sig) * 8},
	})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestAttackIndividualNumberElsewhere: the individual number is never
// accepted, stored, logged or put in a certificate (R-P4), but the check
// covered the ids only, with a fixed list of separators. A compromised
// municipal system put one into the holder's address or name, which the
// CA signed into a certificate every relying party reads, and into event
// ids grouped by slashes, colons or " - ". Now every text a certificate
// carries gets the ids' rule, and any punctuation separates groups.
func TestAttackIndividualNumberElsewhere(t *testing.T) {
	h := start(t, tokenCharacters, options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, tc := range map[string]struct {
		holder *cav1.Holder
		field  string
	}{
		"full-width in the address": {withAddress(resident("IN-1", "1980-04-01"), "東京都清瀬市中里１２３４５６７８９０１８"), "holder.address"},
		"grouped in the address":    {withAddress(resident("IN-2", "1980-04-01"), "東京都清瀬市中里１２３４－５６７８－９０１８"), "holder.address"},
		"in the surname":            {named("IN-3", "1980-04-01", "山田１２３４５６７８９０１８", "太郎"), "holder.surname"},
		"across surname and given":  {named("IN-4", "1980-04-01", "１２３４５６", "７８９０１８"), "holder.surname"},
	} {
		_, err := h.client.Issue(ctx, request(tc.holder, application(self, "2035-01-01"), sign(holderKeys.csr(t)), auth(holderKeys.csr(t))))
		fields := violations(err)
		if status.Code(err) != codes.InvalidArgument || len(fields) == 0 || fields[0].Field != tc.field || fields[0].Reason != "R-P4" {
			t.Errorf("%s: %v; want InvalidArgument naming %s (R-P4)", name, describe(err), tc.field)
		}
	}
	for _, id := range []string{"move/1234/5678/9018", "1234:5678:9018", "ev-1234.-.5678.-.9018", "(1234)5678,9018"} {
		_, err := h.events.ReportEvent(ctx, &cav1.ReportEventRequest{EventId: id, MunicipalityCode: kiyose.Code, HolderId: "IN-1",
			Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: h.clock.Now().Format(time.RFC3339)})
		fields := violations(err)
		if status.Code(err) != codes.InvalidArgument || len(fields) == 0 || fields[0].Field != "event_id" || fields[0].Reason != "R-P4" {
			t.Errorf("event id %q: %v; want InvalidArgument naming event_id (R-P4)", id, describe(err))
		}
	}
}

func withAddress(h *cav1.Holder, address string) *cav1.Holder {
	h.Address = address
	return h
}
