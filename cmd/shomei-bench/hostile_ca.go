package main

import (
	"bufio"
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
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shomei-pki/shomei/internal/softhsm"
)

// caProcess is the shomei-ca the hostile command started.
type caProcess struct {
	cmd        *exec.Cmd
	grpc, http string
	done       chan error
}

var caListening = regexp.MustCompile(`msg=listening grpc=(\S+) http=(\S+)`)

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
