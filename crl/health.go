package crl

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"
)

// health is what the publisher knows of its partitions' freshness, for
// readiness (Publisher.Health): when each CRL runs out, which partitions
// keep failing to publish and since when, and which left entries out.
type health struct {
	mu         sync.Mutex
	nextUpdate map[string]time.Time
	failing    map[string]failure
	skipped    map[string]int
}

type failure struct {
	since time.Time
	err   error
}

func (h *health) init() {
	h.nextUpdate, h.failing, h.skipped = map[string]time.Time{}, map[string]failure{}, map[string]int{}
}

func (h *health) published(name string, nextUpdate time.Time, skipped int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextUpdate[name] = nextUpdate
	delete(h.failing, name)
	if skipped > 0 {
		h.skipped[name] = skipped
	} else {
		delete(h.skipped, name)
	}
}

func (h *health) failed(name string, now time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.failing[name]
	if !ok {
		f.since = now
	}
	f.err = err
	h.failing[name] = f
}

// Health reports whether every partition's CRL is fresh (R-R4, R-R5): an
// error names the partitions whose CRL has run out (past its nextUpdate) or
// has failed to publish for longer than StaleAfter, and why; such a CA is
// not ready. degraded names the partitions published with entries left
// out (dropBadEntries): their CRLs are current, but incomplete until an
// operator repairs those records.
func (p *Publisher) Health(now time.Time) (degraded string, err error) {
	h := &p.health
	h.mu.Lock()
	defer h.mu.Unlock()
	var bad, notes []string
	for _, name := range sortedKeysOf(h.failing) {
		if f := h.failing[name]; now.Sub(f.since) >= p.cfg.StaleAfter {
			bad = append(bad, fmt.Sprintf("partition %s: no CRL published for %s: %v", name, now.Sub(f.since).Round(time.Second), f.err))
		}
	}
	for _, name := range sortedKeysOf(h.nextUpdate) {
		if next := h.nextUpdate[name]; !now.Before(next) {
			bad = append(bad, fmt.Sprintf("partition %s: its CRL ran out at %s", name, next.UTC().Format(time.RFC3339)))
		}
	}
	for _, name := range sortedKeysOf(h.skipped) {
		notes = append(notes, fmt.Sprintf("partition %s: %d revoked certificate(s) left off its CRL (entries that cannot be encoded; serials in the log)", name, h.skipped[name]))
	}
	if len(bad) > 0 {
		err = fmt.Errorf("CRLs: %s", strings.Join(bad, "; "))
	}
	return strings.Join(notes, "; "), err
}

func sortedKeysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// dropBadEntries removes from req the entries Build would refuse, logs each
// (its serial and the problem: no personal data), counts them in
// shomei_crl_entries_skipped_total, and returns how many it removed.
func (p *Publisher) dropBadEntries(partition string, req *Request) int {
	kept := req.Entries[:0]
	skipped := 0
	for _, e := range req.Entries {
		if why := entryProblem(e, req.ThisUpdate); why != "" {
			skipped++
			p.cfg.Log.Error("revoked certificate left off its CRL: its entry cannot be encoded; repair its record",
				"partition", partition, "serial", serialText(e.Serial), "problem", why)
			continue
		}
		kept = append(kept, e)
	}
	clear(req.Entries[len(kept):])
	req.Entries = kept
	if skipped > 0 {
		p.skipped.WithLabelValues(partition).Add(float64(skipped))
	}
	return skipped
}

func serialText(n *big.Int) string {
	if n == nil {
		return "none"
	}
	return fmt.Sprintf("%x", n)
}
