package config

import (
	"errors"
	"fmt"
)

// RateLimits bound gRPC calls before any work is done (issue 9 item 5).
// A rate is in calls a second; 0 takes the default, a negative rate turns
// the limit off. A burst of 0 is one second's worth.
type RateLimits struct {
	// ClientRate and ClientBurst are each client's token bucket, unless
	// the client sets its own (clients[].rate, burst); default 200/s,
	// burst 400. A client over it gets RESOURCE_EXHAUSTED with a retry
	// delay.
	ClientRate float64 `yaml:"client_rate"`
	// ClientBurst is the burst of client_rate; default 400.
	ClientBurst int `yaml:"client_burst"`
	// FailureRate and FailureBurst bound failed authentications per peer
	// address (IP, IPv6 /64); default 1/s, burst 20. An address over it
	// gets RESOURCE_EXHAUSTED for every call until its bucket refills,
	// except from clients that had authenticated from it before.
	FailureRate float64 `yaml:"failure_rate"`
	// FailureBurst is the burst of failure_rate; default 20.
	FailureBurst int `yaml:"failure_burst"`
}

func (r RateLimits) validate() error {
	var errs []error
	if r.ClientRate > 0 && r.ClientBurst < 0 || r.FailureRate > 0 && r.FailureBurst < 0 {
		errs = append(errs, errors.New("server.rate_limits: bursts must not be negative"))
	}
	return errors.Join(errs...)
}

// validateClientLimits checks clients[].rate and burst.
func validateClientLimits(i int, cl Client) error {
	if cl.Rate > 0 && cl.Burst < 0 {
		return fmt.Errorf("clients[%d]: burst must not be negative", i)
	}
	return nil
}
