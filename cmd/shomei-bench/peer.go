package main

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// peerFiles are what `openssl ocsp` serves from.
type peerFiles struct {
	Index     string // OpenSSL CA database (dataset.writeIndex)
	CA        string // issuer certificate, PEM
	Responder string // the peer's delegated responder certificate, PEM
	Key       string // its private key, PEM (openssl reads it from a file)
}

// peer is a running `openssl ocsp` responder.
type peer struct {
	URL  string
	Args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when the openssl process has exited
}

// opensslVersion is `openssl version`.
func opensslVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "openssl", "version").Output()
	if err != nil {
		return "", fmt.Errorf("openssl version: %w (apt-get install openssl; make bench-ocsp does)", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// startPeer starts `openssl ocsp` as a responder on a free port with
// `-multi procs` (OpenSSL 3 forks that many responder processes; 0 or 1:
// one process, no -multi) and waits until it accepts connections.
//
// openssl binds the port on every interface: call it only in a network
// namespace with nothing but loopback (inOwnNetns). It refuses to start
// otherwise.
func startPeer(ctx context.Context, f peerFiles, procs int, logDir string) (*peer, error) {
	var err error
	for range 3 {
		var p *peer
		if p, err = startPeerOnce(ctx, f, procs, logDir); !errors.Is(err, errPeerExited) {
			return p, err
		}
	}
	return nil, err
}

// errPeerExited: openssl exited before it listened (its port was taken
// meanwhile, say); startPeer tries another port.
var errPeerExited = errors.New("openssl ocsp exited before listening")

func startPeerOnce(ctx context.Context, f peerFiles, procs int, logDir string) (*peer, error) {
	alone, err := onlyLoopback()
	if err != nil {
		return nil, err
	}
	if !alone {
		return nil, errors.New("openssl ocsp would listen on every interface: run in a network namespace of its own (unshare -n)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"ocsp", "-index", f.Index, "-port", strconv.Itoa(port),
		"-rsigner", f.Responder, "-rkey", f.Key, "-CA", f.CA, "-nmin", "60"}
	if procs > 1 {
		args = append(args, "-multi", strconv.Itoa(procs))
	}
	cmd := exec.Command("openssl", args...)
	log, err := os.Create(filepath.Join(logDir, "openssl-ocsp.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so that stop reaches the -multi children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("openssl ocsp: %w", err)
	}
	p := &peer{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), Args: args, cmd: cmd, done: make(chan struct{})}
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			out, _ := os.ReadFile(log.Name())
			return nil, fmt.Errorf("%w: openssl %s: %v\n%s", errPeerExited, strings.Join(args, " "), waitErr, out)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("openssl %s does not accept connections after 15 s", strings.Join(args, " "))
		}
	}
}

// stop ends the responder and its -multi children (its process group):
// SIGTERM, then SIGKILL if it has not exited within 5 s.
func (p *peer) stop() {
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// -multi children may outlive their parent by a moment.
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// freePort is a TCP port free on 127.0.0.1 a moment ago, below the
// kernel's ephemeral range where it can (the load generators' own
// connections take ephemeral ports, and could take this one before openssl
// binds it).
func freePort() (int, error) {
	if lo, err := ephemeralLow(); err == nil && lo > 10000 {
		for range 50 {
			port := 10000 + mrand.IntN(lo-10000)
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() (int, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("ip_local_port_range: %q", b)
	}
	return strconv.Atoi(f[0])
}
