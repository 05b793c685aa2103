package ca

import (
	"context"
	"errors"
	"fmt"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/validity"
)

// Issued is the outcome of Issue or Renew.
type Issued struct {
	// Certificates in the order requested, ISSUED, with their DER.
	Certificates []*storev1.Certificate
	// Superseded serials of a renewal, in the same order.
	Superseded [][]byte
}

// Issue issues new certificates for a holder (R-A*, R-V1, R-V5, R-V7).
func (c *CA) Issue(ctx context.Context, req IssueRequest) (*Issued, error) {
	return c.measure("issue", func() (*Issued, error) { return c.issue(ctx, req) })
}

// issue: a profile the holder has a valid (or pending) certificate of is
// refused (R-A4); every other one expires on the 5th birthday after today
// (R-V1), capped (R-V5).
func (c *CA) issue(ctx context.Context, req IssueRequest) (*Issued, error) {
	is, err := c.prepare(req, "issue")
	if err != nil {
		return nil, err
	}
	for _, i := range is.authFirst() {
		p := req.Profiles[i].Profile
		field := fmt.Sprintf("profiles[%d]", i)
		if old := is.current[p]; old != nil {
			is.pre.add(field+".profile", "R-A4", "the holder already has a valid %s certificate (serial %x, until %s): renew it instead", upperName(p), old.Serial, old.ExpiryDate)
			continue
		}
		c.planProfile(is, i, validity.Expiry(is.birth, is.today), "5th birthday after issuance (R-V1)", nil)
	}
	return c.execute(ctx, is)
}

func (c *CA) measure(op string, fn func() (*Issued, error)) (*Issued, error) {
	start := time.Now()
	out, err := fn()
	if c.metrics != nil {
		outcome := "ok"
		if err != nil {
			outcome = "refused"
			rule := "internal"
			var e *Error
			if errors.As(err, &e) {
				rule = "unavailable"
				if len(e.Violations) > 0 {
					rule = e.Violations[0].Rule
				}
				if e.Kind == KindUnavailable {
					outcome = "unavailable"
				}
			} else {
				outcome = "error"
			}
			c.metrics.refused.WithLabelValues(op, rule).Inc()
		} else {
			for _, r := range out.Certificates {
				c.metrics.issued.WithLabelValues(issuer.ShortName(r.Profile), op).Inc()
			}
		}
		c.metrics.duration.WithLabelValues(op, outcome).Observe(time.Since(start).Seconds())
	}
	return out, err
}
