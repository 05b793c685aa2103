package repository

import (
	"fmt"
	"testing"
	"time"
)

// TestRenderCacheScan: a caller who walks every page (at national scale
// 13,928 CRLs are 140 pages of each of /, /index.json and /crl/) must not
// evict the pages already rendered from the snapshot, such as page 1 that
// every visitor asks for: past its bound the cache keeps what it has and
// stores no more, and a new snapshot starts it afresh.
func TestRenderCacheScan(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	iss := &issuerSnapshot{}
	var c renderCache
	body := make([]byte, 40<<10) // a page of 100 CRLs as HTML
	keys := 3 * 140
	for i := range keys {
		c.put(at, iss, fmt.Sprintf("page?%d", i+1), body)
	}
	for i := range keys {
		if c.get(at, iss, fmt.Sprintf("page?%d", i+1)) == nil {
			t.Fatalf("after a scan of %d pages (%d KiB), page %d is no longer cached", keys, keys*len(body)>>10, i+1)
		}
	}

	// The byte bound: past it nothing more is kept, and what was kept
	// stays.
	big := make([]byte, maxRenderedBytes/4+1)
	for i := range 4 {
		c.put(at, iss, fmt.Sprintf("big?%d", i), big)
	}
	if c.get(at, iss, "big?3") != nil {
		t.Errorf("a body past the %d-byte bound was kept (%d bytes held)", maxRenderedBytes, c.size)
	}
	if c.size > maxRenderedBytes {
		t.Errorf("%d bytes held, bound %d", c.size, maxRenderedBytes)
	}
	if c.get(at, iss, "page?1") == nil || c.get(at, iss, "big?0") == nil {
		t.Error("reaching the bound evicted what was cached")
	}

	// A new snapshot of the CRLs, or of the issuers, starts afresh.
	c.put(at.Add(time.Second), iss, "page?2", body)
	if c.get(at.Add(time.Second), iss, "page?1") != nil || c.get(at.Add(time.Second), iss, "page?2") == nil || c.size != len(body) {
		t.Errorf("a new CRL snapshot kept the old pages (%d bytes held)", c.size)
	}
	other := &issuerSnapshot{}
	c.put(at.Add(time.Second), other, "page?3", body)
	if c.get(at.Add(time.Second), other, "page?2") != nil || c.get(at.Add(time.Second), iss, "page?3") != nil {
		t.Error("a new issuer snapshot kept the old pages")
	}
}
