package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ocsp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/softhsm"
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
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			rep, err := measureHostile(cmd.Context(), o, log)
			if err != nil {
				return err
			}
			var out strings.Builder
			rep.markdown(&out)
			io.WriteString(cmd.OutOrStdout(), out.String())
			if o.Out != "" {
				if err := writeReport(o.Out, out.String()); err != nil {
					return err
				}
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
	f.StringVar(&o.Dir, "dir", "", "work directory, kept (default: a temporary one, removed)")
	f.StringVar(&o.Out, "out", "", "also write the Markdown report to this file")
	f.BoolVarP(&verbose, "verbose", "v", false, "log in detail")
	return cmd
}

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

// caProcess is the shomei-ca the hostile command started.
type caProcess struct {
	cmd        *exec.Cmd
	grpc, http string
	done       chan error
}

var caListening = regexp.MustCompile(`msg=listening grpc=(\S+) http=(\S+)`)

// measureHostile runs the hostile case and returns its report.
func measureHostile(ctx context.Context, o *hostileOptions, log *slog.Logger) (_ *hostileReport, err error) {
	rep := &hostileReport{Options: *o, Started: time.Now(), Holds: map[string]holdStats{}}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "shomei-bench-hostile-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
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
	rep.CANofile = procLimit(ca.cmd.Process.Pid)

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
		_, err := badCA.Issue(callCtx, &cav1.IssueRequest{Municipality: municipality(), Holder: &cav1.Holder{HolderId: "HOSTILE"},
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
	go func() { rss <- watchRSS(runCtx, ca.cmd.Process.Pid) }()
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
	rep.PeakRSS = max(<-rss, procStatus(ca.cmd.Process.Pid, "VmHWM"))
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

// attackerDialer dials from the loopback address source, an attacker's
// own.
func attackerDialer(source string) *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
}

func randByte() byte {
	var b [1]byte
	rand.Read(b[:])
	return b[0]
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

// postOutcome POSTs body as an OCSP request and names what came back:
// "HTTP 400", "OCSP successful", "OCSP tryLater", "reset", "timeout", ….
func postOutcome(ctx context.Context, client *http.Client, url string, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "error"
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := client.Do(req)
	if err != nil {
		return netOutcome(err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "HTTP " + strconv.Itoa(resp.StatusCode) + ", body " + netOutcome(err)
	}
	if resp.StatusCode != http.StatusOK {
		out := "HTTP " + strconv.Itoa(resp.StatusCode)
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			out += " Retry-After"
		}
		return out
	}
	if err := checkResponse(der); err == nil {
		return "OCSP successful"
	}
	if _, err := ocsp.ParseResponse(der, nil); err != nil {
		if re, ok := errors.AsType[ocsp.ResponseError](err); ok {
			return "OCSP " + re.Status.String()
		}
	}
	return "HTTP 200, not OCSP"
}

// netOutcome names a transport error.
func netOutcome(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled at the end"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return "timeout"
	}
	return "error"
}

func municipality() *cav1.Municipality {
	return &cav1.Municipality{Code: "13221", PrefectureRomaji: "Tokyo-to", MunicipalityRomaji: "Kiyose-shi", Prefecture: "東京都", Municipality: "清瀬市"}
}

// issueGood issues an AUTH certificate for a fresh P-256 card key.
func issueGood(ctx context.Context, cl cav1.CertificateAuthorityClient, i int) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "card"}}, key)
	if err != nil {
		return nil, err
	}
	resp, err := cl.Issue(ctx, &cav1.IssueRequest{
		Municipality: municipality(), Holder: &cav1.Holder{HolderId: fmt.Sprintf("BENCH-%d", i), DateOfBirth: "1985-01-02"},
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr}},
	})
	if err != nil {
		return nil, err
	}
	if len(resp.Certificates) != 1 {
		return nil, fmt.Errorf("%d certificates, want 1", len(resp.Certificates))
	}
	return x509.ParseCertificate(resp.Certificates[0].Der)
}

// askGood asks OCSP about cert and wants a verified "good".
func askGood(ctx context.Context, client *http.Client, httpAddr string, cert, issuer *x509.Certificate) error {
	der, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/ocsp", bytes.NewReader(der))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	r, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		return err
	}
	if r.Status != ocsp.Good {
		return fmt.Errorf("status %d, want good", r.Status)
	}
	return nil
}

// findCABinary is path, or shomei-ca next to this program, or on PATH.
func findCABinary(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if exe, err := os.Executable(); err == nil {
		next := filepath.Join(filepath.Dir(exe), "shomei-ca")
		if st, err := os.Stat(next); err == nil && !st.IsDir() {
			return next, nil
		}
	}
	p, err := exec.LookPath("shomei-ca")
	if err != nil {
		return "", errors.New("shomei-ca not found next to shomei-bench nor on PATH: build it (make build) or pass --ca-bin")
	}
	return p, nil
}

// writeHostileConfig makes a fresh SoftHSM2 token and the CA's
// configuration in dir, with one municipal client; it returns the
// client's token and the configuration's path.
func writeHostileConfig(dir string) (token, path string, err error) {
	hsmDir, err := softhsm.NewDir(filepath.Join(dir, "softhsm"))
	if err != nil {
		return "", "", err
	}
	if err := hsmDir.InitToken("shomei-hostile", softhsm.TestSOPIN, softhsm.TestPIN); err != nil {
		return "", "", err
	}
	module, err := softhsm.Module()
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "pin"), []byte(softhsm.TestPIN+"\n"), 0o600); err != nil {
		return "", "", err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token = hex.EncodeToString(raw)
	if err := os.WriteFile(filepath.Join(dir, "municipal.token"), []byte(token+"\n"), 0o600); err != nil {
		return "", "", err
	}
	conf := fmt.Sprintf(`store:
  path: shomei.db
hsm:
  module: %s
  module_env:
    SOFTHSM2_CONF: %s
  token_label: shomei-hostile
  pin_file: pin
server:
  grpc_listen: 127.0.0.1:0
  http_listen: 127.0.0.1:0
  public_url: http://127.0.0.1:8080
certificates:
  allow_ecdsa_p256: true
clients:
  - name: bench-municipality
    token_file: municipal.token
    municipalities: ["13221"]
`, module, hsmDir.Conf)
	path = filepath.Join(dir, "shomei.yaml")
	return token, path, os.WriteFile(path, []byte(conf), 0o600)
}

// startCA starts shomei-ca and waits (up to 2 minutes: the key ceremony)
// until it listens. Its log goes to logPath.
func startCA(ctx context.Context, bin, conf, logPath string) (*caProcess, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &caProcess{cmd: cmd, done: make(chan error, 1)}
	addrs := make(chan []string, 1)
	go func() {
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if m := caListening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrs <- m[1:]:
				default:
				}
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	select {
	case a := <-addrs:
		p.grpc, p.http = a[0], a[1]
		return p, nil
	case err := <-p.done:
		return nil, fmt.Errorf("shomei-ca exited before listening: %v (log: %s)", err, logPath)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	case <-time.After(2 * time.Minute):
		p.stop()
		return nil, fmt.Errorf("shomei-ca did not listen within 2 minutes (log: %s)", logPath)
	}
}

// stop ends the CA: SIGTERM, then SIGKILL after 30 s.
func (p *caProcess) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func fetchIssuerCert(ctx context.Context, httpAddr, label string) (*x509.Certificate, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/issuers/"+label+".pem", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(body)
	if resp.StatusCode != http.StatusOK || block == nil {
		return nil, fmt.Errorf("GET issuer %s: %s", label, resp.Status)
	}
	return x509.ParseCertificate(block.Bytes)
}

// watchRSS samples a process's VmRSS every 200 ms until ctx ends and
// returns the largest.
func watchRSS(ctx context.Context, pid int) uint64 {
	var peak uint64
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		peak = max(peak, procStatus(pid, "VmRSS"))
		select {
		case <-ctx.Done():
			return peak
		case <-tick.C:
		}
	}
}

// procStatus is a "kB" field of /proc/<pid>/status, in bytes; 0 if absent.
func procStatus(pid int, field string) uint64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procLimit is a process's soft RLIMIT_NOFILE, from /proc; 0 if unknown.
func procLimit(pid int) uint64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "Max open files") && len(f) >= 5 {
			n, _ := strconv.ParseUint(f[3], 10, 64)
			return n
		}
	}
	return 0
}

// splitByFileLimit splits n held connections over hostile-hold processes
// that each fit in this process's descriptor limit (which they inherit).
func splitByFileLimit(n int) []int {
	per := 10_000
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil {
		per = max(int(min(r.Cur, 1<<20))-200, 500)
	}
	var parts []int
	for n > 0 {
		k := min(n, per)
		parts = append(parts, k)
		n -= k
	}
	return parts
}

// holdChild is a hostile-hold process.
type holdChild struct {
	kind  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	last  chan holdStats
	done  chan struct{}
}

func startHoldChild(exe, target, mode, kind string, n int, source string) (*holdChild, error) {
	cmd := exec.Command(exe, "hostile-hold", "--target", target, "--mode", mode, "--conns", strconv.Itoa(n), "--reconnect", "1s", "--source", source)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &holdChild{kind: kind, cmd: cmd, stdin: stdin, last: make(chan holdStats, 1), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		var last holdStats
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			json.Unmarshal(sc.Bytes(), &last)
		}
		h.last <- last
	}()
	return h, nil
}

// stop closes the holder's stdin and returns its last counts.
func (h *holdChild) stop() (holdStats, error) {
	h.stdin.Close()
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		h.kill()
		return holdStats{}, errors.New("hostile-hold did not stop within 30 s; killed")
	}
	s := <-h.last
	return s, h.cmd.Wait()
}

func (h *holdChild) kill() {
	if h.cmd.ProcessState == nil {
		h.cmd.Process.Kill()
	}
}
