package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/metricstest"
	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// Issue 9, item 3: connection exhaustion must not take down issuance.

// floodConns is how many connections the attack holds against the CA's
// HTTP listener, and caNofile the CA's file-descriptor limit in the test
// (or the hard limit, if lower): below floodConns, as on the machine where
// the attack was found, so that without connection caps the flood
// exhausts the CA's descriptors.
const (
	floodConns = 20_000
	caNofile   = 16_384
)

// TestAttackConnectionFlood holds 20,000 idle and slow-body connections
// against the real shomei-ca's HTTP listener while a municipal client
// issues over a new gRPC connection and a relying party queries OCSP on
// the connection it had. Before the fix the CA ran out of file
// descriptors: the gRPC listener could not accept, issuance stopped.
// Now the HTTP listener refuses connections over its cap at once
// (shomei_server_connections_refused_total), its timeouts close the
// held ones, and the gRPC listener, capped separately, stays reachable.
func TestAttackConnectionFlood(t *testing.T) {
	if err := testDir.InitToken("e2e-httplimits", softhsm.TestSOPIN, softhsm.TestPIN); err != nil {
		t.Fatal(err)
	}
	bench := buildBench(t)
	dir := t.TempDir()
	conf := writeConfig(t, dir, "e2e-httplimits", "certificates:\n  allow_ecdsa_p256: true\n")
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	nofile := int(min(lim.Max, caNofile))
	p := startCAWithNofile(t, conf, nofile)
	if got := procNofile(t, p.Cmd.Process.Pid); got != nofile {
		t.Fatalf("the CA's RLIMIT_NOFILE is %d, want %d", got, nofile)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Before the flood: a certificate, and a relying party's kept-alive
	// connection on which it asks about it.
	cl := p.client(t)
	issued := issueP256(ctx, t, cl, "FLOOD-1")
	rp := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}}
	issuer := fetchIssuer(t, p, "shomei-auth-g1")
	if st, err := askOCSP(rp, p.http, issued, issuer); err != nil || st != ocsp.Good {
		t.Fatalf("OCSP before the flood: status %d, %v", st, err)
	}

	// The flood, from processes of their own (each has its own
	// descriptor limit): half idle, half slow-body POSTs.
	half := floodConns / 2
	var holders []*holdProc
	for _, mode := range []string{"idle", "slow-body"} {
		for _, n := range splitConns(t, half) {
			holders = append(holders, startHold(t, bench, p.http, mode, n))
		}
	}
	var opened int64
	for _, h := range holders {
		s := h.first(t)
		opened += s.Opened
	}
	t.Logf("flood: %d of %d connections opened", opened, floodConns)

	// While the flood holds: a new gRPC connection issues and reads back.
	fresh := cav1.NewCertificateAuthorityClient(p.conn(t))
	issueCtx, cancelIssue := context.WithTimeout(ctx, 30*time.Second)
	during := issueP256(issueCtx, t, fresh, "FLOOD-2")
	if _, err := fresh.GetCertificate(issueCtx, &cav1.GetCertificateRequest{Serial: during.Serial}); err != nil {
		t.Fatalf("GetCertificate during the flood: %v", err)
	}
	cancelIssue()
	// The relying party's connection still answers; the new certificate
	// is good.
	if st, err := askOCSP(rp, p.http, during, issuer); err != nil || st != ocsp.Good {
		t.Fatalf("OCSP during the flood, on the kept-alive connection: status %d, %v", st, err)
	}
	// The CA holds at most its caps, far from its limit, and says what
	// it refused.
	fds := openFiles(t, p.Cmd.Process.Pid)
	metrics := metricstest.Text(t, getOn(t, rp, "http://"+p.http+"/metrics"))
	refused := metrics[`shomei_server_connections_refused_total{listener="http"}`]
	open := metrics[`shomei_server_connections_open{listener="http"}`]
	t.Logf("during the flood: the CA has %d files open (limit %d), %v HTTP connections open, %v refused", fds, nofile, open, refused)
	if fds >= nofile-100 {
		t.Errorf("the CA has %d files open, at its limit %d", fds, nofile)
	}
	if refused == 0 {
		t.Errorf("no HTTP connection refused during a flood of %d", floodConns)
	}
	if g := metrics[`shomei_server_connections_refused_total{listener="grpc"}`]; g != 0 {
		t.Errorf("%v gRPC connections refused: the HTTP flood took the gRPC listener's places", g)
	}

	// The server's timeouts close what it held (idle connections after
	// read_header_timeout, slow bodies after read_timeout): wait until
	// the holders of each kind have seen it.
	closing, cancelClosing := context.WithTimeout(ctx, time.Minute)
	defer cancelClosing()
	for _, h := range holders {
		for s := h.latest(); s.Closed+s.Answered == 0; s = h.latest() {
			if closing.Err() != nil {
				t.Fatalf("the server closed none of the held connections: %+v", s)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var total holdStats
	for _, h := range holders {
		s := h.stop(t)
		total.Reset += s.Reset
		total.Closed += s.Closed
		total.Answered += s.Answered
		total.Opened += s.Opened
		total.DialFailed += s.DialFailed
	}
	t.Logf("flood ended: %+v", total)
	// A relying party arriving now is served on a new connection.
	if st, err := askOCSP(&http.Client{}, p.http, during, issuer); err != nil || st != ocsp.Good {
		t.Fatalf("OCSP on a new connection after the flood: status %d, %v", st, err)
	}
	p.stop(t)
	if logs := p.Log.String(); strings.Contains(logs, "too many open files") {
		t.Errorf("the CA ran out of file descriptors:\n%s", tail(logs, 20))
	}
}

// startCAWithNofile starts shomei-ca with RLIMIT_NOFILE (soft and hard)
// set to nofile, through a shell's ulimit.
func startCAWithNofile(t *testing.T, config string, nofile int) *caProc {
	t.Helper()
	name := "shomei-ca-nofile-" + strconv.Itoa(nofile)
	script := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 1\nexec \"$(dirname \"$0\")/shomei-ca\" \"$@\"\n", nofile)
	if err := os.WriteFile(filepath.Join(binDir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	initStore(t, config)
	p, addrs := startBinary(t, name, config, testenv.CAListening)
	p.grpc, p.http = addrs[0], addrs[1]
	return p
}

// procNofile is a process's soft RLIMIT_NOFILE, from /proc.
func procNofile(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && strings.HasPrefix(line, "Max open files") {
			n, _ := strconv.Atoi(f[3])
			return n
		}
	}
	t.Fatalf("no open-files limit in /proc/%d/limits", pid)
	return 0
}

func openFiles(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// issueP256 issues an AUTH certificate for a P-256 card key.
func issueP256(ctx context.Context, t *testing.T, cl cav1.CertificateAuthorityClient, id string) *cav1.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Issue(ctx, &cav1.IssueRequest{
		Municipality: kiyose, Holder: &cav1.Holder{HolderId: id, DateOfBirth: "1985-01-02"},
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, key)}},
	})
	if err != nil {
		t.Fatalf("Issue %s: %v", id, err)
	}
	return resp.Certificates[0]
}

// askOCSP POSTs an OCSP request for c to the CA with client and returns
// the verified status.
func askOCSP(client *http.Client, httpAddr string, c *cav1.Certificate, issuer *x509.Certificate) (int, error) {
	cert, err := x509.ParseCertificate(c.Der)
	if err != nil {
		return 0, err
	}
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Post("http://"+httpAddr+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %s", resp.Status)
	}
	r, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		return 0, err
	}
	return r.Status, nil
}

func getOn(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(body)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

var (
	holdBenchOnce sync.Once
	holdBenchErr  error
)

// buildBench builds shomei-bench, whose hostile-hold command holds the
// flood's connections.
func buildBench(t *testing.T) string {
	t.Helper()
	holdBenchOnce.Do(func() {
		if out, err := exec.Command("go", "build", "-o", binDir+"/", "../shomei-bench").CombinedOutput(); err != nil {
			holdBenchErr = fmt.Errorf("building shomei-bench: %v: %s", err, out)
		}
	})
	if holdBenchErr != nil {
		t.Fatal(holdBenchErr)
	}
	return filepath.Join(binDir, "shomei-bench")
}

// splitConns splits n connections over processes that each fit in this
// process's descriptor limit (which they inherit).
func splitConns(t *testing.T, n int) []int {
	t.Helper()
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	return testenv.Split(n, max(int(min(r.Max, 1<<20))-200, 1000))
}

// holdStats is what shomei-bench hostile-hold prints.
type holdStats struct {
	Attempted  bool  `json:"attempted"`
	Opened     int64 `json:"opened"`
	Open       int64 `json:"open"`
	DialFailed int64 `json:"dial_failed"`
	Reset      int64 `json:"reset"`
	Closed     int64 `json:"closed"`
	Answered   int64 `json:"answered"`
}

// holdProc is a running shomei-bench hostile-hold.
type holdProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	last  holdStats
	lines chan holdStats // every line, until stdout closes
}

func startHold(t *testing.T, bench, target, mode string, conns int) *holdProc {
	t.Helper()
	cmd := exec.Command(bench, "hostile-hold", "--target", target, "--mode", mode, "--conns", strconv.Itoa(conns), "--reconnect", "3s")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holdProc{cmd: cmd, stdin: stdin, lines: make(chan holdStats, 1)}
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var s holdStats
			if json.Unmarshal(sc.Bytes(), &s) != nil {
				continue
			}
			h.mu.Lock()
			h.last = s
			h.mu.Unlock()
			select {
			case h.lines <- s:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return h
}

// first waits for the line saying every connection was tried.
func (h *holdProc) first(t *testing.T) holdStats {
	t.Helper()
	s, ok := <-h.lines
	if !ok {
		t.Fatal("hostile-hold stopped before trying its connections")
	}
	return s
}

// latest is the holder's last counts.
func (h *holdProc) latest() holdStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// stop closes the holder's stdin and returns its last counts.
func (h *holdProc) stop(t *testing.T) holdStats {
	t.Helper()
	h.stdin.Close()
	for range h.lines {
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("hostile-hold: %v", err)
	}
	return h.latest()
}
