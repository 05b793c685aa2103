package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/shomei-pki/shomei/internal/testenv"
)

// splitByFileLimit splits n held connections over hostile-hold processes
// that each fit in this process's descriptor limit (which they inherit).
func splitByFileLimit(n int) []int {
	per := 10_000
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil {
		per = max(int(min(r.Cur, 1<<20))-200, 500)
	}
	return testenv.Split(n, per)
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
	stdin, stdout, err := startPiped(cmd)
	if err != nil {
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
