package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"time"
)

// netnsEnv marks a process that reexecInNetns started, so that it never
// re-executes itself again.
const netnsEnv = "SHOMEI_BENCH_NETNS"

// exitCode is an error that is only an exit status, already explained by
// the process that exited with it.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// onlyLoopback reports whether every network interface this process sees
// is a loopback one: the sign of a namespace of its own (`unshare -n`).
func onlyLoopback() (bool, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return false, fmt.Errorf("list network interfaces: %w", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return false, nil
		}
	}
	return true, nil
}

// loopbackUp brings lo up (a new namespace's starts down) with
// `ip link set lo up`, and checks 127.0.0.1 can be listened on.
func loopbackUp(ctx context.Context) error {
	ip, err := exec.LookPath("ip")
	if err != nil {
		return errors.New("`ip` not found: apt-get install iproute2 (make bench-ocsp does)")
	}
	if out, err := exec.CommandContext(ctx, ip, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %w: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("loopback is up but unusable: %w", err)
	}
	return l.Close()
}

// inOwnNetns makes sure the process runs in a network namespace with only
// loopback, up. If it already does, it brings lo up and returns false: go
// on here. Otherwise it runs this program again, with args, under
// `unshare -n` (`unshare -r -n` when not root: a user namespace maps this
// user to root in it), waits for it, and returns true with the re-executed
// program's failure, if any: the caller stops there.
func inOwnNetns(ctx context.Context, args []string) (reexecuted bool, err error) {
	alone, err := onlyLoopback()
	if err != nil {
		return false, err
	}
	if alone {
		return false, loopbackUp(ctx)
	}
	if os.Getenv(netnsEnv) != "" {
		return false, errors.New("re-executed under unshare -n but still sees interfaces other than loopback")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return false, errors.New("`unshare` not found: apt-get install util-linux (openssl ocsp listens on every interface, so the benchmark runs in a network namespace of its own)")
	}
	exe, err := os.Executable()
	if err != nil {
		return false, err
	}
	flags := []string{"-n"}
	if os.Geteuid() != 0 {
		flags = []string{"-r", "-n"}
	}
	cmd := exec.CommandContext(ctx, unshare, append(append(flags, "--", exe), args...)...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// unshare execs the program in place: interrupt it, so that it stops
	// its own servers, before killing it.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	err = cmd.Run()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok && exit.ExitCode() > 0 {
		return true, exitCode(exit.ExitCode())
	}
	if err != nil {
		return true, fmt.Errorf("unshare %v: %w", flags, err)
	}
	return true, nil
}
