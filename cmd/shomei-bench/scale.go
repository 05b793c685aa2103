package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/spf13/cobra"
)

// scaleOptions are the scale command's flags. Every count and time is
// bounded (check).
type scaleOptions struct {
	// Drivers are the stores measured, in order: bbolt, postgres.
	Drivers []string
	// Preload are the numbers of synthetic certificates stored before the
	// cells, ascending; each cell adds what the one before lacks.
	Preload []int
	// Duration and Warmup of each issuance cell.
	Duration, Warmup time.Duration
	// Clients issue concurrently over gRPC, one request at a time each.
	Clients int
	// Profiles per Issue request: 2 (AUTH and SIGN, a card's pair) or 1
	// (AUTH).
	Profiles int
	// PreloadWorkers write synthetic issuances concurrently, so that the
	// store's group commit batches them.
	PreloadWorkers int
	// SignFor is how long the raw HSM signing loop runs.
	SignFor time.Duration
	// EventRate address-change events a second for EventDuration, against
	// the largest store of each driver while it also issues; no events
	// cell when EventDuration is 0.
	EventRate     int
	EventDuration time.Duration
	// CAProfile, if set, is a directory for CPU profiles of the CA taken
	// during each issuance window.
	CAProfile       string
	CABin, Dir, Out string
}

// Bounds of the scale command's flags.
const (
	maxPreload        = 100_000_000
	maxScaleClients   = 1024
	maxPreloadWorkers = 4096
	maxEventRate      = 1000
	maxScaleDuration  = time.Hour
)

func defaultScaleOptions() *scaleOptions {
	return &scaleOptions{
		Drivers: []string{driverBolt, driverPostgres}, Preload: []int{0, 100_000},
		Duration: 20 * time.Second, Warmup: 3 * time.Second, Clients: 8, Profiles: 2,
		PreloadWorkers: 256, SignFor: 5 * time.Second, EventRate: 100, EventDuration: 60 * time.Second,
	}
}

// Store drivers, as the CA's configuration names them.
const (
	driverBolt     = "bbolt"
	driverPostgres = "postgres"
)

func (o *scaleOptions) check() error {
	if len(o.Drivers) == 0 {
		return errors.New("--drivers: name at least one of bbolt, postgres")
	}
	for i, d := range o.Drivers {
		if d != driverBolt && d != driverPostgres {
			return fmt.Errorf("--drivers: %q is neither bbolt nor postgres", d)
		}
		if slices.Contains(o.Drivers[:i], d) {
			return fmt.Errorf("--drivers: %s is named twice", d)
		}
	}
	if len(o.Preload) == 0 {
		return errors.New("--preload: give at least one size, such as 0")
	}
	for i, n := range o.Preload {
		switch {
		case n < 0 || n > maxPreload:
			return fmt.Errorf("--preload: %d is outside 0 to %d", n, maxPreload)
		case i > 0 && n <= o.Preload[i-1]:
			return fmt.Errorf("--preload: sizes must ascend (%d after %d); each cell adds to the store of the one before", n, o.Preload[i-1])
		}
	}
	switch {
	case o.Duration < time.Second || o.Duration > maxScaleDuration:
		return fmt.Errorf("--duration %v is outside 1s to %v", o.Duration, maxScaleDuration)
	case o.Warmup < 0 || o.Warmup > 10*time.Minute:
		return fmt.Errorf("--warmup %v is outside 0 to 10m", o.Warmup)
	case o.Clients < 1 || o.Clients > maxScaleClients:
		return fmt.Errorf("--clients %d is outside 1 to %d", o.Clients, maxScaleClients)
	case o.Profiles != 1 && o.Profiles != 2:
		return fmt.Errorf("--profiles %d: want 1 (AUTH) or 2 (AUTH and SIGN)", o.Profiles)
	case o.PreloadWorkers < 1 || o.PreloadWorkers > maxPreloadWorkers:
		return fmt.Errorf("--preload-workers %d is outside 1 to %d", o.PreloadWorkers, maxPreloadWorkers)
	case o.SignFor < 500*time.Millisecond || o.SignFor > 10*time.Minute:
		return fmt.Errorf("--sign-for %v is outside 500ms to 10m", o.SignFor)
	case o.EventDuration < 0 || o.EventDuration > maxScaleDuration:
		return fmt.Errorf("--event-duration %v is outside 0 (no events cell) to %v", o.EventDuration, maxScaleDuration)
	case o.EventDuration > 0 && (o.EventRate < 1 || o.EventRate > maxEventRate):
		return fmt.Errorf("--event-rate %d is outside 1 to %d", o.EventRate, maxEventRate)
	}
	// Each event revokes the SIGN certificate of one preloaded holder,
	// and a holder has one: the largest store must hold enough.
	if need, have := o.events(), holdersOf(o.Preload[len(o.Preload)-1]); need > have {
		return fmt.Errorf("--event-rate %d for --event-duration %v revokes %d SIGN certificates, and the largest --preload (%d) holds %d: preload at least %d",
			o.EventRate, o.EventDuration, need, o.Preload[len(o.Preload)-1], have, 2*need)
	}
	return nil
}

// events is how many address-change events the events cell sends.
func (o *scaleOptions) events() int {
	if o.EventDuration <= 0 {
		return 0
	}
	return int(float64(o.EventRate) * o.EventDuration.Seconds())
}

// holdersOf is how many holders n preloaded certificates belong to: each
// has an AUTH and a SIGN certificate (n rounded up to even).
func holdersOf(n int) int { return (n + 1) / 2 }

func newScaleCommand() *cobra.Command {
	o := defaultScaleOptions()
	var verbose bool
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Issuance rate against stored size (bbolt, PostgreSQL), the CA's CPU per certificate, and revocation events under load, on a real shomei-ca",
		Long: `scale starts the real shomei-ca (the binary next to this one, or --ca-bin) on a
fresh SoftHSM2 token for each --drivers store (bbolt; PostgreSQL on a
throwaway cluster of Debian's postgresql, started and stopped here), and
for each --preload size, ascending on the same store:

  preload   synthetic issued certificates (a holder's AUTH and SIGN) are
            added through the store's own write path (store.Reserve and
            store.Complete, concurrently, so group commit batches them),
            each with the audit record the CA writes (ca.IssuanceRecord),
            copied from a certificate the CA issued with a new serial,
            holder and key hash (their signatures do not verify);
  start     shomei-ca starts on it: it verifies the audit log and
            reconciles every certificate with it; the time to listening;
  issue     --clients gRPC clients issue --profiles certificates per
            request (fresh P-256 card keys) for --duration after
            --warmup: certificates/s, latency, and the CA process's CPU
            time per certificate (/proc/<pid>/stat, the load generator
            being this process);
  disk      the bbolt file's size, or pg_database_size.

The CPU cost of one HSM signature of the issuer's key type is measured
apart, by a child process signing through package hsm on the same token
(--sign-for): the signing share is that cost divided by the CA's CPU per
certificate (one signature per certificate).

After the largest size of each driver, the events cell sends --event-rate
address-change events a second for --event-duration, each revoking one
preloaded holder's SIGN certificate, while the clients go on issuing, and
measures per event the time until the CA's OCSP says revoked (polled) and
until the partition's CRL lists it.

Markdown on stdout (and --out); progress on stderr. Targets checked: the
rate at the largest size within 20% of the rate at the smallest, signing
>= 70% of the CA's CPU per certificate, event -> OCSP p99 <= 1 s, event ->
CRL <= 60 s. Exit status 0 even when a target is missed; 1 on errors.`,
		Example: `  make bench-scale
  shomei-bench scale --preload 0,1000000 --drivers bbolt --duration 30s --out var/bench-scale.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			rep, err := measureScale(cmd.Context(), o, progressLogger(verbose))
			if rep != nil {
				if perr := printReport(cmd.OutOrStdout(), o.Out, rep); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.Drivers, "drivers", o.Drivers, "stores to measure: bbolt, postgres")
	f.IntSliceVar(&o.Preload, "preload", o.Preload, "synthetic certificates stored before each cell, ascending (e.g. 0,1000000,10000000)")
	f.DurationVar(&o.Duration, "duration", o.Duration, "measured time of each issuance cell")
	f.DurationVar(&o.Warmup, "warmup", o.Warmup, "issuance before each measured window (connections, caches)")
	f.IntVar(&o.Clients, "clients", o.Clients, "concurrent gRPC clients issuing")
	f.IntVar(&o.Profiles, "profiles", o.Profiles, "certificates per Issue request: 2 (AUTH and SIGN) or 1 (AUTH)")
	f.IntVar(&o.PreloadWorkers, "preload-workers", o.PreloadWorkers, "concurrent synthetic issuances while preloading")
	f.DurationVar(&o.SignFor, "sign-for", o.SignFor, "how long the raw HSM signing loop (CPU per signature) runs")
	f.IntVar(&o.EventRate, "event-rate", o.EventRate, "address-change events a second in the events cell")
	f.DurationVar(&o.EventDuration, "event-duration", o.EventDuration, "how long events are sent (0: no events cell)")
	f.StringVar(&o.CAProfile, "ca-profile", "", "write a CPU profile of the CA during each issuance window to this directory (<driver>-<preload>.pprof; the CA serves them only with SHOMEI_PPROF_LISTEN set, which this sets)")
	f.StringVar(&o.CABin, "ca-bin", "", "the shomei-ca binary (default: next to this program, else on PATH)")
	runFlags(cmd, &o.Dir, &o.Out, &verbose)
	return cmd
}

// measureScale runs every driver's cells and returns the report, with as
// much as was measured when it fails.
func measureScale(ctx context.Context, o *scaleOptions, log *slog.Logger) (*scaleReport, error) {
	rep := &scaleReport{Options: *o, Started: time.Now(), CPU: cpuModel()}
	defer func() { rep.Finished = time.Now() }()
	caBin, err := findCABinary(o.CABin)
	if err != nil {
		return nil, err
	}
	work, cleanup, err := workDir(o.Dir, "shomei-bench-scale-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	for _, driver := range o.Drivers {
		if err := measureDriver(ctx, o, rep, driver, caBin, work, log); err != nil {
			return rep, fmt.Errorf("%s: %w", driver, err)
		}
	}
	return rep, nil
}

// measureDriver runs one driver's cells on one store, and its events cell.
func measureDriver(ctx context.Context, o *scaleOptions, rep *scaleReport, driver, caBin, work string, log *slog.Logger) error {
	log = log.With("driver", driver)
	d, err := newScaleCA(ctx, o, driver, caBin, work, log)
	if err != nil {
		return err
	}
	defer d.close()
	if rep.Sign.Signatures == 0 {
		log.Info("CPU per HSM signature: a signing loop in a child process", "for", o.SignFor)
		if rep.Sign, err = measureSignCost(ctx, d.conf, o.SignFor); err != nil {
			return fmt.Errorf("the HSM signing loop: %w", err)
		}
	}
	if driver == driverPostgres {
		rep.PGSettings = d.pgSettings()
	}
	for i, size := range o.Preload {
		last := i == len(o.Preload)-1
		c, ev, err := d.cell(ctx, size, last && o.events() > 0)
		if c != nil {
			rep.Cells = append(rep.Cells, *c)
		}
		if ev != nil {
			rep.Events = append(rep.Events, *ev)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
