package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// hostileOptions are the hostile command's flags.
type hostileOptions struct {
	Duration   time.Duration
	IdleConns  int // held idle connections (hostile-hold processes)
	SlowBodies int // held slow-body POSTs
	// Workers of each request kind, each sending one request at a time.
	Garbage, Oversized, Nonce, BigGRPC int
	// RSSBoundMiB: the run fails if the CA's peak RSS passes it.
	RSSBoundMiB int
	CABin       string
	Dir, Out    string
}

func defaultHostileOptions() *hostileOptions {
	return &hostileOptions{
		Duration: 60 * time.Second, IdleConns: 20_000, SlowBodies: 1000,
		Garbage: 2, Oversized: 2, Nonce: 4, BigGRPC: 2, RSSBoundMiB: 512,
	}
}

// Hostile request kinds, as the report names them.
const (
	kindGarbage   = "garbage OCSP (random bytes POST)"
	kindOversized = "oversized OCSP (1 MiB POST)"
	kindNonce     = "nonce flood (valid request, fresh nonce)"
	kindBigGRPC   = "unauthenticated 4 MiB gRPC Issue"
	kindIdle      = "idle connections"
	kindSlow      = "slow-body POSTs (1 byte/s)"
)

func newHostileCommand() *cobra.Command {
	o := defaultHostileOptions()
	var verbose bool
	cmd := &cobra.Command{
		Use:   "hostile",
		Short: "A good client issuing and querying OCSP while a mixed hostile load runs against a real shomei-ca",
		Long: `hostile starts a real shomei-ca (the binary next to this one, or --ca-bin) on a
fresh SoftHSM2 token, with one municipal client, and for --duration runs at
once, from attackers' loopback addresses of their own (127.0.1.x, 127.0.2.1,
127.0.3.1; Linux routes all of 127.0.0.0/8 to lo):

  garbage OCSP        random bytes POSTed to /ocsp
  oversized OCSP      1 MiB POSTed to /ocsp
  nonce flood         valid requests, each with a fresh nonce (signed each time)
  4 MiB gRPC          Issue without a token, with a 4 MiB CSR
  idle connections    --idle-conns held, reopened when the CA closes them
  slow-body POSTs     --slow-bodies POSTs sending one body byte a second

and one good client, from 127.0.0.1, issuing certificates over gRPC (with
its token) and asking OCSP about each. Per-address limits tell the two apart
only by address, as on a real network. It prints a Markdown table: the good client's
requests ok/failed, the hostile requests by kind and outcome, the CA's peak
RSS (VmHWM, /proc), and its refused connections. The exit status is 1 if the
good client saw any failure or the peak RSS passed --rss-bound-mib.`,
		Example: `  make bench-hostile
  shomei-bench hostile --duration 60s --out var/bench-hostile.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Duration <= 0 || o.IdleConns < 0 || o.SlowBodies < 0 || o.RSSBoundMiB <= 0 ||
				min(o.Garbage, o.Oversized, o.Nonce, o.BigGRPC) < 0 {
				return errors.New("hostile: --duration and --rss-bound-mib must be positive, counts not negative")
			}
			rep, err := measureHostile(cmd.Context(), o, progressLogger(verbose))
			if err != nil {
				return err
			}
			if err := printReport(cmd.OutOrStdout(), o.Out, rep); err != nil {
				return err
			}
			if !rep.pass() {
				return exitCode(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.Duration, "duration", o.Duration, "how long the hostile load runs")
	f.IntVar(&o.IdleConns, "idle-conns", o.IdleConns, "idle connections held against the HTTP listener")
	f.IntVar(&o.SlowBodies, "slow-bodies", o.SlowBodies, "slow-body POSTs held against the HTTP listener")
	f.IntVar(&o.Garbage, "garbage", o.Garbage, "workers POSTing random bytes to /ocsp")
	f.IntVar(&o.Oversized, "oversized", o.Oversized, "workers POSTing 1 MiB to /ocsp")
	f.IntVar(&o.Nonce, "nonce", o.Nonce, "workers sending OCSP requests with a fresh nonce")
	f.IntVar(&o.BigGRPC, "big-grpc", o.BigGRPC, "workers sending unauthenticated 4 MiB Issue calls")
	f.IntVar(&o.RSSBoundMiB, "rss-bound-mib", o.RSSBoundMiB, "the CA's peak RSS must stay under this (MiB)")
	f.StringVar(&o.CABin, "ca-bin", "", "the shomei-ca binary (default: next to this program, else on PATH)")
	runFlags(cmd, &o.Dir, &o.Out, &verbose)
	return cmd
}

// measureHostile runs the hostile case and returns its report.
func measureHostile(ctx context.Context, o *hostileOptions, log *slog.Logger) (_ *hostileReport, err error) {
	rep := &hostileReport{Options: *o, Started: time.Now(), Holds: map[string]holdStats{}}
	dir, cleanup, err := workDir(o.Dir, "shomei-bench-hostile-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	caBin, err := findCABinary(o.CABin)
	if err != nil {
		return nil, err
	}
	token, conf, err := writeHostileConfig(dir)
	if err != nil {
		return nil, err
	}
	log.Info("key ceremony on a fresh token, then starting shomei-ca", "binary", caBin, "dir", dir)
	if err := runCeremony(ctx, conf, log); err != nil {
		return nil, err
	}
	ca, err := startCA(ctx, caBin, conf, filepath.Join(dir, "shomei-ca.log"))
	if err != nil {
		return nil, err
	}
	defer ca.stop()
	rep.CANofile = procLimit(ca.Cmd.Process.Pid)

	issuer, err := fetchIssuerCert(ctx, ca.http, "shomei-auth-g1")
	if err != nil {
		return nil, err
	}
	hashes, err := hashesOf(issuer)
	if err != nil {
		return nil, err
	}
	good, err := grpc.NewClient(ca.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(clienttoken.Bearer(token)))
	if err != nil {
		return nil, err
	}
	defer good.Close()
	bad, err := grpc.NewClient(ca.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return attackerDialer("127.0.2.1").DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		return nil, err
	}
	defer bad.Close()
	goodCA := cav1.NewCertificateAuthorityClient(good)
	// The good relying party keeps one connection alive, opened before
	// the load, on a transport of its own: a new connection during the
	// flood competes with the attackers for the HTTP listener's places.
	goodHTTP := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 5 * time.Minute}}

	// A first certificate, before the load: the nonce flood asks about it,
	// and the good client's OCSP connection is open (kept alive) from here.
	first, err := issueGood(ctx, goodCA, 0)
	if err != nil {
		return nil, fmt.Errorf("the first certificate, before any load: %w", err)
	}
	if err := askGood(ctx, goodHTTP, ca.http, first, issuer); err != nil {
		return nil, fmt.Errorf("the first OCSP query, before any load: %w", err)
	}
	nonceReq, err := buildRequest(hashes, first.SerialNumber, true)
	if err != nil {
		return nil, err
	}

	// The hostile load and the good client, for o.Duration.
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var holders []*holdChild
	defer func() {
		for _, h := range holders {
			h.kill()
		}
	}()
	// The attackers dial from loopback addresses of their own (Linux
	// routes all of 127.0.0.0/8 to lo), the good clients from 127.0.0.1:
	// per-address limits can only tell them apart by address, as on a
	// real network.
	holdSource := 0
	for _, hk := range []struct {
		mode, kind string
		n          int
	}{{holdIdle, kindIdle, o.IdleConns}, {holdSlowBody, kindSlow, o.SlowBodies}} {
		for _, n := range splitByFileLimit(hk.n) {
			holdSource++
			h, err := startHoldChild(exe, ca.http, hk.mode, hk.kind, n, fmt.Sprintf("127.0.1.%d", holdSource))
			if err != nil {
				return nil, err
			}
			holders = append(holders, h)
		}
	}
	log.Info("hostile load running", "duration", o.Duration, "idle", o.IdleConns, "slow_bodies", o.SlowBodies)
	runCtx, stop := context.WithTimeout(ctx, o.Duration)
	defer stop()
	var t tally
	var wg sync.WaitGroup
	ocspURL := "http://" + ca.http + "/ocsp"
	hostileHTTP := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64,
		DialContext: attackerDialer("127.0.3.1").DialContext}}
	// Each worker sends one request at a time; after a transport error
	// (a connection refused at the cap) it pauses 10 ms, so that a
	// refusing CA does not turn the load generator into a busy loop on
	// the shared CPUs.
	workers := func(n int, kind string, fn func() string) {
		for range n {
			wg.Go(func() {
				for runCtx.Err() == nil {
					out := fn()
					if runCtx.Err() != nil {
						return // cut by the end of the run: not counted
					}
					t.add(kind, out)
					if !strings.HasPrefix(out, "HTTP") && !strings.HasPrefix(out, "OCSP") && !strings.HasPrefix(out, "gRPC") {
						time.Sleep(10 * time.Millisecond)
					}
				}
			})
		}
	}
	workers(o.Garbage, kindGarbage, func() string {
		body := make([]byte, 64+int(randByte())*2)
		rand.Read(body)
		return postOutcome(runCtx, hostileHTTP, ocspURL, body)
	})
	big := make([]byte, 1<<20)
	workers(o.Oversized, kindOversized, func() string { return postOutcome(runCtx, hostileHTTP, ocspURL, big) })
	workers(o.Nonce, kindNonce, func() string {
		req := slices.Clone(nonceReq)
		nonce := make([]byte, nonceLen)
		rand.Read(nonce)
		setNonce(req, nonce)
		return postOutcome(runCtx, hostileHTTP, ocspURL, req)
	})
	badCA := cav1.NewCertificateAuthorityClient(bad)
	hugeCSR := make([]byte, 4<<20)
	workers(o.BigGRPC, kindBigGRPC, func() string {
		// A deadline of the call's own, not the run's: DeadlineExceeded
		// means the CA took 30 s to refuse.
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := badCA.Issue(callCtx, &cav1.IssueRequest{Municipality: testenv.Kiyose(), Holder: &cav1.Holder{HolderId: "HOSTILE"},
			Profiles: []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: hugeCSR}}})
		return "gRPC " + status.Code(err).String()
	})
	var goodIssue, goodOCSP tally
	var firstErrs []string
	var errMu sync.Mutex
	fail := func(what string, err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(firstErrs) < 5 {
			firstErrs = append(firstErrs, fmt.Sprintf("%s: %v", what, err))
		}
	}
	wg.Go(func() {
		for i := 1; runCtx.Err() == nil; i++ {
			// Each call gets its own deadline, not the run's: a call in
			// flight when the run ends finishes and is counted.
			callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			cert, err := issueGood(callCtx, goodCA, i)
			if err != nil {
				goodIssue.add("", "failed")
				fail("Issue", err)
				cancel()
				continue
			}
			goodIssue.add("", "ok")
			if err := askGood(callCtx, goodHTTP, ca.http, cert, issuer); err != nil {
				goodOCSP.add("", "failed")
				fail("OCSP", err)
			} else {
				goodOCSP.add("", "ok")
			}
			cancel()
		}
	})
	rss := make(chan uint64, 1)
	go func() { rss <- watchRSS(runCtx, ca.Cmd.Process.Pid) }()
	wg.Wait()
	log.Info("hostile load ended; stopping the holders")
	for _, h := range holders {
		s, err := h.stop()
		if err != nil {
			return nil, err
		}
		rep.Holds[h.kind] = addHold(rep.Holds[h.kind], s)
	}
	holders = nil
	rep.PeakRSS = max(<-rss, procStatus(ca.Cmd.Process.Pid, "VmHWM"))
	rep.Refused = map[string]float64{}
	for _, l := range []string{"http", "grpc"} {
		name := `shomei_server_connections_refused_total{listener="` + l + `"}`
		v, err := sample(ctx, "http://"+ca.http+"/metrics", name)
		if errors.Is(err, errNoSample) {
			v, err = 0, nil // a counter with a label appears once counted
		}
		if err != nil {
			log.Warn("reading the CA's metrics", "error", err)
		}
		rep.Refused[l] = v
	}
	rep.GoodIssue, rep.GoodOCSP = goodIssue.get(""), goodOCSP.get("")
	rep.Hostile = map[string]counts{}
	for _, k := range []string{kindGarbage, kindOversized, kindNonce, kindBigGRPC} {
		rep.Hostile[k] = t.get(k)
	}
	rep.FirstErrors = firstErrs
	rep.Finished = time.Now()
	return rep, nil
}
