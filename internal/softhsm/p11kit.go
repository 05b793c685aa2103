package softhsm

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// RemoteServer runs `p11-kit server` exporting one token of a provider module
// on a Unix socket. A process that loads p11-kit-client.so with
// P11_KIT_SERVER_ADDRESS set to Address() sees that token as if it were
// local. Stopping the server is a network HSM going down; starting it again
// is the HSM coming back.
type RemoteServer struct {
	Provider   string   // module the server loads, e.g. SoftHSM2
	TokenLabel string   // token it exports
	Socket     string   // Unix socket path
	Env        []string // environment for the server (SOFTHSM2_CONF, XDG_RUNTIME_DIR)

	cmd *exec.Cmd
}

// NewRemoteServer describes a server for the token of dir labelled label,
// listening under runtimeDir (used as XDG_RUNTIME_DIR too).
func NewRemoteServer(dir *Dir, label, runtimeDir string) (*RemoteServer, error) {
	provider, err := Module()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(runtimeDir, 0o700); err != nil {
		return nil, err
	}
	return &RemoteServer{
		Provider:   provider,
		TokenLabel: label,
		Socket:     filepath.Join(runtimeDir, "p11-kit.sock"),
		Env:        append(dir.Environ(), "XDG_RUNTIME_DIR="+runtimeDir),
	}, nil
}

// Address is the value for P11_KIT_SERVER_ADDRESS.
func (s *RemoteServer) Address() string { return "unix:path=" + s.Socket }

// Start runs the server in the foreground of a new process group and waits
// until it listens.
func (s *RemoteServer) Start() error {
	if s.cmd != nil {
		return errors.New("softhsm: p11-kit server already running")
	}
	bin, err := exec.LookPath("p11-kit")
	if err != nil {
		return fmt.Errorf("softhsm: p11-kit not found (apt-get install p11-kit): %w", err)
	}
	_ = os.Remove(s.Socket) // a socket left by a killed server
	cmd := exec.Command(bin, "server", "-f", "-n", s.Socket, "--provider", s.Provider, "pkcs11:token="+s.TokenLabel)
	cmd.Env = s.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("softhsm: starting p11-kit server: %w", err)
	}
	// The server prints its address once it listens.
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "P11_KIT_SERVER_ADDRESS=") {
				ready <- nil
				break
			}
		}
		ready <- errors.New("p11-kit server exited before listening")
		for sc.Scan() {
		}
	}()
	select {
	case err = <-ready:
	case <-time.After(10 * time.Second):
		err = errors.New("p11-kit server did not listen within 10s")
	}
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return fmt.Errorf("softhsm: %w: %s", err, stderr.String())
	}
	s.cmd = cmd
	return nil
}

// Stop kills the server and the per-connection p11-kit-remote processes it
// started (its whole process group), as a crash or a network cut would.
func (s *RemoteServer) Stop() error {
	if s.cmd == nil {
		return nil
	}
	err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait() // killed on purpose: its exit status says nothing
	s.cmd = nil
	return err
}
