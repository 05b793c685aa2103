package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The targets for Shomei's cached responses.
const (
	targetPeerRatio    = 15.0                 // at least 15× the peer
	targetCeilingRatio = 0.80                 // at least 80 % of the ceiling
	targetP99          = 5 * time.Millisecond // p99 under 5 ms ...
	targetP99At        = 64                   // ... at concurrency 64
)

// report is everything one run measured.
type report struct {
	Options           ocspOptions
	Started, Finished time.Time
	OpenSSL, CPU      string
	PeerCommand       string
	RevokedCount      int
	Fill              result
	// Cached[server][concurrency].
	Cached       map[string]map[int]result
	CachedMisses int // Shomei's cache misses during the cached cells
	Uncached     []result
	HSM          []result
}

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func passFail(ok bool) string {
	if ok {
		return "**pass**"
	}
	return "**FAIL**"
}

// connections says how the load generator's connections were used.
func connections(r result) string {
	total := r.OK + r.Failed
	switch {
	case r.Conns == 0:
		return "0 (kept alive)"
	case total > 0 && float64(r.Conns) >= 0.9*float64(total):
		return fmt.Sprintf("%d (one per request)", r.Conns)
	}
	return fmt.Sprintf("%d", r.Conns)
}

// failures is the failed count, with the first error when there is one.
func failures(r result) string {
	if r.Failed == 0 {
		return "0"
	}
	msg := r.FirstError
	if len(msg) > 80 {
		msg = msg[:80] + "…"
	}
	return fmt.Sprintf("%d (%s)", r.Failed, strings.ReplaceAll(msg, "|", "/"))
}

// target is one of the targets, checked.
type target struct {
	what, measured string
	ok             bool
}

// targets checks Shomei's cached results against the targets. A
// cell with failed responses misses every target: a failing server is not
// fast.
func (r *report) targets() []target {
	var ts []target
	for _, conc := range r.Options.Concurrency {
		s, p, c := r.Cached[serverShomei][conc], r.Cached[serverPeer][conc], r.Cached[serverCeiling][conc]
		ok := s.Failed == 0
		ts = append(ts,
			target{fmt.Sprintf("cached ≥ %.0f× peer, concurrency %d", targetPeerRatio, conc), ratio(s.Rate(), p.Rate()),
				ok && p.Rate() > 0 && s.Rate() >= targetPeerRatio*p.Rate()},
			target{fmt.Sprintf("cached ≥ %.0f %% of ceiling, concurrency %d", targetCeilingRatio*100, conc), fmt.Sprintf("%.0f %%", 100*s.Rate()/c.Rate()),
				ok && s.Rate() >= targetCeilingRatio*c.Rate()})
		if conc == targetP99At {
			ts = append(ts, target{fmt.Sprintf("cached p99 < %v, concurrency %d", targetP99, conc), ms(s.Percentile(0.99)),
				ok && s.Percentile(0.99) < targetP99})
		}
	}
	return ts
}

// markdown writes the report.
func (r *report) markdown(w io.Writer) {
	o := r.Options
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("### shomei-bench ocsp, %s", r.Started.Format("2006-01-02 15:04 MST"))
	p("")
	p("Machine: %d CPUs (%s), GOMAXPROCS %d, %s/%s, %s, %s. The load generator, Shomei's server process "+
		"and openssl's run on these same CPUs, on 127.0.0.1 in a network namespace of their own.",
		runtime.NumCPU(), r.CPU, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), r.OpenSSL)
	p("")
	p("Dataset: %d certificates (%d revoked), one RSA-2048 issuer (key in SoftHSM2). Shomei reads statuses "+
		"from a bbolt file, the peer from an OpenSSL CA database (index.txt) of the same certificates. "+
		"Requests: POST, one SHA-1 CertID, no nonce, for %d hot serials drawn at random; %v per cell after %v of warm-up; "+
		"every response checked to be a successful OCSP response, every %dth verified in full (signature, serial, status).",
		o.Certs, r.RevokedCount, o.Hot, o.Duration, o.Warmup, o.Sample)
	p("")
	p("- **shomei**: `ocsp.Responder`, cache on, delegated responder key RSA-2048 in the HSM; net/http server in a separate process.")
	p("- **peer**: `%s` — %d responder processes, each answering one request at a time, "+
		"signing every response with a *separate software* RSA-2048 responder key and certificate (signed by the same issuer): "+
		"openssl reads its key from a file, not from the HSM.", r.PeerCommand, o.PeerProcs)
	p("- **ceiling**: a bare net/http handler that reads the POST and writes one fixed response Shomei signed beforehand; same process as shomei.")
	p("")
	p("#### Cached responses")
	p("")
	p("| server | concurrency | responses/s | p50 | p99 | failed | new connections | × peer | ÷ ceiling |")
	p("|---|---:|---:|---:|---:|---:|---|---:|---:|")
	for _, conc := range o.Concurrency {
		peer, ceiling := r.Cached[serverPeer][conc], r.Cached[serverCeiling][conc]
		for _, name := range []string{serverShomei, serverPeer, serverCeiling} {
			c := r.Cached[name][conc]
			p("| %s | %d | %.0f | %s | %s | %s | %s | %s | %s |", name, conc, c.Rate(), ms(c.Percentile(0.5)), ms(c.Percentile(0.99)),
				failures(c), connections(c), ratio(c.Rate(), peer.Rate()), fmt.Sprintf("%.0f %%", 100*c.Rate()/ceiling.Rate()))
		}
	}
	p("")
	p("Shomei signed %d responses during the cached cells (cache misses; 0 means every cached-cell response came from the cache).", r.CachedMisses)
	p("")
	p("#### Targets (from the issue)")
	p("")
	p("| target | measured | result |")
	p("|---|---:|---|")
	for _, t := range r.targets() {
		p("| %s | %s | %s |", t.what, t.measured, passFail(t.ok))
	}
	p("")
	p("#### Uncached (freshly signed) responses")
	p("")
	p("| measure | concurrency | per second | p50 | p99 | failed | ÷ raw HSM |")
	p("|---|---:|---:|---:|---:|---:|---:|")
	hsmAt := func(conc int) result { // the raw rate with at most conc workers
		var best result
		for _, h := range r.HSM {
			if h.Concurrency <= conc && h.Concurrency >= best.Concurrency {
				best = h
			}
		}
		return best
	}
	p("| shomei, cache fill (%d serials, no nonce) | %d | %.0f | %s | %s | %s | %s |", o.Hot, r.Fill.Concurrency, r.Fill.Rate(),
		ms(r.Fill.Percentile(0.5)), ms(r.Fill.Percentile(0.99)), failures(r.Fill), ratio(r.Fill.Rate(), hsmAt(r.Fill.Concurrency).Rate()))
	for _, u := range r.Uncached {
		p("| shomei, nonce in every request | %d | %.0f | %s | %s | %s | %s |", u.Concurrency, u.Rate(),
			ms(u.Percentile(0.5)), ms(u.Percentile(0.99)), failures(u), ratio(u.Rate(), hsmAt(u.Concurrency).Rate()))
	}
	for _, h := range r.HSM {
		p("| raw RSA-2048 signatures, hsm.Signer (same token and key) | %d | %.0f | %s | %s | 0 | 1.00× |", h.Concurrency, h.Rate(),
			ms(h.Percentile(0.5)), ms(h.Percentile(0.99)))
	}
	p("")
	p("÷ raw HSM compares with the raw rate at the same number of workers, or the most workers measured below it. "+
		"The responder's HSM session pool has %d sessions (the number of CPUs). Run took %v.",
		runtime.NumCPU(), r.Finished.Sub(r.Started).Round(time.Second))
}

// printReport prints rep's Markdown on stdout and, with --out (path),
// writes it to that file too.
func printReport(stdout io.Writer, path string, rep interface{ markdown(io.Writer) }) error {
	var out strings.Builder
	rep.markdown(&out)
	if _, err := io.WriteString(stdout, out.String()); err != nil {
		return err
	}
	if path == "" {
		return nil
	}
	return writeReport(path, out.String())
}

// writeReport writes a report to path (--out), making its directory (such
// as var/, which only make run creates) if needed.
func writeReport(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
