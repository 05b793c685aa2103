package main

import (
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"
)

// hostileReport is what one hostile run saw.
type hostileReport struct {
	Options           hostileOptions
	Started, Finished time.Time
	CANofile          uint64
	// Good[what] counts the good client's outcomes ("ok" or an error).
	GoodIssue, GoodOCSP counts
	// Hostile[kind] counts outcomes.
	Hostile     map[string]counts
	Holds       map[string]holdStats
	PeakRSS     uint64 // bytes, VmHWM
	Refused     map[string]float64
	FirstErrors []string
}

// counts are outcomes and how often they happened.
type counts map[string]int64

func (c counts) total() (n int64) {
	for _, v := range c {
		n += v
	}
	return n
}

// tally counts outcomes of several goroutines.
type tally struct {
	mu sync.Mutex
	m  map[string]counts
}

func (t *tally) add(kind, outcome string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]counts{}
	}
	if t.m[kind] == nil {
		t.m[kind] = counts{}
	}
	t.m[kind][outcome]++
}

func (t *tally) get(kind string) counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.m[kind])
}

// pass: the good client saw no failure, and the CA's peak RSS stayed
// under the bound.
func (r *hostileReport) pass() bool {
	return r.GoodIssue["failed"] == 0 && r.GoodOCSP["failed"] == 0 && r.GoodIssue["ok"] > 0 &&
		r.PeakRSS < uint64(r.Options.RSSBoundMiB)<<20
}

func addHold(a, b holdStats) holdStats {
	return holdStats{Mode: b.Mode, Attempted: b.Attempted, Opened: a.Opened + b.Opened, Open: a.Open + b.Open,
		DialFailed: a.DialFailed + b.DialFailed, Reset: a.Reset + b.Reset, Closed: a.Closed + b.Closed, Answered: a.Answered + b.Answered}
}

// markdown writes the report.
func (r *hostileReport) markdown(w io.Writer) {
	o := r.Options
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("### shomei-bench hostile, %s", r.Started.Format("2006-01-02 15:04 MST"))
	p("")
	p("A real shomei-ca (fresh SoftHSM2 token, one municipal client, RLIMIT_NOFILE %d) under %v of mixed hostile load "+
		"from attackers' own loopback addresses (127.0.1.x, 127.0.2.1, 127.0.3.1), while one good client, from 127.0.0.1, issues AUTH certificates over gRPC (with its token) and "+
		"asks OCSP about each. Everything shares the machine's CPUs. Run took %v.",
		r.CANofile, o.Duration, r.Finished.Sub(r.Started).Round(time.Second))
	p("")
	p("| good client | ok | failed |")
	p("|---|---:|---:|")
	p("| Issue (gRPC) | %d | %d |", r.GoodIssue["ok"], r.GoodIssue["failed"])
	p("| OCSP query of the new certificate | %d | %d |", r.GoodOCSP["ok"], r.GoodOCSP["failed"])
	p("")
	p("| hostile kind | requests | outcomes |")
	p("|---|---:|---|")
	for _, k := range []string{kindGarbage, kindOversized, kindNonce, kindBigGRPC} {
		c := r.Hostile[k]
		p("| %s | %d | %s |", k, c.total(), outcomes(c))
	}
	for _, k := range []string{kindIdle, kindSlow} {
		h := r.Holds[k]
		p("| %s | %d opened | reset at the cap %d, closed by the CA's timeouts %d, answered %d, dial failed %d |",
			k, h.Opened, h.Reset, h.Closed, h.Answered, h.DialFailed)
	}
	p("")
	p("| CA | measured | bound | result |")
	p("|---|---:|---:|---|")
	p("| peak RSS (VmHWM) | %d MiB | %d MiB | %s |", r.PeakRSS>>20, o.RSSBoundMiB, passFail(r.PeakRSS < uint64(o.RSSBoundMiB)<<20))
	p("| good client failures | %d | 0 | %s |", r.GoodIssue["failed"]+r.GoodOCSP["failed"], passFail(r.GoodIssue["failed"]+r.GoodOCSP["failed"] == 0 && r.GoodIssue["ok"] > 0))
	p("| connections refused at the cap, HTTP / gRPC | %.0f / %.0f | – | – |", r.Refused["http"], r.Refused["grpc"])
	if len(r.FirstErrors) > 0 {
		p("")
		p("First failures of the good client:")
		p("")
		for _, e := range r.FirstErrors {
			p("- %s", strings.ReplaceAll(e, "|", "/"))
		}
	}
}

// outcomes lists counts, most frequent first.
func outcomes(c counts) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c[keys[i]] > c[keys[j]] || (c[keys[i]] == c[keys[j]] && keys[i] < keys[j]) })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.ReplaceAll(strings.Join(parts, ", "), "|", "/")
}
