package service_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// Steps: a rule test is a table of calls (step) the harness runs in order,
// each granted (then checked) or refused with the violations it names.

// violation is a google.rpc.BadRequest field violation a refusal must carry:
// the request field, the rule id (its Reason) and, optionally, texts its
// description must contain.
type violation struct {
	field, rule string
	says        []string
}

// step is one call of a rule test: an Issue or a Renew on a date, and what
// must come of it.
type step struct {
	name  string
	date  string // YYYY-MM-DD: the CA's clock moves to 10:00 JST that day; "" leaves it
	renew bool
	req   *cav1.IssueRequest
	// code is the refusal's gRPC code; codes.OK when the certificates are
	// issued.
	code codes.Code
	// want are exactly the violations of a refusal.
	want []violation
	// expiry are the issued certificates' expiry dates, in request order.
	expiry []string
	// check looks further at what was issued.
	check func(t *testing.T, out issued)
}

// issued is the outcome of a granted Issue or Renew.
type issued struct {
	certs      []*cav1.Certificate
	x509       []*x509.Certificate
	superseded []string
}

// run runs steps in order, each as a subtest. Later steps build on earlier
// ones, so it stops at the first that fails.
func (h *harness) run(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			if s.date != "" {
				h.setDate(t, s.date)
			}
			if s.code != codes.OK {
				h.refused(t, s.code, s.want, func() error {
					_, err := h.call(s.renew, s.req)
					return err
				}, s.req)
				return
			}
			out := h.grant(t, s.renew, s.req)
			if s.expiry != nil {
				var got []string
				for _, c := range out.certs {
					got = append(got, c.ExpiryDate)
				}
				if !slices.Equal(got, s.expiry) {
					t.Errorf("expiry dates %v, want %v", got, s.expiry)
				}
			}
			if s.check != nil {
				s.check(t, out)
			}
		})
		if !ok {
			return
		}
	}
}

// call makes one Issue or Renew call.
func (h *harness) call(renew bool, req *cav1.IssueRequest) (issued, error) {
	h.remember(req.GetHolder())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if renew {
		resp, err := h.client.Renew(ctx, renewal(req))
		return issued{certs: resp.GetCertificates(), superseded: resp.GetSupersededSerials()}, err
	}
	resp, err := h.client.Issue(ctx, req)
	return issued{certs: resp.GetCertificates()}, err
}

// issue issues req and checks what comes back.
func (h *harness) issue(t *testing.T, req *cav1.IssueRequest) issued {
	t.Helper()
	return h.grant(t, false, req)
}

// grant makes an Issue or Renew call that must succeed, and checks every
// certificate issued: one per requested profile, in order, for the
// requested key, valid now, with notBefore now and notAfter 23:59:59 JST of
// its expiry date (R-P1), verifying with Go's x509.Verify against its
// issuer, and with the profile's content (R-P2, R-P3).
func (h *harness) grant(t *testing.T, renew bool, req *cav1.IssueRequest) issued {
	t.Helper()
	out, err := h.call(renew, req)
	if err != nil {
		t.Fatalf("refused: %v", describe(err))
	}
	if len(out.certs) != len(req.Profiles) {
		t.Fatalf("%d certificates for %d profiles", len(out.certs), len(req.Profiles))
	}
	now := h.clock.Now()
	for i, c := range out.certs {
		p := req.Profiles[i]
		holderKeys.certified(t, p.Csr)
		cert := h.checkCertificate(t, c, now)
		out.x509 = append(out.x509, cert)
		if c.Profile != p.Profile {
			t.Errorf("certificate %d is %v, want %v (request order)", i, c.Profile, p.Profile)
		}
		if c.HolderId != req.Holder.HolderId || c.MunicipalityCode != req.Municipality.Code {
			t.Errorf("certificate %d is for %s/%s", i, c.MunicipalityCode, c.HolderId)
		}
		if csr, err := x509.ParseCertificateRequest(p.Csr); err != nil || !bytes.Equal(cert.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) {
			t.Errorf("certificate %d does not certify the requested key", i)
		}
		if !cert.NotBefore.Equal(now.Truncate(time.Second)) {
			t.Errorf("certificate %d notBefore %v, want the issuance time %v (R-P1)", i, cert.NotBefore, now)
		}
		switch c.Profile {
		case signProfile:
			h.checkSign(t, cert, req)
		case authProfile:
			checkAuth(t, cert, req.Holder)
		}
	}
	return out
}
