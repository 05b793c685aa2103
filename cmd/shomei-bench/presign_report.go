package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// markdown writes the report.
func (r *presignReport) markdown(w io.Writer) {
	o := r.Options
	mb := func(b float64) string { return fmt.Sprintf("%.1f MB", b/1e6) }
	perM := func(b float64) string { return fmt.Sprintf("%.0f MB", b/float64(o.Certs)*1e6/1e6) }
	fmt.Fprintf(w, "## OCSP for every certificate: pre-signed responses (%s)\n\n", r.Started.Format("2006-01-02"))
	fmt.Fprintf(w, "`shomei-bench presign --certs %d --revoked %g --hot %d --concurrency %s --rounds %d --duration %v --warmup %v --budget %g --workers %d --cache-size %d --validity %v` on %s, %d CPUs (load generator, server and SoftHSM2 share them); bbolt store; responder key RSA-2048 in SoftHSM2.\n\n",
		o.Certs, o.Revoked, o.Hot, joinInts(o.Concurrency), o.Rounds, o.Duration, o.Warmup, o.Budget, o.Workers, o.CacheSize, o.Validity, r.CPU, runtime.NumCPU())
	fmt.Fprintf(w, "### Pre-signing %d responses (%d revoked)\n\n", o.Certs, r.RevokedCount)
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| records written into the store (bulk load, not measured below) | %v |\n", r.Load.Round(time.Millisecond))
	fmt.Fprintf(w, "| time to pre-sign all (backfill walk + signing + storing) | %v (%.0f responses/s) |\n", r.Presign.Round(time.Second), r.Stored/r.Presign.Seconds())
	fmt.Fprintf(w, "| HSM signatures to pre-sign them | %.0f (%.3f per response) |\n", r.Signatures, r.Signatures/float64(o.Certs))
	fmt.Fprintf(w, "| server CPU while pre-signing | %.0f s (%.2f ms per response, SoftHSM2 included) |\n", r.ServerCPU, r.ServerCPU/r.Stored*1e3)
	refresh := o.Validity * 3 / 8
	fmt.Fprintf(w, "| refreshes in steady state (every response again at 3/8 of the %v validity: %v) | %.0f signatures/s, %.0f%% of this run's pre-signing rate |\n",
		o.Validity, refresh, float64(o.Certs)/refresh.Seconds(), 100*float64(o.Certs)/refresh.Seconds()/(r.Stored/r.Presign.Seconds()))
	fmt.Fprintf(w, "| server Go heap after pre-signing (after a GC) | %s |\n", mb(r.HeapAfterPresign))
	fmt.Fprintf(w, "| server RSS after pre-signing (the store's mmap included) | %s |\n", mb(r.RSSAfterPresign))
	fmt.Fprintf(w, "| server Go heap / RSS after the cells (response cache full) | %s / %s |\n", mb(r.HeapAfterCells), mb(r.RSSAfterCells))
	d := r.Disk
	fmt.Fprintf(w, "| store pages: responses (`ocsp_responses`) | %s, %d keys, %.0f bytes each; **%s per million** |\n", mb(float64(d.Responses.Bytes)), d.Responses.Keys, float64(d.Responses.Bytes)/float64(max(1, d.Responses.Keys)), perM(float64(d.Responses.Bytes)))
	fmt.Fprintf(w, "| store pages: refresh queue (`ocsp_queue`) | %s, %d keys; %s per million |\n", mb(float64(d.Queue.Bytes)), d.Queue.Keys, perM(float64(d.Queue.Bytes)))
	fmt.Fprintf(w, "| store pages: the certificate records, for scale | %s (%d keys; bench records carry no DER) |\n", mb(float64(d.Certs.Bytes)), d.Certs.Keys)
	fmt.Fprintf(w, "| store file | %s |\n\n", mb(float64(d.FileBytes)))
	fmt.Fprintf(w, "### Queries after pre-signing: uniform over all %d against a hot set of %d\n\n", o.Certs, o.Hot)
	fp := r.FirstPass
	fmt.Fprintf(w, "First, one request for each of the %d certificates in random order, at concurrency %d (the server maps each store page on its first read): %.0f responses/s, p99 %s, %s failed, %.0f signed.\n\n",
		o.Certs, fp.Concurrency, fp.Rate(), ms(fp.Percentile(0.99)), failures(fp), r.FirstPassSigned)
	fmt.Fprintf(w, "| concurrency | set | responses/s | p50 | p99 | failed | signed on demand | pre-signer signatures | from the store | from the cache | uniform / hot |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, conc := range o.Concurrency {
		pair := r.Cells[conc]
		for i, c := range pair {
			ratioCell := ""
			if i == 1 {
				ok := pair[0].Rate() > 0 && c.Rate()/pair[0].Rate() >= 0.8 && c.OnDemand == 0 && c.Presigner == 0
				ratioCell = fmt.Sprintf("%.0f%% %s", 100*c.Rate()/max(pair[0].Rate(), 1e-9), passFail(ok))
			}
			fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %s |\n", conc, []string{"hot", "uniform"}[i],
				c.Rate(), ms(c.Percentile(0.5)), ms(c.Percentile(0.99)), failures(c.result), c.OnDemand, c.Presigner, c.StoreHits, c.CacheHits, ratioCell)
		}
	}
	fmt.Fprintf(w, "\nTargets (issue 12): no HSM signature during the uniform cells (signed on demand and by the pre-signer: 0), uniform at least 80%% of hot. Every response is checked structurally and every %dth verified with x/crypto/ocsp against the issuer (serial, status, revocation time and reason).\n", o.Sample)
	fmt.Fprintf(w, "\nRun from %s to %s.\n", r.Started.Format(time.RFC3339), r.Finished.Format(time.RFC3339))
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}
