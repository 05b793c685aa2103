package config

import (
	"fmt"
	"time"
)

// Approvals says how key operations and issuer compromise are approved
// (R-K1, R-K2): one operator proposes, others approve, and it runs once
// Required operators (the proposer included) agreed, unless it expired.
type Approvals struct {
	// Required is how many distinct operators must agree, the proposer
	// included; default 2, at most 10. 1 lets one operator act alone:
	// only for a development CA.
	Required int `yaml:"required"`
	// ExpireAfter is how long a proposal waits for approvals; default
	// 24h, at most 30 days.
	ExpireAfter time.Duration `yaml:"expire_after"`
}

// Approval defaults and bounds.
const (
	DefaultApprovalsRequired = 2
	MaxApprovalsRequired     = 10
	DefaultApprovalExpiry    = 24 * time.Hour
	MaxApprovalExpiry        = 30 * 24 * time.Hour
)

// WithDefaults returns a with zero fields set to their defaults.
func (a Approvals) WithDefaults() Approvals {
	if a.Required == 0 {
		a.Required = DefaultApprovalsRequired
	}
	if a.ExpireAfter == 0 {
		a.ExpireAfter = DefaultApprovalExpiry
	}
	return a
}

func (a Approvals) validate() error {
	if a.Required < 0 || a.Required > MaxApprovalsRequired {
		return fmt.Errorf("approvals.required %d: 1 to %d operators (0: the default, %d)", a.Required, MaxApprovalsRequired, DefaultApprovalsRequired)
	}
	if a.ExpireAfter < 0 || a.ExpireAfter > MaxApprovalExpiry {
		return fmt.Errorf("approvals.expire_after %v: at most %v (0: the default, %v)", a.ExpireAfter, MaxApprovalExpiry, DefaultApprovalExpiry)
	}
	if a.ExpireAfter > 0 && a.ExpireAfter < time.Minute {
		return fmt.Errorf("approvals.expire_after %v: at least a minute", a.ExpireAfter)
	}
	return nil
}
