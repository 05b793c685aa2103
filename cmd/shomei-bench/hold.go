package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Hold modes: what a held connection does.
const (
	holdIdle     = "idle"      // connects and sends nothing
	holdSlowBody = "slow-body" // POSTs /ocsp announcing 1,000 bytes, sends one every second
)

// holdOptions are the hostile-hold command's flags.
type holdOptions struct {
	Target    string        // host:port of the HTTP listener
	Conns     int           // connections to hold at once
	Mode      string        // holdIdle or holdSlowBody
	Reconnect time.Duration // pause before a closed connection is opened again
	Dials     int           // dials in flight at once
	Source    string        // local (loopback) address to dial from; "" lets the kernel choose
}

// holdStats count what the server did with the held connections.
type holdStats struct {
	Mode string `json:"mode"`
	// Attempted: every slot has dialled once (the first line printed).
	Attempted  bool  `json:"attempted"`
	Opened     int64 `json:"opened"`      // connections established
	Open       int64 `json:"open"`        // held now
	DialFailed int64 `json:"dial_failed"` // connect refused or timed out
	Reset      int64 `json:"reset"`       // reset by the server: refused at its cap
	Closed     int64 `json:"closed"`      // closed by the server (its timeouts)
	Answered   int64 `json:"answered"`    // the server sent an HTTP response (slow-body)
}

// holder holds connections until its context ends.
type holder struct {
	o                                                           holdOptions
	opened, open, dialFailed, reset, closed, answered, attempts atomic.Int64
}

func (h *holder) stats() holdStats {
	return holdStats{Mode: h.o.Mode, Attempted: h.attempts.Load() >= int64(h.o.Conns), Opened: h.opened.Load(), Open: h.open.Load(),
		DialFailed: h.dialFailed.Load(), Reset: h.reset.Load(), Closed: h.closed.Load(), Answered: h.answered.Load()}
}

// run holds h.o.Conns connections, each reopened h.o.Reconnect (±50 %)
// after the server closes it, until ctx ends.
func (h *holder) run(ctx context.Context) {
	dials := make(chan struct{}, max(h.o.Dials, 1))
	var wg sync.WaitGroup
	for range h.o.Conns {
		wg.Go(func() {
			first := true
			for ctx.Err() == nil {
				dials <- struct{}{}
				d := net.Dialer{Timeout: 10 * time.Second}
				if h.o.Source != "" {
					d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(h.o.Source)}
				}
				c, err := d.DialContext(ctx, "tcp", h.o.Target)
				<-dials
				if first {
					h.attempts.Add(1)
					first = false
				}
				if err != nil {
					if ctx.Err() == nil {
						h.dialFailed.Add(1)
					}
				} else {
					h.opened.Add(1)
					h.open.Add(1)
					h.hold(ctx, c)
					h.open.Add(-1)
				}
				pause := h.o.Reconnect/2 + rand.N(h.o.Reconnect+1)
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		})
	}
	wg.Wait()
}

// hold keeps c until the server closes it or ctx ends.
func (h *holder) hold(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, 512)
	if h.o.Mode == holdIdle {
		_, err := c.Read(buf)
		h.count(ctx, err, false)
		return
	}
	if _, err := io.WriteString(c, "POST /ocsp HTTP/1.1\r\nHost: shomei\r\nContent-Type: application/ocsp-request\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		h.count(ctx, err, false)
		return
	}
	for sent := 0; ; sent++ {
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if n > 0 {
			h.count(ctx, nil, true)
			return
		}
		if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() || sent >= 999 {
			h.count(ctx, err, false)
			return
		}
		if _, err := c.Write([]byte{0x30}); err != nil {
			h.count(ctx, err, false)
			return
		}
	}
}

// count records how a held connection ended.
func (h *holder) count(ctx context.Context, err error, answered bool) {
	switch {
	case ctx.Err() != nil: // ours
	case answered:
		h.answered.Add(1)
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		h.reset.Add(1)
	default:
		h.closed.Add(1)
	}
}

// newHoldCommand is the hostile-hold command: the hostile command and
// cmd/shomei-ca's TestAttackConnectionFlood start it in processes of
// their own, so that each has its own file-descriptor limit.
func newHoldCommand() *cobra.Command {
	o := holdOptions{Mode: holdIdle, Reconnect: time.Second, Dials: 256}
	cmd := &cobra.Command{
		Use:   "hostile-hold",
		Short: "Hold many idle or slow-body connections to an HTTP listener (internal, for the hostile command and tests)",
		Long: `hostile-hold opens --conns connections to --target and holds them until its
standard input closes; a connection the server closes is opened again after
--reconnect. It prints a JSON line of counts once every connection has been
tried, then every second, and a last one when it stops.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Conns <= 0 || o.Target == "" || (o.Mode != holdIdle && o.Mode != holdSlowBody) || o.Reconnect <= 0 {
				return fmt.Errorf("hostile-hold: --target, a positive --conns and --reconnect, and --mode %s or %s are required", holdIdle, holdSlowBody)
			}
			return runHold(cmd.Context(), o, os.Stdin, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Target, "target", "", "host:port of the HTTP listener (127.0.0.1 only)")
	f.IntVar(&o.Conns, "conns", 0, "connections to hold")
	f.StringVar(&o.Mode, "mode", o.Mode, "idle or slow-body")
	f.DurationVar(&o.Reconnect, "reconnect", o.Reconnect, "pause before reopening a connection the server closed")
	f.IntVar(&o.Dials, "dials", o.Dials, "dials in flight at once")
	f.StringVar(&o.Source, "source", "", "loopback address to dial from (an attacker's address of its own)")
	return cmd
}

// runHold holds until stdin closes or ctx ends, printing the counts as
// JSON lines: once every connection has been tried, then every second,
// and at the end.
func runHold(ctx context.Context, o holdOptions, stdin io.Reader, stdout io.Writer) error {
	host, _, err := net.SplitHostPort(o.Target)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("hostile-hold: --target %q must be a loopback address", o.Target)
	}
	if o.Source != "" {
		if ip := net.ParseIP(o.Source); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("hostile-hold: --source %q must be a loopback address", o.Source)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, stdin)
		cancel()
	}()
	h := &holder{o: o}
	done := make(chan struct{})
	go func() { h.run(ctx); close(done) }()
	enc := json.NewEncoder(stdout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-done:
			return enc.Encode(h.stats())
		case now := <-tick.C:
			if s := h.stats(); s.Attempted && now.Sub(last) >= time.Second {
				last = now
				if err := enc.Encode(s); err != nil {
					return err
				}
			}
		}
	}
}
