package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// scaleReport is what one scale run measured.
type scaleReport struct {
	Options           scaleOptions
	Started, Finished time.Time
	CPU               string
	PGSettings        string
	Sign              signCost
	Cells             []scaleCell
	Events            []eventsResult
}

// Targets of issue 12.
const (
	rateTarget    = 0.80 // the rate at the largest size, of the rate at the smallest
	signingTarget = 0.70 // HSM signing's share of the CA's CPU per certificate
	ocspP99Target = time.Second
	crlMaxTarget  = 60 * time.Second
)

// signingShare is the HSM signing's share of the CA's CPU per certificate:
// one signature per certificate.
func (r *scaleReport) signingShare(c scaleCell) float64 {
	per := c.Issue.CPUPerCert()
	if per <= 0 {
		return 0
	}
	return float64(r.Sign.PerSignature()) / float64(per)
}

// rateRatio is a cell's rate over the rate of its driver's smallest size.
func (r *scaleReport) rateRatio(c scaleCell) float64 {
	for _, first := range r.Cells {
		if first.Driver == c.Driver {
			if first.Issue.Rate() == 0 {
				return 0
			}
			return c.Issue.Rate() / first.Issue.Rate()
		}
	}
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func seconds(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func msec(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func percent(f float64) string { return fmt.Sprintf("%.0f %%", 100*f) }

// markdown writes the report's tables.
func (r *scaleReport) markdown(w io.Writer) {
	o := r.Options
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	what := "an AUTH and a SIGN certificate per request (a card's pair)"
	if o.Profiles == 1 {
		what = "one AUTH certificate per request"
	}
	p("### shomei-bench scale, %s", r.Started.Format("2006-01-02 15:04 MST"))
	p("")
	p("A real shomei-ca on a fresh SoftHSM2 token per store, %d gRPC clients issuing %s with fresh P-256 card keys, "+
		"%v measured after %v of warm-up per cell; the load generator is this process, on the same %d CPUs (%s), which other work on the machine may share (the load average at each window's end says how much). Run took %v.",
		o.Clients, what, o.Duration, o.Warmup, runtime.NumCPU(), r.CPU, r.Finished.Sub(r.Started).Round(time.Second))
	if r.PGSettings != "" {
		p("PostgreSQL: a throwaway cluster (internal/testenv/pg) over a Unix socket: %s.", r.PGSettings)
	}
	p("Preloaded certificates are synthetic (copies of a certificate the CA issued, new serial, holder and key hash), written through store.Reserve and store.Complete with %d concurrent writers, each with its issuance audit record.", o.PreloadWorkers)
	p("")
	p("#### Issuance rate against stored size")
	p("")
	p("| store | certificates stored | preloaded (added) | preload time | CA start-up (audit verified and reconciled) | store on disk | certificates/s | requests/s | p50 | p99 | failed | × smallest | load average |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range r.Cells {
		p("| %s | %d | %d | %s | %s | %s | %.1f | %.1f | %s | %s | %d | %.2f | %s |", c.Driver, c.Stored, c.Preloaded, seconds(c.PreloadTime),
			seconds(c.StartTime)+" ("+seconds(c.VerifyTime)+")", mib(c.DiskBytes), c.Issue.Rate(), float64(c.Issue.Requests)/c.Issue.Elapsed.Seconds(),
			msec(c.Issue.Percentile(0.50)), msec(c.Issue.Percentile(0.99)), c.Issue.Failed, r.rateRatio(c), c.Issue.LoadAvg)
	}
	p("")
	p("#### Issuance efficiency: the CA process's CPU per certificate")
	p("")
	p("One HSM signature (%s, the AUTH issuer's key, through hsm.Signer, one at a time in a child process on the same token): "+
		"%s CPU each (%d signatures in %v, %.0f/s). Signing share = 1 signature per certificate × that ÷ the CA's CPU per certificate "+
		"(/proc/<pid>/stat utime+stime over the window ÷ certificates); the CA's audit checkpoints (one signature and one witness per 100 records) are in the rest.",
		r.Sign.Algorithm, msec(r.Sign.PerSignature()), r.Sign.Signatures, r.Sign.Elapsed.Round(time.Millisecond),
		float64(r.Sign.Signatures)/r.Sign.Elapsed.Seconds())
	p("")
	p("| store | certificates stored | CA CPU per certificate | of which HSM signing | the rest | signing share | CA CPUs busy | PostgreSQL server CPU per certificate |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range r.Cells {
		per := c.Issue.CPUPerCert()
		pgCPU := "–"
		if c.Driver == driverPostgres && c.Issue.Certs > 0 {
			pgCPU = msec(c.Issue.StoreCPU / time.Duration(c.Issue.Certs))
		}
		p("| %s | %d | %s | %s | %s | %s | %.2f | %s |", c.Driver, c.Stored, msec(per), msec(r.Sign.PerSignature()),
			msec(per-r.Sign.PerSignature()), percent(r.signingShare(c)), c.Issue.CACPU.Seconds()/c.Issue.Elapsed.Seconds(), pgCPU)
	}
	if len(r.Events) > 0 {
		p("")
		p("#### Address-change events under issuance load")
		p("")
		p("Each event revokes one preloaded holder's SIGN certificate; its time runs from sending ReportEvent until the CA's OCSP answers revoked "+
			"(asked every %v, verified with x/crypto/ocsp) and until the partition's CRL lists it (fetched every %v, parsed with crypto/x509).", ocspPoll, crlPoll)
		p("")
		p("| store | certificates stored | events (rate × time) | failed | event → OCSP p50 / p99 / max | not in OCSP | event → CRL p50 / p99 / max | not on CRL | largest CRL | issuance meanwhile |")
		p("|---|---:|---:|---:|---|---:|---|---:|---:|---:|")
		for _, e := range r.Events {
			p("| %s | %d | %d (%d/s × %v) | %d | %s / %s / %s | %d | %s / %s / %s | %d | %d bytes | %.1f certificates/s |", e.Driver, e.Stored,
				e.Sent, e.Rate, e.Duration, e.Failed, msec(percentile(e.OCSP, 0.5)), msec(percentile(e.OCSP, 0.99)), msec(lastOf(e.OCSP)),
				e.OCSPMissing, msec(percentile(e.CRL, 0.5)), msec(percentile(e.CRL, 0.99)), msec(lastOf(e.CRL)), e.CRLMissing,
				e.CRLLargestLen, e.Issue.Rate())
		}
	}
	p("")
	p("#### Targets")
	p("")
	p("| target | store | measured | result |")
	p("|---|---|---:|---|")
	for _, t := range r.targets() {
		p("| %s | %s | %s | %s |", t.name, t.store, t.measured, passFail(t.pass))
	}
	var errs []string
	for _, c := range r.Cells {
		if c.Issue.FirstError != "" {
			errs = append(errs, fmt.Sprintf("%s, %d stored: %s", c.Driver, c.Stored, c.Issue.FirstError))
		}
	}
	for _, e := range r.Events {
		if e.FirstError != "" {
			errs = append(errs, fmt.Sprintf("%s events: %s", e.Driver, e.FirstError))
		}
	}
	if len(errs) > 0 {
		p("")
		p("First failures:")
		p("")
		for _, e := range errs {
			p("- %s", strings.ReplaceAll(e, "|", "/"))
		}
	}
}

func lastOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)-1]
}

type scaleTarget struct {
	name, store, measured string
	pass                  bool
}

// targets are issue 12's, as this run measured them.
func (r *scaleReport) targets() []scaleTarget {
	var out []scaleTarget
	for _, driver := range r.Options.Drivers {
		var cells []scaleCell
		for _, c := range r.Cells {
			if c.Driver == driver {
				cells = append(cells, c)
			}
		}
		if len(cells) >= 2 {
			first, last := cells[0], cells[len(cells)-1]
			ratio := r.rateRatio(last)
			out = append(out, scaleTarget{fmt.Sprintf("rate at %d stored ≥ %s of the rate at %d", last.Stored, percent(rateTarget), first.Stored),
				driver, fmt.Sprintf("%.1f / %.1f = %s", last.Issue.Rate(), first.Issue.Rate(), percent(ratio)), ratio >= rateTarget})
		}
		for _, c := range cells {
			share := r.signingShare(c)
			out = append(out, scaleTarget{fmt.Sprintf("HSM signing ≥ %s of the CA's CPU per certificate, %d stored", percent(signingTarget), c.Stored),
				driver, percent(share), share >= signingTarget})
		}
		for _, e := range r.Events {
			if e.Driver != driver {
				continue
			}
			p99 := percentile(e.OCSP, 0.99)
			out = append(out, scaleTarget{"event → OCSP p99 ≤ 1 s (every event seen)", driver, msec(p99),
				p99 <= ocspP99Target && e.OCSPMissing == 0 && e.Failed == 0 && len(e.OCSP) > 0})
			worst := lastOf(e.CRL)
			out = append(out, scaleTarget{"event → CRL ≤ 60 s, every event", driver, msec(worst),
				worst <= crlMaxTarget && e.CRLMissing == 0 && e.Failed == 0 && len(e.CRL) > 0})
		}
	}
	return out
}
