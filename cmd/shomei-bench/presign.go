package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/ocsp"
)

// presignOptions are the presign command's flags.
type presignOptions struct {
	Certs       int
	Revoked     float64
	Hot         int
	Duration    time.Duration
	Warmup      time.Duration
	Concurrency []int
	Rounds      int
	Budget      float64
	Workers     int
	CacheSize   int
	Validity    time.Duration
	Sample      int
	Seed        uint64
	Within      time.Duration
	Dir, Out    string
	Profile     string
}

func defaultPresignOptions() *presignOptions {
	return &presignOptions{
		Certs: 100_000, Revoked: 0.10, Hot: 10_000,
		Duration: 5 * time.Second, Warmup: time.Second, Concurrency: []int{8, 64}, Rounds: 3,
		Budget: ocsp.MaxPresignBudget, Workers: 4, Validity: 24 * time.Hour, Sample: 64, Seed: 1, Within: 2 * time.Hour,
	}
}

func (o *presignOptions) check() error {
	switch {
	case o.Certs <= 0 || o.Hot <= 0 || o.Hot > o.Certs:
		return fmt.Errorf("--certs %d and --hot %d: both positive, hot at most certs", o.Certs, o.Hot)
	case o.Revoked < 0 || o.Revoked > 1:
		return fmt.Errorf("--revoked %v is not a fraction", o.Revoked)
	case o.Duration <= 0 || o.Warmup < 0 || o.Within <= 0:
		return errors.New("--duration and --within must be positive, --warmup not negative")
	case o.Budget <= 0 || o.Budget > ocsp.MaxPresignBudget:
		return fmt.Errorf("--budget %v: more than 0, at most %d", o.Budget, ocsp.MaxPresignBudget)
	case o.Workers <= 0 || o.Workers > ocsp.MaxPresignWorkers:
		return fmt.Errorf("--workers %d: 1 to %d", o.Workers, ocsp.MaxPresignWorkers)
	case o.Rounds <= 0 || o.Rounds > 100:
		return fmt.Errorf("--rounds %d: 1 to 100", o.Rounds)
	case o.Sample <= 0 || o.CacheSize < 0:
		return errors.New("--verify-every must be positive, --cache-size not negative")
	case o.Validity < time.Hour || o.Validity > 72*time.Hour:
		return fmt.Errorf("--validity %v: 1h to 72h (the benchmark's responder certificate is valid 7 days)", o.Validity)
	}
	for _, c := range o.Concurrency {
		if c <= 0 {
			return fmt.Errorf("--concurrency %d is not positive", c)
		}
	}
	return nil
}

func newPresignCommand() *cobra.Command {
	o := defaultPresignOptions()
	var verbose bool
	cmd := &cobra.Command{
		Use:   "presign",
		Short: "OCSP for every certificate: pre-sign N responses into the CA's store, then query all N uniformly against a hot set",
		Long: `presign measures Shomei's pre-signed OCSP responses (issue 12) in one run:

  1. --certs certificate records (--revoked of them revoked) are written
     straight into a new CA store (bbolt, ca/store), as a bulk loader does;
  2. a server process (presign-serve) runs Shomei's OCSP responder over
     that store, its RSA-2048 responder key in a throwaway SoftHSM2 token,
     and its pre-signer (budget --budget signatures/s, --workers at once),
     which queues every certificate (the backfill) and pre-signs it: the
     time, the HSM signatures, the server's CPU and memory are reported;
  3. at each --concurrency, POSTed requests (SHA-1 CertID, no nonce) for
     --hot serials, then for serials drawn uniformly from all --certs, each
     for --warmup then --duration, --rounds times in turn (added up, so
     that other load on the machine hits both alike); the signatures the responder made during
     each cell are reported (target during the uniform cell: 0) and the
     uniform rate against the hot rate (target: at least 80%);
  4. the store's pages holding the responses and their queue are counted.

Results are printed as Markdown on stdout (and written to --out).`,
		Example: `  make bench-presign
  shomei-bench presign --certs 1000000 --out var/bench-presign.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			rep, err := measurePresign(cmd.Context(), o, progressLogger(verbose))
			if err != nil {
				return err
			}
			return printReport(cmd.OutOrStdout(), o.Out, rep)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Certs, "certs", o.Certs, "certificates in the store, all pre-signed")
	f.Float64Var(&o.Revoked, "revoked", o.Revoked, "fraction of them revoked")
	f.IntVar(&o.Hot, "hot", o.Hot, "serials of the hot cells")
	f.DurationVar(&o.Duration, "duration", o.Duration, "measured time of each cell")
	f.DurationVar(&o.Warmup, "warmup", o.Warmup, "unmeasured load before each cell")
	f.IntSliceVar(&o.Concurrency, "concurrency", o.Concurrency, "concurrent requests of the cells")
	f.IntVar(&o.Rounds, "rounds", o.Rounds, "hot and uniform cells alternate this many times at each concurrency, their results added")
	f.Float64Var(&o.Budget, "budget", o.Budget, "the pre-signer's signatures a second (ocsp.presign.budget)")
	f.IntVar(&o.Workers, "workers", o.Workers, "the pre-signer's signatures at once (ocsp.presign.workers)")
	f.IntVar(&o.CacheSize, "cache-size", o.CacheSize, "the responder's response cache (ocsp.cache_size); 0: its default")
	f.DurationVar(&o.Validity, "validity", o.Validity, "response validity (ocsp.response_validity); responses are refreshed at 3/8 of it, which must not fall in the cells")
	f.IntVar(&o.Sample, "verify-every", o.Sample, "verify every Nth response in full; all are checked structurally")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the dataset")
	f.DurationVar(&o.Within, "within", o.Within, "give up when pre-signing takes longer")
	f.StringVar(&o.Profile, "profile", "", "write a CPU profile of the server process during each cell to this directory (presign-<set>-<concurrency>-<round>.pprof)")
	runFlags(cmd, &o.Dir, &o.Out, &verbose)
	return cmd
}

func newPresignServeCommand() *cobra.Command {
	return newChildCommand("presign-serve", "Serve Shomei's responder and pre-signer over a CA store for the presign command (internal)", presignConfigFile, presignServe)
}

// presignReport is what one presign run measured.
type presignReport struct {
	Options           presignOptions
	Started, Finished time.Time
	CPU               string
	RevokedCount      int
	// Pre-signing.
	Load       time.Duration // writing the records into the store
	Presign    time.Duration // from the server's start to every response stored
	Signatures float64       // the pre-signer's HSM signatures
	Stored     float64
	ServerCPU  float64 // the server process's CPU seconds meanwhile
	// Memory of the server process after pre-signing (heap after a GC),
	// and after the cells (its response cache full).
	HeapAfterPresign, RSSAfterPresign, HeapAfterCells, RSSAfterCells float64
	// FirstPass is one request for every certificate, in random order,
	// before the cells; FirstPassSigned the signatures it cost.
	FirstPass       result
	FirstPassSigned float64
	// Cells[concurrency] = {hot, uniform}.
	Cells map[int][2]presignCell
	// The store after the run.
	Disk diskUse
}

// presignCell is one cell and what the responder did meanwhile.
type presignCell struct {
	result
	// OnDemand: signatures made for requests; Presigner: by the
	// pre-signer; StoreHits: answered from a pre-signed response read
	// from the store; CacheHits: from the memory cache.
	OnDemand, Presigner, StoreHits, CacheHits float64
}

// add is c and d measured one after the other: their responses, failures
// and measured time, latencies and counts together.
func (c presignCell) add(d presignCell) presignCell {
	out := c
	out.Concurrency = d.Concurrency
	out.OK += d.OK
	out.Failed += d.Failed
	out.Elapsed += d.Elapsed
	out.Conns += d.Conns
	if out.FirstError == "" {
		out.FirstError = d.FirstError
	}
	out.Latencies = append(slices.Clone(c.Latencies), d.Latencies...)
	slices.Sort(out.Latencies)
	out.OnDemand += d.OnDemand
	out.Presigner += d.Presigner
	out.StoreHits += d.StoreHits
	out.CacheHits += d.CacheHits
	return out
}

// diskUse is the bbolt pages of the store's buckets.
type diskUse struct {
	FileBytes               int64
	Responses, Queue, Certs bucketUse
}

type bucketUse struct {
	Keys  int
	Bytes int64 // leaf and branch pages in use
}

// presignDone: every response stored and nothing due.
func presignDone(ctx context.Context, metrics string, n int) (bool, error) {
	vs, err := samples(ctx, metrics, "shomei_ocsp_presigned_total", "shomei_ocsp_presign_backlog")
	if err != nil {
		return false, err
	}
	stored, backlog := vs[0], vs[1]
	return stored >= float64(n) && backlog == 0, nil
}

// measurePresign runs the benchmark.
func measurePresign(ctx context.Context, o *presignOptions, log *slog.Logger) (_ *presignReport, err error) {
	rep := &presignReport{Options: *o, Started: time.Now(), CPU: cpuModel(), Cells: map[int][2]presignCell{}}
	env, err := newBenchEnv(o.Dir, "shomei-bench-presign-", 1)
	if err != nil {
		return nil, err
	}
	defer env.cleanup()
	dir, module, exe, pinFile, hsmDir, tok := env.dir, env.module, env.exe, env.pinFile, env.hsmDir, env.tok
	now := time.Now()
	log.Info("generating the issuer and responder keys")
	p, err := newPKI(ctx, tok, now)
	tok.Close()
	if err != nil {
		return nil, err
	}

	log.Info("writing the certificate records into a new CA store", "certificates", o.Certs)
	data := newDataset(o.Certs, o.Revoked, o.Seed, now)
	rep.RevokedCount = data.revoked()
	storePath := filepath.Join(dir, "ca", "shomei.db")
	start := time.Now()
	if err := bulkLoad(storePath, data); err != nil {
		return nil, err
	}
	rep.Load = time.Since(start)

	files := map[string]string{"issuer": filepath.Join(dir, "issuer.pem"), "responder": filepath.Join(dir, "responder.pem")}
	if err := errors.Join(writePEM(files["issuer"], "CERTIFICATE", p.Issuer.Raw), writePEM(files["responder"], "CERTIFICATE", p.Responder.Raw)); err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(presignConfig{
		responderFiles: responderFiles{SoftHSMConf: hsmDir.Conf, Module: module, TokenLabel: tokenLabel, PINFile: pinFile,
			ResponderKey: p.ResponderRef, IssuerCert: files["issuer"], ResponderCert: files["responder"]},
		Store:  storePath,
		Budget: o.Budget, Workers: o.Workers, CacheSize: o.CacheSize, Validity: o.Validity})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, presignConfigFile), cfg, 0o600); err != nil {
		return nil, err
	}
	log.Info("starting the server: its pre-signer queues and signs every certificate", "budget", o.Budget, "workers", o.Workers)
	start = time.Now()
	srv, err := startServer(ctx, exe, "presign-serve", dir)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			err = errors.Join(err, srv.stop())
		}
	}()
	cpu0, err := sample(ctx, srv.Metrics, "process_cpu_seconds_total")
	if err != nil {
		return nil, err
	}
	for last := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		done, err := presignDone(ctx, srv.Metrics, o.Certs)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		if time.Since(start) > o.Within {
			return nil, fmt.Errorf("pre-signing %d responses took more than --within %v", o.Certs, o.Within)
		}
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			stored, _ := sample(ctx, srv.Metrics, "shomei_ocsp_presigned_total")
			rate, _ := sample(ctx, srv.Metrics, "shomei_ocsp_presign_signatures_per_second")
			log.Info("pre-signing", "stored", int(stored), "of", o.Certs, "signatures/s", int(rate))
		}
	}
	rep.Presign = time.Since(start)
	presigned, err := samples(ctx, srv.Metrics, "process_cpu_seconds_total", "shomei_ocsp_presign_signatures_total", "shomei_ocsp_presigned_total")
	if err != nil {
		return nil, err
	}
	rep.ServerCPU, rep.Signatures, rep.Stored = presigned[0]-cpu0, presigned[1], presigned[2]
	if rep.HeapAfterPresign, rep.RSSAfterPresign, err = serverMemory(ctx, srv.Metrics); err != nil {
		return nil, err
	}
	log.Info("pre-signed", "responses", int(rep.Stored), "in", rep.Presign.Round(time.Second), "signatures", int(rep.Signatures))

	// The cells.
	hashes, err := hashesOf(p.Issuer)
	if err != nil {
		return nil, err
	}
	uniform := &workload{URL: srv.Shomei, Issuer: p.Issuer, Sample: o.Sample}
	for i := range data.Entries {
		der, err := buildRequest(hashes, data.Entries[i].Serial, false)
		if err != nil {
			return nil, err
		}
		uniform.Requests, uniform.Entries = append(uniform.Requests, der), append(uniform.Entries, &data.Entries[i])
	}
	hot := &workload{URL: srv.Shomei, Issuer: p.Issuer, Sample: o.Sample}
	for _, i := range rand.New(rand.NewPCG(o.Seed, 3)).Perm(len(data.Entries))[:o.Hot] {
		hot.Requests, hot.Entries = append(hot.Requests, uniform.Requests[i]), append(hot.Entries, uniform.Entries[i])
	}
	// One request for every certificate first, in random order: the
	// server's first read of each store page maps it (a page fault, about
	// as costly as the rest of the read); a server that has run a while
	// has its pages mapped. Reported apart.
	log.Info("asking once about every certificate", "certificates", o.Certs)
	before, err := sample(ctx, srv.Metrics, "shomei_ocsp_signing_duration_seconds_count")
	if err != nil {
		return nil, err
	}
	rep.FirstPass = uniform.fill(ctx, maxOf(o.Concurrency))
	after, err := sample(ctx, srv.Metrics, "shomei_ocsp_signing_duration_seconds_count")
	if err != nil {
		return nil, err
	}
	rep.FirstPassSigned = after - before
	if rep.FirstPass.Failed > 0 {
		return nil, fmt.Errorf("asking about every certificate: %d failed; first: %s", rep.FirstPass.Failed, rep.FirstPass.FirstError)
	}
	// Hot and uniform alternate, --rounds times each, so that a
	// neighbour's load on the machine hits both alike.
	for _, conc := range o.Concurrency {
		var pair [2]presignCell
		for round := range o.Rounds {
			for i, w := range []*workload{hot, uniform} {
				profile := ""
				if o.Profile != "" {
					profile = filepath.Join(o.Profile, fmt.Sprintf("presign-%s-%d-%d.pprof", []string{"hot", "uniform"}[i], conc, round+1))
				}
				c, err := presignRun(ctx, srv.Metrics, w, cell{Concurrency: conc, Warmup: o.Warmup, Duration: o.Duration}, profile)
				if err != nil {
					return nil, err
				}
				log.Info("cell", "set", []string{"hot", "uniform"}[i], "concurrency", conc, "round", round+1, "responses/s", int(c.Rate()),
					"p99", c.Percentile(0.99), "signed on demand", c.OnDemand, "store hits", c.StoreHits, "failed", c.Failed, "first_error", c.FirstError)
				pair[i] = pair[i].add(c)
			}
		}
		rep.Cells[conc] = pair
	}
	if rep.HeapAfterCells, rep.RSSAfterCells, err = serverMemory(ctx, srv.Metrics); err != nil {
		return nil, err
	}
	stopped = true
	if err := srv.stop(); err != nil {
		return nil, err
	}
	if rep.Disk, err = measureDisk(storePath); err != nil {
		return nil, err
	}
	rep.Finished = time.Now()
	return rep, nil
}

// presignRun runs one cell and reads what the responder did meanwhile.
// With profile set, a CPU profile of the server is written there over the
// measured time.
func presignRun(ctx context.Context, metrics string, w *workload, c cell, profile string) (presignCell, error) {
	read := func() ([]float64, error) {
		return samples(ctx, metrics, "shomei_ocsp_signing_duration_seconds_count", "shomei_ocsp_presign_signatures_total",
			"shomei_ocsp_presigned_hits_total", "shomei_ocsp_cache_hits_total")
	}
	before, err := read()
	if err != nil {
		return presignCell{}, err
	}
	profiled := make(chan error, 1)
	if profile != "" {
		go func() {
			time.Sleep(c.Warmup)
			profiled <- cpuProfile(ctx, metrics, c.Duration, profile)
		}()
	} else {
		profiled <- nil
	}
	r := w.run(ctx, c)
	if err := <-profiled; err != nil {
		return presignCell{}, fmt.Errorf("profile: %w", err)
	}
	after, err := read()
	if err != nil {
		return presignCell{}, err
	}
	return presignCell{result: r, OnDemand: after[0] - before[0], Presigner: after[1] - before[1],
		StoreHits: after[2] - before[2], CacheHits: after[3] - before[3]}, ctx.Err()
}

// bulkLoad makes a new CA store at path and writes d's certificates into
// it directly, as ISSUED records of SIGN generation 1 (the fields OCSP
// reads), in transactions of 10,000: no issuance, no status-change log,
// no queue entry; the pre-signer's backfill finds them.
func bulkLoad(path string, d *dataset) error {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	db, err := engine.OpenBolt(path, 5*time.Second)
	if err != nil {
		return err
	}
	marshal := proto.MarshalOptions{Deterministic: true}
	const batch = 10_000
	for start := 0; start < len(d.Entries); start += batch {
		chunk := d.Entries[start:min(start+batch, len(d.Entries))]
		err = db.Update(func(tx engine.Tx) error {
			b := tx.Bucket([]byte("certs"))
			for _, e := range chunk {
				rec := &storev1.Certificate{Serial: e.Serial.Bytes(), Profile: storev1.Profile_PROFILE_SIGN, IssuerGeneration: 1,
					State: storev1.CertState_CERT_STATE_ISSUED, NotAfter: timestamppb.New(d.NotAfter)}
				if e.Revoked {
					rec.Revocation = &storev1.Revocation{RevokedAt: timestamppb.New(e.RevokedAt), Reason: int32(e.Reason)}
				}
				v, err := marshal.Marshal(rec)
				if err != nil {
					return err
				}
				if err := b.Put(rec.Serial, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			db.Close()
			return fmt.Errorf("bulk load: %w", err)
		}
	}
	return db.Close()
}

// measureDisk counts the pages of the store's buckets (the store closed).
func measureDisk(path string) (diskUse, error) {
	var u diskUse
	fi, err := os.Stat(path)
	if err != nil {
		return u, err
	}
	u.FileBytes = fi.Size()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return u, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for name, to := range map[string]*bucketUse{"ocsp_responses": &u.Responses, "ocsp_queue": &u.Queue, "certs": &u.Certs} {
			b := tx.Bucket([]byte(name))
			if b == nil {
				return fmt.Errorf("no bucket %s", name)
			}
			s := b.Stats()
			to.Keys, to.Bytes = s.KeyN, int64(s.LeafInuse+s.BranchInuse)
		}
		return nil
	})
	return u, err
}

// serverMemory is the server's Go heap in use after a collection
// (/debug/heap) and its resident set.
func serverMemory(ctx context.Context, metrics string) (heap, rss float64, err error) {
	base := strings.TrimSuffix(metrics, "/metrics")
	if heap, err = sample(ctx, base+"/debug/heap", "heap_inuse_bytes"); err != nil {
		return 0, 0, err
	}
	rss, err = sample(ctx, metrics, "process_resident_memory_bytes")
	return heap, rss, err
}
