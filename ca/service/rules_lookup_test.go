package service_test

import (
	"context"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// R-V6: statuses, look-ups, newest first.
func TestLookup(t *testing.T) {
	t.Parallel()
	h := start(t, tokenLookup, options{})
	holder := resident("v6-holder", "1980-03-15")
	var authOld, signShort, authNew issued
	h.run(t, []step{
		{name: "AUTH", req: request(holder, application(self, cardLater), auth(holderKeys.csr(t))),
			expiry: []string{"2031-03-15"}, check: keep(&authOld)},
		{name: "SIGN a day later, with a short card", date: "2026-11-22", req: request(holder, application(self, "2027-01-31"), sign(holderKeys.csr(t))),
			expiry: []string{"2027-01-31"}, check: keep(&signShort)},
	})
	if len(signShort.certs) == 0 {
		return
	}
	statusAt := func(t *testing.T, when time.Time, serial string, want cav1.Status) *cav1.Certificate {
		t.Helper()
		h.clock.Set(when)
		got := h.get(t, serial)
		if got.Status != want {
			t.Errorf("at %v: %s is %v, want %v", when, serial, got.Status, want)
		}
		return got
	}

	t.Run("GetCertificate", func(t *testing.T) {
		got := statusAt(t, time.Date(2027, 1, 31, 23, 59, 59, 0, jst), signShort.certs[0].Serial, cav1.Status_STATUS_VALID)
		if string(got.Der) != string(signShort.certs[0].Der) || got.Pem != signShort.certs[0].Pem {
			t.Error("GetCertificate returns another DER or PEM than Issue")
		}
		if got.ExpiryDate != "2027-01-31" || got.HolderId != holder.HolderId || got.MunicipalityCode != kiyose.Code ||
			got.Profile != signProfile || got.RevokedAt != "" || got.RevocationReason != "" || got.SupersededBy != "" {
			t.Errorf("GetCertificate %+v", got)
		}
	})
	t.Run("EXPIRED from midnight after the expiry date", func(t *testing.T) {
		statusAt(t, time.Date(2027, 2, 1, 0, 0, 0, 0, jst), signShort.certs[0].Serial, cav1.Status_STATUS_EXPIRED)
		statusAt(t, time.Date(2027, 2, 1, 0, 0, 0, 0, jst), authOld.certs[0].Serial, cav1.Status_STATUS_VALID)
	})
	t.Run("serial in capitals with leading zeros", func(t *testing.T) {
		if got := h.get(t, "00"+strings.ToUpper(authOld.certs[0].Serial)); got.Serial != authOld.certs[0].Serial {
			t.Errorf("got %s", got.Serial)
		}
	})
	t.Run("unknown serial", func(t *testing.T) {
		_, err := h.client.GetCertificate(context.Background(), &cav1.GetCertificateRequest{Serial: "5eed0123456789abcdef"})
		checkRefusal(t, err, codes.NotFound, []violation{{"serial", "R-P1", nil}})
	})
	t.Run("serial that is not hex", func(t *testing.T) {
		_, err := h.client.GetCertificate(context.Background(), &cav1.GetCertificateRequest{Serial: "not-a-serial"})
		checkRefusal(t, err, codes.InvalidArgument, []violation{{"serial", "R-P1", nil}})
	})

	h.run(t, []step{
		{name: "renew AUTH", date: "2030-12-16", renew: true, req: request(holder, application(self, cardLater), auth(holderKeys.csr(t))),
			expiry: []string{"2036-03-15"}, check: all(h.supersedes(&authOld), keep(&authNew))},
	})
	if len(authNew.certs) == 0 {
		return
	}
	t.Run("ListCertificates newest first", func(t *testing.T) {
		got := h.list(t, holder.HolderId)
		want := []string{
			authNew.certs[0].Serial + " STATUS_VALID",
			signShort.certs[0].Serial + " STATUS_EXPIRED",
			authOld.certs[0].Serial + " STATUS_REVOKED superseded by " + authNew.certs[0].Serial,
		}
		if !slices.Equal(summary(got), want) {
			t.Errorf("list\n%q\nwant\n%q", summary(got), want)
		}
		for _, c := range got {
			if len(c.Der) != 0 || c.Pem != "" {
				t.Errorf("list carries the DER of %s", c.Serial)
			}
		}
	})
	t.Run("ListCertificates of a holder without certificates", func(t *testing.T) {
		if got := h.list(t, "v6-nobody"); len(got) != 0 {
			t.Errorf("list %v", summary(got))
		}
	})
	t.Run("ListCertificates with a 12-digit holder id", func(t *testing.T) {
		_, err := h.client.ListCertificates(context.Background(), &cav1.ListCertificatesRequest{MunicipalityCode: kiyose.Code, HolderId: "123456789012"})
		checkRefusal(t, err, codes.InvalidArgument, []violation{{"holder_id", "R-P4", nil}})
	})
}

// bigOf reads a serial as the store keeps it.
func bigOf(serial []byte) *big.Int { return new(big.Int).SetBytes(serial) }

// summary renders listed certificates for messages.
func summary(certs []*cav1.Certificate) []string {
	var out []string
	for _, c := range certs {
		s := c.Serial + " " + c.Status.String()
		if c.RevocationReason != "" {
			s += " " + c.RevocationReason + " by " + c.SupersededBy
		}
		out = append(out, s)
	}
	return out
}
