package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestMeasurePresign runs the whole presign command small: records bulk
// loaded into a CA store, every one pre-signed by the server process (this
// test binary, see TestMain) with one signature each, then hot and uniform
// cells answered without failures and without a signature, and the
// store's pages counted; not how fast.
func TestMeasurePresign(t *testing.T) {
	o := defaultPresignOptions()
	o.Certs, o.Hot = 400, 40
	o.Duration, o.Warmup = 500*time.Millisecond, 100*time.Millisecond
	o.Concurrency, o.Sample, o.Workers, o.Rounds = []int{2}, 4, 2, 2
	o.Within = 2 * time.Minute
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := measurePresign(ctx, o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stored != float64(o.Certs) || rep.Signatures != float64(o.Certs) {
		t.Errorf("pre-signed: %v stored, %v signatures; want %d each", rep.Stored, rep.Signatures, o.Certs)
	}
	for i, c := range rep.Cells[2] {
		if c.OK == 0 || c.Failed != 0 || c.OnDemand != 0 || c.Presigner != 0 {
			t.Errorf("cell %d: %d ok, %d failed (%s), %v signed on demand, %v by the pre-signer", i, c.OK, c.Failed, c.FirstError, c.OnDemand, c.Presigner)
		}
		if c.StoreHits == 0 {
			t.Errorf("cell %d: nothing answered from the store", i)
		}
		if c.StoreHits+c.CacheHits < float64(c.OK) || c.Elapsed < 2*o.Duration*9/10 {
			t.Errorf("cell %d: %v from the store and %v from the cache for %d responses in %v; want both rounds added", i, c.StoreHits, c.CacheHits, c.OK, c.Elapsed)
		}
	}
	if rep.FirstPass.OK != o.Certs || rep.FirstPassSigned != 0 {
		t.Errorf("the first pass: %d ok (%s), %v signed; want %d, none signed", rep.FirstPass.OK, rep.FirstPass.FirstError, rep.FirstPassSigned, o.Certs)
	}
	if d := rep.Disk; d.Responses.Keys != o.Certs || d.Queue.Keys != o.Certs || d.Responses.Bytes <= 0 {
		t.Errorf("store after the run: %+v; want %d responses and %d refreshes queued", d, o.Certs, o.Certs)
	}
	var md strings.Builder
	rep.markdown(&md)
	for _, want := range []string{"| HSM signatures to pre-sign them | 400 (1.000 per response) |", "| 2 | hot |", "| 2 | uniform |", "per million"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}
