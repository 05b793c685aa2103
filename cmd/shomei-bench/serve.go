package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shomei-pki/shomei/internal/gctuning"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/ocsp"
)

// serveConfig tells the server process (shomei-bench ocsp-serve) what to
// serve; the benchmark writes it to serveConfigFile in the work directory.
type serveConfig struct {
	responderFiles
	// Bolt is the statuses file (boltSource).
	Bolt string
	// CeilingRequest is the DER request whose response, signed by the
	// responder at start, the ceiling server sends for every POST.
	CeilingRequest string
	// PoolSize is the HSM session pool size (0: the number of CPUs).
	PoolSize int
}

const serveConfigFile = "serve.json"

// serveAddrs is the line the server process prints once it listens.
type serveAddrs struct {
	Shomei  string `json:"shomei"`  // URL to POST requests to
	Ceiling string `json:"ceiling"` // URL to POST requests to
	Metrics string `json:"metrics"` // Shomei's Prometheus metrics
}

// serve runs the server process: Shomei's responder, the ceiling and the
// metrics on 127.0.0.1, until stdin closes or ctx ends.
func serve(ctx context.Context, dir string, stdin io.Reader, stdout io.Writer) error {
	// The collector as Shomei's servers set it.
	gctuning.Apply()
	var cfg serveConfig
	if err := readChildConfig(dir, serveConfigFile, &cfg); err != nil {
		return err
	}
	tok, issuer, err := cfg.open(ctx, cfg.PoolSize)
	if err != nil {
		return err
	}
	defer tok.Close()
	source, err := openBoltSource(cfg.Bolt)
	if err != nil {
		return err
	}
	defer source.Close()
	reg := prometheus.NewRegistry()
	responder, err := ocsp.New(ocsp.Config{
		Issuers: []*ocsp.Issuer{issuer},
		Source:  source,
		// The uncached case measures signing itself: no fresh-signature
		// budget (shomei-ca's default would answer most nonces from the
		// cache, RFC 8954).
		SignatureBudget: -1,
		Log:             slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Metrics:         reg,
	})
	if err != nil {
		return err
	}
	ceilingReq, err := os.ReadFile(cfg.CeilingRequest)
	if err != nil {
		return err
	}
	fixed, err := presigned(responder, ceilingReq)
	if err != nil {
		return fmt.Errorf("the ceiling's response: %w", err)
	}

	var addrs serveAddrs
	return serveChild(ctx, stdin, stdout, &addrs, []childServer{
		{responder, &addrs.Shomei, "http://%s" + ocsp.DefaultPath},
		{ceilingHandler(fixed), &addrs.Ceiling, "http://%s/"},
		{debugMux(reg), &addrs.Metrics, "http://%s/metrics"},
	}, nil)
}

// responderFiles are the part of a server child's config (serveConfig,
// presignConfig) naming the throwaway token, Shomei's responder key and
// the certificates it answers for.
type responderFiles struct {
	SoftHSMConf  string // SOFTHSM2_CONF
	Module       string
	TokenLabel   string
	PINFile      string // the PIN, never on a command line
	ResponderKey hsm.KeyRef
	// IssuerCert and ResponderCert are PEM files.
	IssuerCert    string
	ResponderCert string
}

// open opens the token with poolSize sessions and returns it (the caller
// closes it) and the issuer Shomei's responder answers for, signing with
// the responder key on the token.
func (r responderFiles) open(ctx context.Context, poolSize int) (*hsm.Token, *ocsp.Issuer, error) {
	if err := os.Setenv("SOFTHSM2_CONF", r.SoftHSMConf); err != nil {
		return nil, nil, err
	}
	pin, err := hsm.PINSource{File: r.PINFile}.Read()
	if err != nil {
		return nil, nil, err
	}
	tok, err := hsm.Open(hsm.Config{Module: r.Module, TokenLabel: r.TokenLabel, PIN: pin, PoolSize: poolSize})
	if err != nil {
		return nil, nil, err
	}
	issuer, err := readCertificate(r.IssuerCert)
	if err != nil {
		tok.Close()
		return nil, nil, err
	}
	responderCert, err := readCertificate(r.ResponderCert)
	if err != nil {
		tok.Close()
		return nil, nil, err
	}
	signer, err := tok.SignerFor(ctx, r.ResponderKey, responderCert)
	if err != nil {
		tok.Close()
		return nil, nil, err
	}
	return tok, &ocsp.Issuer{Certificate: issuer, Responder: responderCert, Signer: signer}, nil
}

// readChildConfig strictly decodes the JSON file name in dir, which the
// parent command wrote for its server child, into cfg.
func readChildConfig(dir, name string, cfg any) error {
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// childServer is one HTTP server of a child process: its handler, and
// where its URL (fmt with the listener's address) is announced.
type childServer struct {
	h   http.Handler
	url *string
	fmt string
}

// serveChild is the life of a server child process (ocsp-serve,
// presign-serve): it listens on loopback ports the kernel picks, writes
// addrs — the URLs filled in — as one JSON line to stdout, runs work (if
// any) meanwhile, and serves until stdin closes (the parent is done or
// gone), ctx ends, or a server fails.
func serveChild(ctx context.Context, stdin io.Reader, stdout io.Writer, addrs *serveAddrs, servers []childServer, work func(context.Context)) error {
	errs := make(chan error, len(servers))
	var running []*http.Server
	defer func() {
		for _, srv := range running {
			srv.Close()
		}
	}()
	for _, s := range servers {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		running = append(running, srv)
		*s.url = fmt.Sprintf(s.fmt, l.Addr())
		go func() { errs <- srv.Serve(l) }()
	}
	line, err := json.Marshal(addrs)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return err
	}
	if work != nil {
		workCtx, stop := context.WithCancel(ctx)
		ran := make(chan struct{})
		go func() { work(workCtx); close(ran) }()
		defer func() { stop(); <-ran }()
	}
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, stdin)
		close(eof)
	}()
	select {
	case <-eof:
		return nil
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// debugMux serves the responder's metrics at /metrics and the server
// process's profiles at /debug/pprof/ (ocsp --profile).
func debugMux(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return mux
}

// presigned is the responder's answer to req, checked to be a successful
// OCSP response.
func presigned(responder http.Handler, req []byte) ([]byte, error) {
	rec := httptest.NewRecorder()
	responder.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, ocsp.DefaultPath, bytes.NewReader(req)))
	body := rec.Body.Bytes()
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", rec.Code)
	}
	return body, checkResponse(body)
}

// ceilingHandler answers every POST with resp and nothing else: the least
// an OCSP server can do over net/http, the benchmark's ceiling. It reads
// the request body, as any server must for the connection to be reused.
func ceilingHandler(resp []byte) http.Handler {
	length := []string{strconv.Itoa(len(resp))}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = []string{"application/ocsp-response"}
		h["Content-Length"] = length
		w.Write(resp)
	})
}

func readCertificate(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE", path)
	}
	return x509.ParseCertificate(block.Bytes)
}

// servers is the running server process.
type servers struct {
	serveAddrs
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startServers starts `shomei-bench ocsp-serve --dir dir` (this program)
// and waits for it to listen.
func startServers(ctx context.Context, exe, dir string) (*servers, error) {
	return startServer(ctx, exe, "ocsp-serve", dir)
}

// startServer starts `shomei-bench <command> --dir dir`, a server process
// that prints its serveAddrs once it listens, and waits for that line.
func startServer(ctx context.Context, exe, command, dir string) (*servers, error) {
	cmd := exec.CommandContext(ctx, exe, command, "--dir", dir)
	stdin, stdout, err := startPiped(cmd)
	if err != nil {
		return nil, err
	}
	s := &servers{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &s.serveAddrs)
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("the server process did not start: %w", err)
	}
	return s, nil
}

// stop closes the server process's stdin, which ends it, and waits; it
// kills the process if it has not ended in 10 s.
func (s *servers) stop() error {
	s.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		return errors.Join(errors.New("the server process did not stop; killed"), <-done)
	}
}

// startPiped starts a child process of this program (ocsp-serve,
// hostile-hold), which reports on its standard output and stops when its
// standard input closes; its standard error is this program's.
func startPiped(cmd *exec.Cmd) (stdin io.WriteCloser, stdout io.ReadCloser, err error) {
	cmd.Stderr = os.Stderr
	if stdin, err = cmd.StdinPipe(); err != nil {
		return nil, nil, err
	}
	if stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	return stdin, stdout, nil
}
