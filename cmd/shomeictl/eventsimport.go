package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/eventfeed"
)

// importer replays a feed of events against the CA's Events service. Up to
// concurrency events are in flight at once; their outcomes are reported in
// line order all the same. Nothing it prints carries personal data: lines
// are named by number, refusals by the CA's own words (which name fields,
// never values, R-P4).
type importer struct {
	client      cav1.EventsClient
	concurrency int           // ReportEvent calls in flight
	timeout     time.Duration // per call
	attempts    int           // calls per event when the CA is unreachable
	backoff     time.Duration // before the first retry; doubles with each
	giveUpAfter int           // events in a row that fail before the import stops
	display     *progress     // where outcomes and progress go
}

// outcome is what became of one line.
type outcome int

const (
	applied   outcome = iota // the CA applied the event now
	replayed                 // the CA had applied it before: its first result
	refused                  // the CA refused it (the event, not the connection)
	malformed                // the line is not an event
	failed                   // not applied: the CA was unreachable or failed
)

// job is one event to report; seq is its place in the feed.
type job struct {
	seq, line int
	req       *cav1.ReportEventRequest
}

// lineResult is the outcome of one line; seq is its place in the feed.
type lineResult struct {
	seq     int
	line    int
	outcome outcome
	resp    *cav1.ReportEventResponse
	code    codes.Code // of the last call, when one was made
	report  string     // what to say about a line that was not applied
}

// summary counts the outcomes of an import.
type summary struct {
	lines, skipped                                int // lines read; blank or comment among them
	applied, replayed, refused, malformed, failed int
	revoked                                       map[string]int // certificates revoked now, by RFC 5280 reason
	alreadyRevoked                                int            // found revoked before by another event or request
	stopped                                       string         // why the import stopped before the end, if it did
}

// notApplied is how many lines were neither applied nor replayed.
func (s *summary) notApplied() int { return s.malformed + s.refused + s.failed }

// events is how many event lines the CA was asked about.
func (s *summary) events() int { return s.applied + s.replayed + s.refused + s.failed }

// run replays the feed in, reporting every line that is not applied as
// "line N: …" and progress on the display. It returns the counts, and an
// error only when the input could not be read or ctx ended.
func (im *importer) run(ctx context.Context, in io.Reader) (*summary, error) {
	feed := eventfeed.NewReader(in)
	// window bounds the lines read but not yet reported, so that one slow
	// event holds back at most this many finished ones.
	window := make(chan struct{}, 4*im.concurrency)
	results := make(chan lineResult, cap(window))
	jobs := make(chan job)
	stop := make(chan struct{})
	var readErr error
	var wg sync.WaitGroup

	wg.Add(1)
	go func() { // read the feed
		defer wg.Done()
		defer close(jobs)
		for seq := 0; ; seq++ {
			select {
			case window <- struct{}{}:
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
			rec, err := feed.Next()
			var bad *eventfeed.Error
			switch {
			case errors.Is(err, io.EOF):
				return
			case errors.As(err, &bad):
				results <- lineResult{seq: seq, line: bad.Line, outcome: malformed, report: bad.Error()}
			case err != nil:
				readErr = err
				return
			default:
				jobs <- job{seq: seq, line: rec.Line, req: rec.Request}
			}
		}
	}()
	for range im.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- im.apply(ctx, j)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	// Report the outcomes in line order as they complete.
	s := &summary{revoked: map[string]int{}}
	pending := map[int]lineResult{}
	next, inARow, done := 0, 0, 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for open := true; open; {
		select {
		case r, ok := <-results:
			if !ok {
				open = false
				break
			}
			pending[r.seq] = r
			for r, ok := pending[next]; ok; r, ok = pending[next] {
				delete(pending, next)
				next++
				<-window
				done = r.line
				if why := im.record(ctx, s, r, &inARow); why != "" && s.stopped == "" {
					s.stopped = why
					close(stop)
				}
			}
			im.display.update(done, s.events())
		case <-tick.C:
			im.display.update(done, s.events())
		}
	}
	s.lines, s.skipped = feed.Lines(), feed.Skipped()
	im.display.finish(s.lines, s.events())
	switch {
	case readErr != nil:
		return s, fmt.Errorf("reading the feed after line %d: %w", s.lines, readErr)
	case ctx.Err() != nil:
		return s, fmt.Errorf("interrupted with %d lines read: %w", s.lines, ctx.Err())
	}
	return s, nil
}

// record counts and reports the outcome of a line, and says why the import
// must stop, if it must: the CA refuses the client, or it has been
// unreachable for giveUpAfter events in a row.
func (im *importer) record(ctx context.Context, s *summary, r lineResult, inARow *int) string {
	s.count(r)
	if r.report != "" {
		im.display.message(r.report)
	}
	switch r.outcome {
	case failed:
		*inARow++
	case malformed:
	default:
		*inARow = 0
	}
	switch {
	case ctx.Err() != nil:
		return ""
	case r.code == codes.Unauthenticated:
		return "the CA does not accept this client (give its bearer token with --token-file)"
	case *inARow >= im.giveUpAfter:
		return fmt.Sprintf("%d events in a row could not be applied: is the CA running at that address?", *inARow)
	}
	return ""
}

// apply reports one event, retrying while the CA is unreachable. Retrying
// is safe: the event id makes a second call a replay.
func (im *importer) apply(ctx context.Context, j job) lineResult {
	r := lineResult{seq: j.seq, line: j.line}
	wait := im.backoff
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, im.timeout)
		resp, err := im.client.ReportEvent(callCtx, j.req)
		cancel()
		if err == nil {
			r.outcome, r.resp = applied, resp
			if resp.GetReplayed() {
				r.outcome = replayed
			}
			return r
		}
		st := status.Convert(err)
		r.code = st.Code()
		switch {
		case ctx.Err() != nil:
			r.outcome, r.report = failed, fmt.Sprintf("line %d: not applied: the import was interrupted", j.line)
			return r
		case refusal(st.Code()):
			r.outcome, r.report = refused, fmt.Sprintf("line %d: refused by the CA%s: %v: %s", j.line, refusalNote(st.Code()), st.Code(), st.Message())
			return r
		case !transient(st.Code()):
			r.outcome, r.report = failed, fmt.Sprintf("line %d: not applied: %v: %s", j.line, st.Code(), st.Message())
			return r
		case attempt >= im.attempts:
			r.outcome, r.report = failed, fmt.Sprintf("line %d: not applied after %d attempts: %v: %s", j.line, attempt, st.Code(), st.Message())
			return r
		}
		// Jitter spreads the retries of the events in flight.
		select {
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		case <-ctx.Done():
		}
		wait *= 2
	}
}

// refusal says whether a code is the CA's answer to the event itself:
// sending it again would get the same answer.
func refusal(c codes.Code) bool {
	switch c {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.AlreadyExists, codes.OutOfRange,
		codes.PermissionDenied, codes.Unauthenticated:
		return true
	}
	return false
}

// refusalNote names the refusals of the event feed's own making, which an
// operator resolves with the municipality rather than by resending (R-R1):
// an event for a holder the CA never issued to in that municipality, and
// an event id already used for a different event.
func refusalNote(c codes.Code) string {
	switch c {
	case codes.NotFound:
		return " (holder unknown to the CA in this municipality)"
	case codes.AlreadyExists:
		return " (event id already used for a different event)"
	}
	return ""
}

// transient says whether a call may succeed when tried again: the CA was
// unreachable, overloaded, or slower than --timeout (a call that timed out
// may have been applied; the retry then reports it replayed).
func transient(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}

// count adds a line's outcome to the summary.
func (s *summary) count(r lineResult) {
	switch r.outcome {
	case applied:
		s.applied++
		for _, c := range r.resp.GetRevoked() {
			if c.GetAlreadyRevoked() {
				s.alreadyRevoked++
			} else {
				s.revoked[c.GetReason()]++
			}
		}
	case replayed:
		s.replayed++
	case refused:
		s.refused++
	case malformed:
		s.malformed++
	case failed:
		s.failed++
	}
}
