package ca

import (
	"context"
	"fmt"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/validity"
)

// Renew renews certificates inside their renewal window (R-V3, R-V4).
func (c *CA) Renew(ctx context.Context, req IssueRequest) (*Issued, error) {
	return c.measure("renew", func() (*Issued, error) { return c.renew(ctx, req) })
}

// renew: every profile needs the holder's valid certificate of it, inside
// its renewal window (R-V3); the new one expires on the 6th birthday after
// today, or the 5th on the old one's expiry date (R-V4), capped (R-V5), and
// supersedes the old one in the transaction that stores it.
func (c *CA) renew(ctx context.Context, req IssueRequest) (*Issued, error) {
	is, err := c.prepare(req, "renew")
	if err != nil {
		return nil, err
	}
	for _, i := range is.authFirst() {
		p := req.Profiles[i].Profile
		field := fmt.Sprintf("profiles[%d]", i)
		old := is.current[p]
		if old == nil || old.State != storev1.CertState_CERT_STATE_ISSUED {
			is.pre.add(field+".profile", "R-V4", "the holder has no valid %s certificate to renew: after expiry a new one is issued with Issue", upperName(p))
			continue
		}
		expiry, reason, err := renewalExpiry(is, field, old)
		if err != nil {
			return nil, err
		}
		if expiry.IsZero() {
			continue // outside the window: refused in is.pre
		}
		c.planProfile(is, i, expiry, reason, old.Serial)
	}
	return c.execute(ctx, is)
}

// renewalExpiry is the expiry of old's renewal today and why (R-V4), or the
// zero date when today is outside old's renewal window, which it refuses in
// is.pre (R-V3).
func renewalExpiry(is *issuance, field string, old *storev1.Certificate) (validity.Date, string, error) {
	oldExpiry, err := validity.ParseDate(old.ExpiryDate)
	if err != nil {
		return validity.Date{}, "", fmt.Errorf("ca: stored expiry of %x: %w", old.Serial, err)
	}
	expiry, err := validity.RenewalExpiry(is.birth, oldExpiry, is.today, is.req.Holder.LivingAbroad)
	if err != nil {
		is.pre.add(field+".profile", "R-V3", "%s certificate %x (expiring %s): %v", upperName(old.Profile), old.Serial, oldExpiry, err)
		return validity.Date{}, "", nil
	}
	if is.today == oldExpiry {
		return expiry, "5th birthday after renewal on the expiry date (R-V4)", nil
	}
	return expiry, "6th birthday after renewal (R-V4)", nil
}
