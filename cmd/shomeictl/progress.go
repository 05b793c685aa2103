package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress shows how far an import is, on stderr: on a terminal a one-line
// bar redrawn in place; otherwise (a log file, a pipe, cron mail) a line
// every few seconds. Messages about single lines go through it so that they
// do not tear the bar. It is used from one goroutine.
type progress struct {
	w     io.Writer
	tty   bool
	total int           // lines in the feed; 0 when unknown (a pipe)
	every time.Duration // between progress lines when not a terminal
	now   func() time.Time

	start, last time.Time
	shown       bool // a bar is on the terminal's last line
}

// newProgress shows progress on w; total is the feed's line count, 0 when
// unknown.
func newProgress(w io.Writer, total int) *progress {
	now := time.Now
	return &progress{w: w, tty: isTerminal(w), total: total, every: 5 * time.Second, now: now, start: now(), last: now()}
}

// isTerminal says whether w is a terminal (a character device: good enough
// to decide whether \r redraws a line; a bar sent to /dev/null is harmless).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// barRedraw is how often the bar is redrawn at most.
const barRedraw = 100 * time.Millisecond

// message prints a line of its own above the bar.
func (p *progress) message(s string) {
	p.clear()
	fmt.Fprintln(p.w, s)
}

// update shows that the lines up to line are done and events events were
// sent, when it is time to.
func (p *progress) update(line, events int) {
	now := p.now()
	switch {
	case p.tty && (now.Sub(p.last) >= barRedraw || !p.shown):
		fmt.Fprintf(p.w, "\r%s\x1b[K", p.bar(line, events, now))
		p.shown = true
	case !p.tty && now.Sub(p.last) >= p.every:
		fmt.Fprintf(p.w, "progress: %s\n", p.status(line, events, now))
	default:
		return
	}
	p.last = now
}

// finish draws the final state and leaves the terminal's line for what
// follows.
func (p *progress) finish(lines, events int) {
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", p.bar(lines, events, p.now()))
		p.shown = false
	}
}

// clear removes the bar, to be redrawn by the next update.
func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

const barWidth = 30

func (p *progress) bar(line, events int, now time.Time) string {
	if p.total <= 0 {
		return p.status(line, events, now)
	}
	filled := min(barWidth, line*barWidth/p.total)
	return fmt.Sprintf("[%s%s] %s", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), p.status(line, events, now))
}

// status is "1200/5000 lines (24%), 1190 events, 310 events/s".
func (p *progress) status(line, events int, now time.Time) string {
	var b strings.Builder
	if p.total > 0 {
		fmt.Fprintf(&b, "%d/%d lines (%d%%)", line, p.total, min(100, line*100/p.total))
	} else {
		fmt.Fprintf(&b, "%d lines", line)
	}
	rate := 0.0
	if elapsed := now.Sub(p.start).Seconds(); elapsed > 0 {
		rate = float64(events) / elapsed
	}
	fmt.Fprintf(&b, ", %d events, %.0f events/s", events, rate)
	return b.String()
}

// countProgress shows how far a long copy is on stderr, as "label: status":
// a line redrawn in place on a terminal, else a line every few seconds.
type countProgress struct {
	w           io.Writer
	tty         bool
	label       string
	total       uint64
	format      func(done, total uint64) string
	start, last time.Time
}

func newCountProgress(w io.Writer, label string, total uint64, format func(done, total uint64) string) *countProgress {
	now := time.Now()
	return &countProgress{w: w, tty: isTerminal(w), label: label, total: total, format: format, start: now, last: now}
}

func (p *countProgress) update(done uint64) {
	now := time.Now()
	switch {
	case p.tty && now.Sub(p.last) >= barRedraw:
		fmt.Fprintf(p.w, "\r%s: %s\x1b[K", p.label, p.format(done, p.total))
	case !p.tty && now.Sub(p.last) >= 5*time.Second:
		fmt.Fprintf(p.w, "%s: %s\n", p.label, p.format(done, p.total))
	default:
		return
	}
	p.last = now
}

func (p *countProgress) finish() {
	end := "\n"
	if p.tty {
		end = "\x1b[K\n"
		fmt.Fprint(p.w, "\r")
	}
	fmt.Fprintf(p.w, "%s: %s in %s%s", p.label, p.format(p.total, p.total), time.Since(p.start).Round(time.Millisecond), end)
}
