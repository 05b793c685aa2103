package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// caProcess is the shomei-ca the hostile command started.
type caProcess struct {
	*testenv.Process
	grpc, http string
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
	hsmToken, err := testenv.Token(hsmDir, "shomei-hostile")
	if err != nil {
		return "", "", err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token = hex.EncodeToString(raw)
	if _, err := testenv.WriteFile(dir, "municipal.token", token+"\n"); err != nil {
		return "", "", err
	}
	path, err = testenv.WriteCA(dir, hsmToken, `certificates:
  allow_ecdsa_p256: true
clients:
  - name: bench-municipality
    token_file: municipal.token
    municipalities: ["13221"]
`)
	return token, path, err
}

// startCA starts shomei-ca and waits (up to 2 minutes: the key ceremony)
// until it listens. Its log goes to logPath.
func startCA(ctx context.Context, bin, conf, logPath string) (*caProcess, error) {
	return startCAWithin(ctx, bin, conf, logPath, 2*time.Minute)
}

// startCAWithin is startCA waiting up to within.
func startCAWithin(ctx context.Context, bin, conf, logPath string, within time.Duration) (*caProcess, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p, err := testenv.Command{Path: bin, Args: []string{"--config", conf}, Ready: testenv.CAListening,
		Within: within, Log: logFile}.Start(ctx)
	if err != nil {
		if p != nil {
			p.Kill()
		}
		logFile.Close()
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	go func() {
		<-p.Exited()
		logFile.Close()
	}()
	return &caProcess{Process: p, grpc: p.Ready[0], http: p.Ready[1]}, nil
}

// stop ends the CA: SIGTERM, then SIGKILL after 30 s.
func (p *caProcess) stop() { p.Stop(30 * time.Second) }

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
