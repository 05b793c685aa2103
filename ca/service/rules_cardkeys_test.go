package service_test

import (
	"crypto/elliptic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// R-P1 (card keys), R-P4 (holder ids), R-V8 (blocked keys).
func TestHolderKeys(t *testing.T) {
	t.Parallel()
	h := start(t, tokenKeys, options{})
	holder := resident("p1-holder", "1979-10-10")
	app := application(self, cardLater)
	issuedKey := holderKeys.csr(t)

	// A key reported lost: blocked before it was ever certified.
	blockedKey := holderKeys.csr(t)
	holderKeys.certified(t, blockedKey) // it must never come back to the pool
	err := h.store.BlockKey(&storev1.BlockedKey{PublicKeySha256: spkiHash(t, blockedKey),
		BlockedAt: timestamppb.New(h.clock.Now()), Cause: "loss report"})
	if err != nil {
		t.Fatal(err)
	}
	blocked := resident("p1-blocked", "1979-10-10")

	h.run(t, []step{
		{name: "signature does not verify", req: request(holder, app, auth(tampered(holderKeys.csr(t)))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", []string{"signature"}}}},
		{name: "second request's signature does not verify", req: request(holder, app, auth(holderKeys.csr(t)), sign(tampered(holderKeys.csr(t)))),
			code: codes.InvalidArgument, want: []violation{{"profiles[1].csr", "R-P1", []string{"signature"}}}},
		{name: "not a PKCS#10 request", req: request(holder, app, auth([]byte("-----BEGIN CERTIFICATE REQUEST-----"))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", nil}}},
		{name: "no request", req: request(holder, app, auth(nil)),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", nil}}},
		{name: "RSA-1024", req: request(holder, app, auth(rsa1024CSR(t))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", []string{"1024"}}}},
		{name: "ECDSA P-256 not enabled", req: request(holder, app, auth(ecdsaCSR(t, elliptic.P256()))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", []string{"ECDSA"}}}},
		{name: "Ed25519", req: request(holder, app, auth(ed25519CSR(t))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", nil}}},
		{name: "12-digit holder id", req: request(resident("123456789012", "1979-10-10"), app, auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.holder_id", "R-P4", []string{"individual number"}}}},
		{name: "holder id with a space", req: request(resident("p1 holder", "1979-10-10"), app, auth(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.holder_id", "R-P4", nil}}},
		{name: "RSA-2048", req: request(holder, app, auth(issuedKey)), expiry: []string{"2031-10-10"}},
		{name: "key certified for another holder", req: request(resident("p1-other", "1979-10-10"), app, auth(issuedKey)),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].csr", "R-P1", []string{"already certified"}}}},
		{name: "key certified for the other profile", req: request(holder, app, sign(issuedKey)),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].csr", "R-P1", nil}}},
		{name: "blocked key", req: request(blocked, app, auth(blockedKey)),
			code: codes.FailedPrecondition, want: []violation{{"profiles[0].csr", "R-V8", []string{"lost or compromised"}}}},
		{name: "blocked key for the second profile", req: request(blocked, app, auth(holderKeys.csr(t)), sign(blockedKey)),
			code: codes.FailedPrecondition, want: []violation{{"profiles[1].csr", "R-V8", nil}}},
	})
}

// R-P1: ECDSA P-256 card keys when the CA is configured for them.
func TestECDSAP256Keys(t *testing.T) {
	t.Parallel()
	h := start(t, tokenKeysP256, options{allowP256: true})
	app := application(self, cardLater)
	h.run(t, []step{
		{name: "ECDSA P-384", req: request(resident("p1-p384", "1979-10-10"), app, auth(ecdsaCSR(t, elliptic.P384()))),
			code: codes.InvalidArgument, want: []violation{{"profiles[0].csr", "R-P1", []string{"P-256"}}}},
		{name: "ECDSA P-256", req: request(resident("p1-p256", "1979-10-10"), app, sign(ecdsaCSR(t, elliptic.P256())), auth(ecdsaCSR(t, elliptic.P256()))),
			expiry: []string{"2031-10-10", "2031-10-10"}},
		{name: "RSA-2048 still", req: request(resident("p1-rsa", "1979-10-10"), app, auth(holderKeys.csr(t))),
			expiry: []string{"2031-10-10"}},
	})
}
