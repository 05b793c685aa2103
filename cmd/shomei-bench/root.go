package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "shomei-bench",
		Short:         "Measure Shomei against peers on this machine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newOCSPCommand(), newServeCommand(), newHoldCommand(), newHostileCommand(), newPresignCommand(), newPresignServeCommand())
	root.AddCommand(newScaleCommand(), newSignCommand())
	return root
}

func newOCSPCommand() *cobra.Command {
	o := defaultOCSPOptions()
	var verbose bool
	cmd := &cobra.Command{
		Use:   "ocsp",
		Short: "OCSP responses/s: Shomei (cached, and freshly signed) against openssl ocsp and a bare net/http ceiling",
		Long: `ocsp measures, in one run and from one load generator, OCSP responses per
second, p50 and p99 latency of three servers on 127.0.0.1:

  shomei   Shomei's OCSP responder (package ocsp, cache on) over net/http,
           its delegated responder key (RSA-2048) in a throwaway SoftHSM2
           token, statuses in a bbolt file of --certs certificates;
  peer     openssl ocsp -index index.txt -multi <CPUs> serving the same
           certificates, with a software RSA-2048 responder key of its own
           certified by the same issuer;
  ceiling  a bare net/http handler sending one response Shomei signed
           beforehand for every POST.

Cached: POSTed requests (SHA-1 CertID, no nonce) for --hot serials whose
responses were first put in Shomei's cache (that fill is timed and reported
as an uncached rate), at each --concurrency for --duration.
Uncached: requests with a nonce, which Shomei signs every time, at each
--uncached concurrency, next to the raw RSA-2048 signing rate of the same
token through hsm.Signer with --hsm-workers workers.

openssl ocsp listens on every interface, so the command re-executes itself
under 'unshare -n' (a network namespace with only loopback; needs root or
user namespaces, plus iproute2's ip) unless it already runs in one.

The results are printed as Markdown on stdout (and written to --out);
progress goes to stderr. The issue's targets are checked: Shomei cached
>= 15x the peer and >= 80% of the ceiling at every concurrency, p99 < 5 ms
at concurrency 64. Exit status 0 even when a target is missed; 1 on errors.`,
		Example: `  make bench-ocsp
  shomei-bench ocsp --duration 5s --concurrency 1,8,64 --out bench.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			reexecuted, err := inOwnNetns(cmd.Context(), os.Args[1:])
			if reexecuted || err != nil {
				return err
			}
			return runOCSP(cmd.Context(), o, cmd.OutOrStdout(), progressLogger(verbose))
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Certs, "certs", o.Certs, "end-entity certificates in the index and the Source")
	f.Float64Var(&o.Revoked, "revoked", o.Revoked, "fraction of them revoked")
	f.IntVar(&o.Hot, "hot", o.Hot, "serials requested in the cached cells, put in Shomei's cache first")
	f.DurationVar(&o.Duration, "duration", o.Duration, "measured time of each cell")
	f.DurationVar(&o.Warmup, "warmup", o.Warmup, "unmeasured load before each cell (connections, caches)")
	f.IntSliceVar(&o.Concurrency, "concurrency", o.Concurrency, "concurrent requests of the cached cells")
	f.IntSliceVar(&o.Uncached, "uncached", o.Uncached, "concurrent requests of the uncached (nonce) cells")
	f.IntSliceVar(&o.HSMWorkers, "hsm-workers", o.HSMWorkers, "workers of the raw hsm.Signer cells")
	f.IntVar(&o.FillConcurrency, "fill-concurrency", o.FillConcurrency, "concurrent requests while filling Shomei's cache")
	f.IntVar(&o.PeerProcs, "peer-procs", o.PeerProcs, "openssl ocsp -multi: responder processes of the peer")
	f.IntVar(&o.Sample, "verify-every", o.Sample, "verify every Nth response in full (signature, serial, status); all are checked structurally")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the dataset (serials, revocations)")
	f.StringVar(&o.Profile, "profile", "", "write CPU profiles of the server process and of the load generator during the cached cells of Shomei and the ceiling to this directory (<server>-cached-<concurrency>.pprof, generator-<server>-cached-<concurrency>.pprof)")
	runFlags(cmd, &o.Dir, &o.Out, &verbose)
	return cmd
}

// runFlags adds the flags every measuring command has: its work
// directory, where its report also goes, and how much it logs
// (progressLogger).
func runFlags(cmd *cobra.Command, dir, out *string, verbose *bool) {
	f := cmd.Flags()
	f.StringVar(dir, "dir", "", "work directory, kept (default: a temporary one, removed)")
	f.StringVar(out, "out", "", "also write the Markdown report to this file")
	f.BoolVarP(verbose, "verbose", "v", false, "log in detail")
}

// newServeCommand is the server process the ocsp command starts.
func newServeCommand() *cobra.Command {
	return newChildCommand("ocsp-serve", "Serve Shomei's responder and the ceiling for the ocsp command (internal)", serveConfigFile, serve)
}

// newChildCommand is a hidden server process a benchmark command starts
// in its work directory (--dir, holding configFile): it serves until its
// standard input closes (serveChild).
func newChildCommand(use, short, configFile string, run func(ctx context.Context, dir string, stdin io.Reader, stdout io.Writer) error) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    use,
		Short:  short,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), dir, os.Stdin, os.Stdout)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "work directory holding "+configFile)
	cmd.MarkFlagRequired("dir")
	return cmd
}

// ocspOptions are the ocsp command's flags.
type ocspOptions struct {
	Certs           int
	Revoked         float64
	Hot             int
	Duration        time.Duration
	Warmup          time.Duration
	Concurrency     []int
	Uncached        []int
	HSMWorkers      []int
	FillConcurrency int
	PeerProcs       int
	Sample          int
	Seed            uint64
	Dir             string
	Out             string
	Profile         string
}

func defaultOCSPOptions() *ocspOptions {
	return &ocspOptions{
		Certs:           100_000,
		Revoked:         0.10,
		Hot:             10_000,
		Duration:        5 * time.Second,
		Warmup:          500 * time.Millisecond,
		Concurrency:     []int{1, 8, 64},
		Uncached:        []int{1, 2, 8},
		HSMWorkers:      []int{1, 2},
		FillConcurrency: 8,
		PeerProcs:       runtime.NumCPU(),
		Sample:          64,
		Seed:            1,
	}
}

func (o *ocspOptions) check() error {
	positive := func(name string, vs ...int) error {
		for _, v := range vs {
			if v <= 0 {
				return fmt.Errorf("--%s: %d is not positive", name, v)
			}
		}
		return nil
	}
	for _, c := range []struct {
		name string
		vs   []int
	}{
		{"certs", []int{o.Certs}}, {"hot", []int{o.Hot}}, {"concurrency", o.Concurrency},
		{"uncached", o.Uncached}, {"hsm-workers", o.HSMWorkers}, {"fill-concurrency", []int{o.FillConcurrency}},
		{"peer-procs", []int{o.PeerProcs}}, {"verify-every", []int{o.Sample}},
	} {
		if err := positive(c.name, c.vs...); err != nil {
			return err
		}
	}
	switch {
	case o.Hot > o.Certs:
		return fmt.Errorf("--hot %d is more than --certs %d", o.Hot, o.Certs)
	case o.Revoked < 0 || o.Revoked > 1:
		return fmt.Errorf("--revoked %v is not a fraction", o.Revoked)
	case o.Duration <= 0 || o.Warmup < 0:
		return fmt.Errorf("--duration must be positive and --warmup not negative")
	}
	return nil
}

// progressLogger is where a measuring command says what it is doing: text
// on standard error, in detail with --verbose; the results go to standard
// output.
func progressLogger(verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
