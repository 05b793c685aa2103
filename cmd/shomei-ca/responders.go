package main

import (
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/ocsp"
)

// responderPolicy enrolls each replica client's responder keys and issuers
// (R-R6). With no clients (development on loopback) any replica key is
// certified, as any caller may act for any municipality.
func responderPolicy(cfg *config.Config) ca.ResponderPolicy {
	pol := ca.ResponderPolicy{Replicas: map[string]ca.ReplicaEnrollment{}, EnrollAny: len(cfg.Clients) == 0,
		MaxValidity: cfg.OCSP.ResponderValidity}
	for _, c := range cfg.Clients {
		if !c.Replica {
			continue
		}
		enr := ca.ReplicaEnrollment{Issuers: c.Issuers}
		for _, k := range c.ResponderKeys {
			pin, _ := ocsp.ParseKeyPin(k) // validated when the configuration was loaded
			enr.Keys = append(enr.Keys, pin)
		}
		pol.Replicas[c.Name] = enr
	}
	return pol
}
