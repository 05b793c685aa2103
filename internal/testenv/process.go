package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The log lines with which Shomei's servers say they listen, and where.
var (
	// CAListening is shomei-ca's; its submatches are the gRPC and the HTTP
	// address.
	CAListening = regexp.MustCompile(`msg=listening grpc=(\S+) http=(\S+)`)
	// ReplicaListening is shomei-ocsp's; its submatch is the HTTP address.
	ReplicaListening = regexp.MustCompile(`msg=listening http=(\S+)`)
)

// Build builds the Go packages pkgs (paths as `go build` takes them) into
// dir, each binary named after its package's directory.
func Build(dir string, pkgs ...string) error {
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("building %v: %v: %s", pkgs, err, out)
	}
	return nil
}

// LogBuffer is a buffer that goroutines may write and read at once: a
// server's log, read by the test that checks it.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Command is a server binary to start and wait for.
type Command struct {
	Path string
	Args []string
	// Ready matches the line of its standard error with which it says it
	// is ready (CAListening, ReplicaListening); its submatches become the
	// Process's Ready.
	Ready *regexp.Regexp
	// Within bounds the wait for that line.
	Within time.Duration
	// Log, if not nil, also gets every line of its standard error.
	Log io.Writer
}

// Process is a started Command.
type Process struct {
	Cmd *exec.Cmd
	// Log is everything it wrote to standard error, line by line.
	Log *LogBuffer
	// Ready is the submatches of its ready line.
	Ready []string

	exited chan struct{}
	err    error // Wait's, once exited is closed
}

// Start starts the command and waits until it says it is ready, it exits,
// ctx ends or Within passes. On every error but a failure to start, it
// returns the Process too, stopped, so that the caller can show its Log.
func (c Command) Start(ctx context.Context) (*Process, error) {
	cmd := exec.Command(c.Path, c.Args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, Log: &LogBuffer{}, exited: make(chan struct{})}
	ready := make(chan []string, 1)
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.Log.Write([]byte(line + "\n"))
			if c.Log != nil {
				fmt.Fprintln(c.Log, line)
			}
			if m := c.Ready.FindStringSubmatch(line); m != nil {
				select {
				case ready <- m[1:]:
				default:
				}
			}
		}
	}()
	go func() {
		// Wait closes the pipe: read it to the end first.
		<-lines
		p.err = cmd.Wait()
		close(p.exited)
	}()
	name := filepath.Base(c.Path)
	select {
	case p.Ready = <-ready:
		return p, nil
	case <-p.exited:
		return p, fmt.Errorf("%s exited before it was ready: %v", name, p.err)
	case <-ctx.Done():
		p.Kill()
		return p, ctx.Err()
	case <-time.After(c.Within):
		p.Kill()
		return p, fmt.Errorf("%s was not ready within %v", name, c.Within)
	}
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process ended (exec.Cmd.Wait's error) once Exited is
// closed.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM, waits up to grace for the process to exit, then
// kills it; it returns how the process ended.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", filepath.Base(p.Cmd.Path), grace)
	}
}

// Kill kills the process, if it still runs, and waits for it to exit.
func (p *Process) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.Cmd.Process.Kill()
	<-p.exited
}

// StartTest starts the command for the test t: it fails the test, with the
// process's log, unless the command becomes ready, and kills the process
// when the test ends.
func (c Command) StartTest(t testing.TB) *Process {
	t.Helper()
	p, err := c.Start(context.Background())
	if err != nil {
		if p != nil {
			t.Fatalf("%v\n%s", err, p.Log)
		}
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// Split splits n (connections to hold, say) into parts of at most per, for
// child processes that each fit in a descriptor limit.
func Split(n, per int) []int {
	var parts []int
	for n > 0 {
		k := min(n, per)
		parts = append(parts, k)
		n -= k
	}
	return parts
}
