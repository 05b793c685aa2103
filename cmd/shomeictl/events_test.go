package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/eventfeed"
)

// fakeCA is an Events service in memory: it applies an event id once and
// answers a replay with the first result, as the CA does. Event ids choose
// its behaviour: "refuse-…" is refused, "flaky-…" fails twice as if the CA
// were unreachable, "down-…" always does, "slow-…" takes a while.
type fakeCA struct {
	mu                    sync.Mutex
	first                 map[string]*cav1.ReportEventResponse
	calls                 map[string]int
	inFlight, maxInFlight int
	code                  codes.Code // if set, every call fails with it
}

var _ cav1.EventsClient = (*fakeCA)(nil)

func newFakeCA() *fakeCA {
	return &fakeCA{first: map[string]*cav1.ReportEventResponse{}, calls: map[string]int{}}
}

func (f *fakeCA) ReportEvent(ctx context.Context, req *cav1.ReportEventRequest, _ ...grpc.CallOption) (*cav1.ReportEventResponse, error) {
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.calls[req.EventId]++
	call := f.calls[req.EventId]
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()

	id := req.EventId
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	// Later lines tend to answer sooner, so answers arrive out of order.
	delay := time.Duration(3-n%4) * time.Millisecond
	if strings.HasPrefix(id, "slow-") {
		delay = 50 * time.Millisecond
	}
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	switch {
	case f.code != codes.OK:
		return nil, status.Error(f.code, "no")
	case strings.HasPrefix(id, "refuse-"):
		return nil, status.Error(codes.InvalidArgument, "effective_time: is in the future (R-R3)")
	case strings.HasPrefix(id, "down-"), strings.HasPrefix(id, "flaky-") && call <= 2:
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if first, ok := f.first[id]; ok {
		return &cav1.ReportEventResponse{Revoked: first.Revoked, Replayed: true}, nil
	}
	resp := &cav1.ReportEventResponse{}
	switch req.Kind {
	case cav1.EventKind_EVENT_KIND_RECORD_CHANGE:
		resp.Revoked = []*cav1.RevokedCertificate{{Serial: "a" + id, Reason: "affiliationChanged"}}
	case cav1.EventKind_EVENT_KIND_LOSS_REPORT:
		resp.Revoked = []*cav1.RevokedCertificate{{Serial: "b" + id, Reason: "keyCompromise"}, {Serial: "c" + id, Reason: "keyCompromise", AlreadyRevoked: true}}
	}
	f.first[id] = resp
	return resp, nil
}

// feedLine writes one event line.
func feedLine(t *testing.T, id string, kind cav1.EventKind) string {
	t.Helper()
	req := &cav1.ReportEventRequest{EventId: id, MunicipalityCode: "13221", HolderId: "H-" + id, Kind: kind,
		EffectiveTime: "2026-11-21T09:00:00+09:00"}
	if kind == cav1.EventKind_EVENT_KIND_RECORD_CHANGE {
		req.ChangedFields = []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}
	}
	line, err := eventfeed.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	return string(line)
}

func testImporter(client cav1.EventsClient, stderr *bytes.Buffer) *importer {
	p := newProgress(stderr, 0)
	p.every = time.Hour
	return &importer{client: client, concurrency: 4, timeout: time.Second, attempts: 3, backoff: time.Millisecond,
		giveUpAfter: 5, display: p}
}

var lineNumber = regexp.MustCompile(`^line (\d+): `)

// TestImportOrder imports 60 lines with 4 events in flight whose answers
// arrive out of order, and checks that every line not applied is reported
// once, with its own line number, in line order; that the counts add up;
// and that a second import is all replays.
func TestImportOrder(t *testing.T) {
	var feed []string
	want := map[int]string{}
	for i := 1; i <= 60; i++ {
		switch {
		case i == 1:
			feed = append(feed, "# nightly feed")
		case i == 12:
			feed = append(feed, "")
		case i%10 == 7:
			feed = append(feed, `{"event_id":"x","holder":"渡邊"}`)
			want[i] = "line " + strconv.Itoa(i) + ": holder: is not a key of the format"
		case i == 20:
			feed = append(feed, feedLine(t, "refuse-20", cav1.EventKind_EVENT_KIND_DEATH))
			want[i] = "line 20: refused by the CA: InvalidArgument: effective_time: is in the future (R-R3)"
		case i == 30:
			feed = append(feed, feedLine(t, "flaky-30", cav1.EventKind_EVENT_KIND_DEATH))
		case i == 41:
			feed = append(feed, feedLine(t, "slow-41", cav1.EventKind_EVENT_KIND_LOSS_REPORT))
		case i%2 == 0:
			feed = append(feed, feedLine(t, fmt.Sprintf("move-%d", i), cav1.EventKind_EVENT_KIND_RECORD_CHANGE))
		default:
			feed = append(feed, feedLine(t, fmt.Sprintf("death-%d", i), cav1.EventKind_EVENT_KIND_DEATH))
		}
	}
	input := strings.Join(feed, "\n") + "\n"
	ca := newFakeCA()

	var stderr bytes.Buffer
	s, err := testImporter(ca, &stderr).run(context.Background(), strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	checkReports(t, stderr.String(), want)
	if ca.maxInFlight < 2 || ca.maxInFlight > 4 {
		t.Errorf("%d calls in flight at most, want 2-4 (--concurrency 4)", ca.maxInFlight)
	}
	if ca.calls["flaky-30"] != 3 {
		t.Errorf("flaky event called %d times, want 3 (two Unavailable, then applied)", ca.calls["flaky-30"])
	}
	// 60 lines: a comment, a blank, 6 malformed (7, 17, …, 57), a refusal
	// and 51 events applied: 27 address changes (even lines but 12, 20, 30),
	// 1 loss report (41), 23 deaths (30 and the odd lines left).
	wantSummary := &summary{lines: 60, skipped: 2, malformed: 6, refused: 1, applied: 51,
		revoked: map[string]int{"affiliationChanged": 27, "keyCompromise": 1}, alreadyRevoked: 1}
	if got, want := printed(s), printed(wantSummary); got != want {
		t.Errorf("summary:\n%s\nwant\n%s", got, want)
	}

	stderr.Reset()
	s, err = testImporter(ca, &stderr).run(context.Background(), strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	checkReports(t, stderr.String(), want)
	wantSummary = &summary{lines: 60, skipped: 2, malformed: 6, refused: 1, replayed: 51, revoked: map[string]int{}}
	if got, want := printed(s), printed(wantSummary); got != want {
		t.Errorf("second import's summary:\n%s\nwant\n%s", got, want)
	}
}

// checkReports checks that stderr reports exactly the lines of want, in
// order.
func checkReports(t *testing.T, stderr string, want map[int]string) {
	t.Helper()
	last := 0
	got := map[int]string{}
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		m := lineNumber.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("stderr line %q names no line", l)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if n <= last {
			t.Errorf("line %d reported after line %d", n, last)
		}
		last, got[n] = n, l
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("line %d reported as %q, want %q", n, got[n], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d lines reported, want %d:\n%s", len(got), len(want), stderr)
	}
	if strings.Contains(stderr, "渡邊") || strings.Contains(stderr, "H-") {
		t.Errorf("stderr carries data from the feed (R-P4):\n%s", stderr)
	}
}

func printed(s *summary) string {
	var b bytes.Buffer
	s.print(&b)
	return b.String()
}

func TestImportStops(t *testing.T) {
	lines := func(prefix string, n int) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			b.WriteString(feedLine(t, fmt.Sprintf("%s-%d", prefix, i), cav1.EventKind_EVENT_KIND_DEATH) + "\n")
		}
		return b.String()
	}
	t.Run("unreachable CA", func(t *testing.T) {
		var stderr bytes.Buffer
		s, err := testImporter(newFakeCA(), &stderr).run(context.Background(), strings.NewReader(lines("down", 100)))
		if err != nil {
			t.Fatal(err)
		}
		if s.failed < 5 || s.lines >= 100 || !strings.Contains(s.stopped, "5 events in a row could not be applied") {
			t.Errorf("failed %d, read %d lines, stopped %q; want a stop after 5 failures in a row", s.failed, s.lines, s.stopped)
		}
		if !strings.Contains(stderr.String(), "line 1: not applied after 3 attempts: Unavailable: connection refused\n") {
			t.Errorf("stderr:\n%s", stderr.String())
		}
	})
	t.Run("client not accepted", func(t *testing.T) {
		ca := newFakeCA()
		ca.code = codes.Unauthenticated
		var stderr bytes.Buffer
		s, err := testImporter(ca, &stderr).run(context.Background(), strings.NewReader(lines("ev", 100)))
		if err != nil {
			t.Fatal(err)
		}
		if s.refused == 0 || s.lines >= 100 || !strings.Contains(s.stopped, "--token-file") {
			t.Errorf("refused %d, read %d lines, stopped %q; want a stop at the first refusal", s.refused, s.lines, s.stopped)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		var stderr bytes.Buffer
		s, err := testImporter(newFakeCA(), &stderr).run(ctx, strings.NewReader(lines("slow", 100)))
		if !errors.Is(err, context.Canceled) || s.lines >= 100 {
			t.Errorf("err %v after %d lines; want context.Canceled before the end", err, s.lines)
		}
		if !strings.Contains(stderr.String(), "not applied: the import was interrupted") {
			t.Errorf("stderr:\n%s", stderr.String())
		}
	})
}

func TestProgress(t *testing.T) {
	clock := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	newP := func(tty bool, total int) (*progress, *bytes.Buffer) {
		var b bytes.Buffer
		p := newProgress(&b, total)
		p.tty, p.now, p.start, p.last = tty, func() time.Time { return clock }, clock, clock
		return p, &b
	}
	t.Run("not a terminal", func(t *testing.T) {
		p, b := newP(false, 1000)
		p.update(10, 10)
		clock = clock.Add(5 * time.Second)
		p.update(500, 480)
		p.message("line 501: kind: is required")
		clock = clock.Add(time.Second)
		p.update(600, 580)
		p.finish(1000, 950)
		want := "progress: 500/1000 lines (50%), 480 events, 96 events/s\nline 501: kind: is required\n"
		if b.String() != want {
			t.Errorf("got %q\nwant %q", b.String(), want)
		}
	})
	t.Run("terminal", func(t *testing.T) {
		p, b := newP(true, 0)
		p.update(10, 9)
		clock = clock.Add(10 * time.Millisecond)
		p.update(20, 19) // too soon to redraw
		p.message("line 21: kind: is required")
		clock = clock.Add(time.Second)
		p.update(30, 29)
		p.finish(40, 39)
		want := "\r10 lines, 9 events, 0 events/s\x1b[K" +
			"\r\x1b[Kline 21: kind: is required\n" +
			"\r30 lines, 29 events, 29 events/s\x1b[K" +
			"\r40 lines, 39 events, 39 events/s\x1b[K\n"
		if b.String() != want {
			t.Errorf("got %q\nwant %q", b.String(), want)
		}
	})
	t.Run("bar", func(t *testing.T) {
		p, _ := newP(true, 200)
		clock = clock.Add(2 * time.Second)
		if got, want := p.bar(50, 40, clock), "[#######.......................] 50/200 lines (25%), 40 events, 20 events/s"; got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
}

func TestOpenFeed(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		content string
		lines   int
	}{{"", 0}, {"\n", 1}, {"a", 1}, {"a\nb", 2}, {"a\nb\n", 2}, {strings.Repeat("x\n", 100000), 100000}} {
		path := filepath.Join(dir, "feed")
		if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		in, lines, closeIn, err := openFeed(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(in)
		closeIn()
		if lines != c.lines || b.String() != c.content {
			t.Errorf("%.10q: %d lines, read back %d bytes; want %d lines, %d bytes", c.content, lines, b.Len(), c.lines, len(c.content))
		}
	}
	// Standard input that is not a file (a pipe) is not counted.
	if _, lines, _, err := openFeed("-", strings.NewReader("a\nb\n")); err != nil || lines != 0 {
		t.Errorf("stdin pipe: %d lines, %v", lines, err)
	}
}

func TestEventsHelp(t *testing.T) {
	for _, args := range [][]string{{"events"}, {"events", "import"}} {
		r := run(t, append(args, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%v --help: code %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	r := run(t, "events", "import")
	if r.code == 0 || !strings.Contains(r.stderr, "accepts 1 arg(s), received 0") {
		t.Errorf("events import without FILE: code %d, stderr %q", r.code, r.stderr)
	}
	for _, flag := range []string{"--concurrency=0", "--timeout=0s"} {
		r := run(t, "events", "import", flag, "-")
		if r.code == 0 || !strings.Contains(r.stderr, strings.Split(flag, "=")[0]+" must be") {
			t.Errorf("events import %s: code %d, stderr %q", flag, r.code, r.stderr)
		}
	}
}
