package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestMeasureOCSP runs the whole ocsp command small: a SoftHSM2 token, the
// three servers (the server process is this test binary, see TestMain),
// cached, uncached and raw HSM cells. It checks that every server
// answered, without failures, that Shomei's cached cells were served from
// its cache, and that the report shows it all; not how fast.
func TestMeasureOCSP(t *testing.T) {
	needOpenSSL(t)
	o := defaultOCSPOptions()
	o.Certs, o.Hot = 500, 50
	o.Duration, o.Warmup = 500*time.Millisecond, 50*time.Millisecond
	o.Concurrency, o.Uncached, o.HSMWorkers = []int{1, 4}, []int{2}, []int{1}
	o.FillConcurrency, o.Sample, o.PeerProcs = 4, 8, 2
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := measureOCSP(ctx, o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Fill.OK != o.Hot || rep.Fill.Failed != 0 {
		t.Errorf("cache fill: %d ok, %d failed (%s); want %d ok", rep.Fill.OK, rep.Fill.Failed, rep.Fill.FirstError, o.Hot)
	}
	for _, server := range []string{serverShomei, serverPeer, serverCeiling} {
		for _, conc := range o.Concurrency {
			r := rep.Cached[server][conc]
			if r.OK == 0 || r.Failed != 0 || r.Percentile(0.99) <= 0 {
				t.Errorf("%s at %d: %d ok, %d failed (%s)", server, conc, r.OK, r.Failed, r.FirstError)
			}
		}
	}
	if rep.CachedMisses != 0 {
		t.Errorf("Shomei signed %d responses in the cached cells", rep.CachedMisses)
	}
	for _, r := range append(rep.Uncached, rep.HSM...) {
		if r.OK == 0 || r.Failed != 0 {
			t.Errorf("uncached/HSM at %d: %d ok, %d failed (%s)", r.Concurrency, r.OK, r.Failed, r.FirstError)
		}
	}
	var md strings.Builder
	rep.markdown(&md)
	for _, want := range []string{"| shomei | 4 |", "| peer | 1 |", "| ceiling | 4 |", "#### Targets", "cached ≥ 15× peer, concurrency 4",
		"| shomei, nonce in every request | 2 |", "| raw RSA-2048 signatures, hsm.Signer (same token and key) | 1 |", "-multi 2"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}
