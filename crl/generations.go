package crl

import (
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// Generation names an issuer key generation.
type Generation struct {
	Profile    storev1.Profile
	Generation uint32
}

// SetRetired says which issuer key generations sign nothing any more:
// retired or destroyed once their last certificate expired (R-K1). Their
// partitions are no longer published nor counted by Health — the CA's
// signer refuses them, and a CRL of no live certificate running out is no
// reason for the CA not to be ready — and their last CRLs are still served.
// It replaces the previous set; a generation added live needs nothing: its
// partitions are published as they appear (with its first certificate).
func (p *Publisher) SetRetired(generations []Generation) {
	set := make(map[Generation]bool, len(generations))
	for _, g := range generations {
		set[g] = true
	}
	p.retired.Store(&set)
	p.Notify()
}

// isRetired reports whether part's issuer key generation is retired.
func (p *Publisher) isRetired(part *storev1.CRLPartition) bool {
	set := p.retired.Load()
	return set != nil && (*set)[Generation{Profile: part.Profile, Generation: part.IssuerGeneration}]
}

// forget drops what health knows of a partition no longer published.
func (h *health) forget(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.nextUpdate, name)
	delete(h.failing, name)
	delete(h.skipped, name)
}
