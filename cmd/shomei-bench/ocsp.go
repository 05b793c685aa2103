package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/softhsm"
)

// tokenLabel is the throwaway SoftHSM2 token's label.
const tokenLabel = "shomei-bench"

// Server names, as the report shows them.
const (
	serverShomei  = "shomei"
	serverPeer    = "peer"
	serverCeiling = "ceiling"
)

// runOCSP is the ocsp command, run in a network namespace of its own: it
// measures, then prints the report (and writes it to o.Out).
func runOCSP(ctx context.Context, o *ocspOptions, stdout io.Writer, log *slog.Logger) error {
	rep, err := measureOCSP(ctx, o, log)
	if err != nil {
		return err
	}
	return printReport(stdout, o.Out, rep)
}

// measureOCSP sets up the HSM, the dataset and the three servers, and
// measures.
func measureOCSP(ctx context.Context, o *ocspOptions, log *slog.Logger) (_ *report, err error) {
	rep := &report{Options: *o, Started: time.Now()}
	if rep.OpenSSL, err = opensslVersion(ctx); err != nil {
		return nil, err
	}
	// The HSM: a throwaway token with the issuer's and Shomei's responder
	// keys.
	env, err := newBenchEnv(o.Dir, "shomei-bench-ocsp-", maxOf(o.HSMWorkers))
	if err != nil {
		return nil, err
	}
	defer env.cleanup()
	dir, module, exe, pinFile, hsmDir, tok := env.dir, env.module, env.exe, env.pinFile, env.hsmDir, env.tok
	defer tok.Close()
	now := time.Now()
	log.Info("generating the issuer and responder keys")
	p, err := newPKI(ctx, tok, now)
	if err != nil {
		return nil, err
	}

	// The certificates both responders know.
	log.Info("writing the dataset", "certificates", o.Certs)
	data := newDataset(o.Certs, o.Revoked, o.Seed, now)
	rep.RevokedCount = data.revoked()
	files := peerFiles{
		Index:     filepath.Join(dir, "index.txt"),
		CA:        filepath.Join(dir, "ca.pem"),
		Responder: filepath.Join(dir, "peer-responder.pem"),
		Key:       filepath.Join(dir, "peer-responder-key.pem"),
	}
	boltPath := filepath.Join(dir, "status.db")
	peerKey, err := x509.MarshalPKCS8PrivateKey(p.PeerKey)
	if err != nil {
		return nil, err
	}
	shomeiResponder := filepath.Join(dir, "shomei-responder.pem")
	err = errors.Join(
		data.writeIndexFile(files.Index),
		data.writeBolt(boltPath),
		writePEM(files.CA, "CERTIFICATE", p.Issuer.Raw),
		writePEM(files.Responder, "CERTIFICATE", p.PeerResponder.Raw),
		writePEM(files.Key, "PRIVATE KEY", peerKey),
		writePEM(shomeiResponder, "CERTIFICATE", p.Responder.Raw),
	)
	if err != nil {
		return nil, err
	}

	// The requests: the hot set, without and with a nonce.
	hashes, err := hashesOf(p.Issuer)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 2))
	hot := &workload{Issuer: p.Issuer, Sample: o.Sample}
	nonced := &workload{Issuer: p.Issuer, Sample: o.Sample, Nonce: true}
	for _, i := range rng.Perm(len(data.Entries))[:o.Hot] {
		e := &data.Entries[i]
		plain, err := buildRequest(hashes, e.Serial, false)
		if err != nil {
			return nil, err
		}
		withNonce, err := buildRequest(hashes, e.Serial, true)
		if err != nil {
			return nil, err
		}
		hot.Requests, hot.Entries = append(hot.Requests, plain), append(hot.Entries, e)
		nonced.Requests, nonced.Entries = append(nonced.Requests, withNonce), append(nonced.Entries, e)
	}
	ceilingReq := filepath.Join(dir, "ceiling-request.der")
	if err := os.WriteFile(ceilingReq, hot.Requests[0], 0o600); err != nil {
		return nil, err
	}

	// The servers.
	cfg, err := json.Marshal(serveConfig{
		responderFiles: responderFiles{SoftHSMConf: hsmDir.Conf, Module: module, TokenLabel: tokenLabel, PINFile: pinFile,
			ResponderKey: p.ResponderRef, IssuerCert: files.CA, ResponderCert: shomeiResponder},
		Bolt: boltPath, CeilingRequest: ceilingReq,
	})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, serveConfigFile), cfg, 0o600); err != nil {
		return nil, err
	}
	srv, err := startServers(ctx, exe, dir)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	peer, err := startPeer(ctx, files, o.PeerProcs, dir)
	if err != nil {
		return nil, err
	}
	defer peer.stop()
	rep.PeerCommand = "openssl " + strings.Join(peer.Args, " ")
	log.Info("servers up", "shomei", srv.Shomei, "ceiling", srv.Ceiling, "peer", peer.URL)

	// Fill Shomei's cache with the hot set: every response signed.
	log.Info("filling Shomei's cache", "serials", o.Hot, "concurrency", o.FillConcurrency)
	hot.URL = srv.Shomei
	rep.Fill = hot.fill(ctx, o.FillConcurrency)
	if rep.Fill.Failed > 0 {
		return nil, fmt.Errorf("filling the cache: %d of %d responses failed; first: %s", rep.Fill.Failed, o.Hot, rep.Fill.FirstError)
	}

	// Cached: the three servers, interleaved so that a noisy neighbour
	// hits all of them alike.
	misses, err := sample(ctx, srv.Metrics, "shomei_ocsp_cache_misses_total")
	if err != nil {
		return nil, err
	}
	rep.Cached = map[string]map[int]result{}
	for _, conc := range o.Concurrency {
		for _, s := range []struct{ name, url string }{
			{serverCeiling, srv.Ceiling}, {serverShomei, srv.Shomei}, {serverPeer, peer.URL},
		} {
			w := *hot
			w.URL = s.url
			if s.name == serverCeiling {
				w.Fixed = hot.Entries[0]
			}
			var profiled chan error
			if o.Profile != "" && s.name != serverPeer {
				profiled = make(chan error, 2)
				go func() {
					time.Sleep(o.Warmup)
					profiled <- cpuProfile(ctx, srv.Metrics, o.Duration, filepath.Join(o.Profile, fmt.Sprintf("%s-cached-%d.pprof", s.name, conc)))
				}()
				go func() {
					time.Sleep(o.Warmup)
					profiled <- selfProfile(ctx, o.Duration, filepath.Join(o.Profile, fmt.Sprintf("generator-%s-cached-%d.pprof", s.name, conc)))
				}()
			}
			r := w.run(ctx, cell{Concurrency: conc, Warmup: o.Warmup, Duration: o.Duration})
			if profiled != nil {
				if err := errors.Join(<-profiled, <-profiled); err != nil {
					return nil, fmt.Errorf("profile: %w", err)
				}
			}
			log.Info("cached", "server", s.name, "concurrency", conc, "responses/s", int(r.Rate()),
				"p50", r.Percentile(0.5), "p99", r.Percentile(0.99), "failed", r.Failed, "conns", r.Conns, "first_error", r.FirstError)
			if rep.Cached[s.name] == nil {
				rep.Cached[s.name] = map[int]result{}
			}
			rep.Cached[s.name][conc] = r
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	after, err := sample(ctx, srv.Metrics, "shomei_ocsp_cache_misses_total")
	if err != nil {
		return nil, err
	}
	rep.CachedMisses = int(after - misses)

	// Uncached: a nonce in every request, so every response is signed.
	nonced.URL = srv.Shomei
	for _, conc := range o.Uncached {
		r := nonced.run(ctx, cell{Concurrency: conc, Warmup: o.Warmup, Duration: o.Duration})
		log.Info("uncached", "concurrency", conc, "responses/s", int(r.Rate()), "p50", r.Percentile(0.5), "p99", r.Percentile(0.99), "failed", r.Failed)
		rep.Uncached = append(rep.Uncached, r)
	}
	// The raw signing rate of the responder's key, in this process.
	signer, err := tok.SignerFor(ctx, p.ResponderRef, p.Responder)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte("shomei-bench"))
	for _, workers := range o.HSMWorkers {
		r, err := signRate(ctx, workers, o.Duration, func(ctx context.Context) error {
			_, err := signer.SignContext(ctx, digest[:], crypto.SHA256)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("hsm.Signer: %w", err)
		}
		log.Info("hsm.Signer", "workers", workers, "signatures/s", int(r.Rate()))
		rep.HSM = append(rep.HSM, r)
	}
	rep.Finished = time.Now()
	rep.CPU = cpuModel()
	return rep, nil
}

// errNoSample: the exposition has no such sample.
var errNoSample = errors.New("no such sample")

// sample reads one sample (a name with its labels, as exposed) from a
// Prometheus text exposition.
func sample(ctx context.Context, url, name string) (float64, error) {
	vs, err := samples(ctx, url, name)
	if err != nil {
		return 0, err
	}
	return vs[0], nil
}

// samples reads the samples names from one fetch of a Prometheus text
// exposition, in the order of names.
func samples(ctx context.Context, url string, names ...string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make([]float64, len(names))
	found := make([]bool, len(names))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for i, name := range names {
			if v, ok := strings.CutPrefix(line, name+" "); ok && !found[i] {
				if out[i], err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
					return nil, err
				}
				found[i] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for i, name := range names {
		if !found[i] {
			return nil, fmt.Errorf("%s: %w: %s", url, errNoSample, name)
		}
	}
	return out, nil
}

// cpuProfile saves a CPU profile of the server process over d.
func cpuProfile(ctx context.Context, metricsURL string, d time.Duration, path string) error {
	url := strings.TrimSuffix(metricsURL, "/metrics") + "/debug/pprof/profile?seconds=" + strconv.Itoa(max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// selfProfile saves a CPU profile of this process (the load generator)
// over d.
func selfProfile(ctx context.Context, d time.Duration, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	pprof.StopCPUProfile()
	return f.Close()
}

// cpuModel is /proc/cpuinfo's model name, or GOARCH.
func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

func maxOf(vs []int) int {
	m := 0
	for _, v := range vs {
		m = max(m, v)
	}
	return m
}

// workDir is dir, made, or a new temporary directory removed by cleanup.
func workDir(dir, prefix string) (string, func(), error) {
	if dir == "" {
		d, err := os.MkdirTemp("", prefix)
		if err != nil {
			return "", nil, err
		}
		return d, func() { os.RemoveAll(d) }, nil
	}
	return dir, func() {}, os.MkdirAll(dir, 0o700)
}

// benchEnv is a benchmark's work directory and its throwaway SoftHSM2
// token: what the ocsp and presign commands set up alike.
type benchEnv struct {
	dir, module, exe, pinFile string
	hsmDir                    *softhsm.Dir
	tok                       *hsm.Token
	cleanup                   func() // removes a temporary dir
}

// newBenchEnv makes dir (a new temporary directory named after prefix
// when empty), a token labelled tokenLabel in it with its PIN file, and
// opens the token with poolSize sessions.
func newBenchEnv(dir, prefix string, poolSize int) (*benchEnv, error) {
	e := &benchEnv{}
	var err error
	if e.module, err = softhsm.Module(); err != nil {
		return nil, err
	}
	if e.exe, err = os.Executable(); err != nil {
		return nil, err
	}
	if e.dir, e.cleanup, err = workDir(dir, prefix); err != nil {
		return nil, err
	}
	fail := func(err error) (*benchEnv, error) { e.cleanup(); return nil, err }
	if e.hsmDir, err = softhsm.NewDir(filepath.Join(e.dir, "softhsm")); err != nil {
		return fail(err)
	}
	if err := e.hsmDir.Setenv(); err != nil {
		return fail(err)
	}
	if err := e.hsmDir.InitToken(tokenLabel, softhsm.TestSOPIN, softhsm.TestPIN); err != nil {
		return fail(err)
	}
	e.pinFile = filepath.Join(e.dir, "pin")
	if err := os.WriteFile(e.pinFile, []byte(softhsm.TestPIN+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if e.tok, err = hsm.Open(hsm.Config{Module: e.module, TokenLabel: tokenLabel, PIN: softhsm.TestPIN, PoolSize: poolSize}); err != nil {
		return fail(err)
	}
	return e, nil
}
