package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/internal/testenv"
)

// TestScaleShort runs the scale command small, end to end, on both
// drivers: a real shomei-ca (built here) on bbolt and on a throwaway
// PostgreSQL cluster, 0 and then 300 preloaded certificates, short
// issuance windows, the HSM signing loop, and 40 address-change events
// under load. The CA must start on the preloaded store (its audit log
// verified and every certificate reconciled), issue without a failure,
// and every event must reach OCSP and the CRL; the report must have every
// row. Not how fast.
func TestScaleShort(t *testing.T) {
	bin := t.TempDir()
	if err := testenv.Build(bin, "../shomei-ca"); err != nil {
		t.Fatal(err)
	}
	o := defaultScaleOptions()
	o.Preload = []int{0, 300}
	o.Duration, o.Warmup, o.Clients = time.Second, 300*time.Millisecond, 4
	o.SignFor, o.EventRate, o.EventDuration = 500*time.Millisecond, 20, 2*time.Second
	o.CABin = filepath.Join(bin, "shomei-ca")
	o.CAProfile = t.TempDir()
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := measureScale(ctx, o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	rep.markdown(&md)
	t.Log("\n" + md.String())

	if rep.Sign.Signatures == 0 || rep.Sign.PerSignature() <= 0 || rep.Sign.Algorithm != "rsa2048" {
		t.Errorf("HSM signing loop: %+v", rep.Sign)
	}
	if len(rep.Cells) != 4 {
		t.Fatalf("%d cells, want 2 sizes × 2 drivers", len(rep.Cells))
	}
	for i, c := range rep.Cells {
		name := fmt.Sprintf("%s at %d", c.Driver, c.Preload)
		if c.Issue.Certs == 0 || c.Issue.Failed != 0 || c.Issue.CACPU <= 0 || c.StartTime <= 0 || c.DiskBytes <= 0 {
			t.Errorf("%s: %d certificates, %d failed (%s), CA CPU %v, start-up %v, disk %d", name, c.Issue.Certs, c.Issue.Failed,
				c.Issue.FirstError, c.Issue.CACPU, c.StartTime, c.DiskBytes)
		}
		if c.VerifyTime <= 0 || c.VerifyTime > c.StartTime {
			t.Errorf("%s: audit verified %v into a start-up of %v", name, c.VerifyTime, c.StartTime)
		}
		if c.Issue.Certs%2 != 0 {
			t.Errorf("%s: %d certificates from pairs", name, c.Issue.Certs)
		}
		if c.Stored < c.Preload {
			t.Errorf("%s: %d certificates stored at the start", name, c.Stored)
		}
		if c.Profile == "" {
			t.Errorf("%s: no CPU profile of the CA", name)
		} else if st, err := os.Stat(c.Profile); err != nil || st.Size() == 0 {
			t.Errorf("%s: CPU profile %s: %v", name, c.Profile, err)
		}
		if i%2 == 1 {
			prev := rep.Cells[i-1]
			// The preload added 300 (the template was issued in the
			// first cell), on top of what the first cell issued.
			if c.Preloaded != 300 || c.Stored < prev.Stored+300+int(prev.Issue.Certs) {
				t.Errorf("%s: preloaded %d, %d stored after %d and %d issued", name, c.Preloaded, c.Stored, prev.Stored, prev.Issue.Certs)
			}
		}
	}
	if len(rep.Events) != 2 {
		t.Fatalf("%d events cells, want one per driver", len(rep.Events))
	}
	for _, e := range rep.Events {
		if e.Sent != 40 || e.Failed != 0 || e.OCSPMissing != 0 || e.CRLMissing != 0 || len(e.OCSP) != 40 || len(e.CRL) != 40 {
			t.Errorf("%s events: sent %d, failed %d (%s), in OCSP %d (missing %d), on the CRL %d (missing %d)", e.Driver, e.Sent, e.Failed,
				e.FirstError, len(e.OCSP), e.OCSPMissing, len(e.CRL), e.CRLMissing)
		}
		if e.Driver == driverPostgres && e.Issue.StoreCPU <= 0 {
			t.Errorf("%s events: no PostgreSQL server CPU counted", e.Driver)
		}
		if e.Issue.Certs == 0 {
			t.Errorf("%s events: no issuance meanwhile", e.Driver)
		}
	}
	for _, want := range []string{"| bbolt | 0 |", "| postgres | 0 |", "#### Issuance efficiency", "| rate at ", "event → OCSP p99 ≤ 1 s",
		"event → CRL ≤ 60 s", "PostgreSQL: a throwaway cluster", "One HSM signature (rsa2048"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestScaleOptions checks that every bound of the scale command's flags
// refuses, naming the flag.
func TestScaleOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*scaleOptions)
		want string // in the error; "" for none
	}{
		{"defaults", func(*scaleOptions) {}, ""},
		{"no events", func(o *scaleOptions) { o.EventDuration, o.Preload = 0, []int{0} }, ""},
		{"unknown driver", func(o *scaleOptions) { o.Drivers = []string{"sqlite"} }, "--drivers"},
		{"driver twice", func(o *scaleOptions) { o.Drivers = []string{"bbolt", "bbolt"} }, "named twice"},
		{"no sizes", func(o *scaleOptions) { o.Preload = nil }, "--preload"},
		{"descending", func(o *scaleOptions) { o.Preload = []int{100_000, 0} }, "ascend"},
		{"too large", func(o *scaleOptions) { o.Preload = []int{0, maxPreload + 1} }, "--preload"},
		{"negative", func(o *scaleOptions) { o.Preload = []int{-1, 100_000} }, "--preload"},
		{"short window", func(o *scaleOptions) { o.Duration = 100 * time.Millisecond }, "--duration"},
		{"no clients", func(o *scaleOptions) { o.Clients = 0 }, "--clients"},
		{"three profiles", func(o *scaleOptions) { o.Profiles = 3 }, "--profiles"},
		{"preload workers", func(o *scaleOptions) { o.PreloadWorkers = maxPreloadWorkers + 1 }, "--preload-workers"},
		{"sign loop", func(o *scaleOptions) { o.SignFor = time.Hour }, "--sign-for"},
		{"event rate", func(o *scaleOptions) { o.EventRate = 0 }, "--event-rate"},
		{"events need holders", func(o *scaleOptions) { o.Preload = []int{0, 1000} }, "preload at least 12000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultScaleOptions()
			tc.set(o)
			err := o.check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestProcCPU reads this process's CPU time from /proc as the scale
// command reads the CA's, and checks it against getrusage after burning
// some CPU.
func TestProcCPU(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for start := selfCPU(); selfCPU()-start < 200*time.Millisecond; {
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < 100*time.Millisecond {
		t.Errorf("/proc counted %v of at least 200ms of CPU", got)
	}
	if _, err := procCPU(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
