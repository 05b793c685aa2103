package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/clienttoken"
)

// importOptions are the flags of `events import`.
type importOptions struct {
	addr        string
	tokenFile   string
	caCert      string
	clientCert  string
	clientKey   string
	concurrency int
	timeout     time.Duration
}

func newEventsCommand() *cobra.Command {
	events := &cobra.Command{
		Use:   "events",
		Short: "Report resident-record events to a running CA",
		Long: `events talks to a running shomei-ca over gRPC (its Events service), as a
municipal system does. It does not use --config: it needs only the CA's
address and, when the CA has clients configured, a client's bearer token.`,
	}
	var o importOptions
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Replay a JSON-lines feed of events (e.g. a nightly resident-registry feed), idempotently",
		Long: `import reads FILE ("-" for standard input), one event per line in the
format of docs/events-feed.md, and reports each to the CA's Events service,
which revokes the certificates the event ends (R-R1).

It is idempotent: every event carries an event_id, and the CA answers a
replayed id with its first result and changes nothing, so a feed may be
imported again after an interruption or a failure; events already applied
are counted as replayed.

A malformed line is reported as "line N: <key>: <what is wrong>" on stderr
and skipped; so is an event the CA refuses (InvalidArgument,
FailedPrecondition, NotFound, PermissionDenied), with the CA's reason. When
the CA cannot be reached, each event is tried up to 5 times with growing
pauses before it counts as failed; after 20 failures in a row the import
stops. Blank lines and lines starting with '#' are skipped.

Up to --concurrency events are in flight at once; outcomes are still
reported in line order. Progress goes to stderr: a bar redrawn in place on a
terminal, a line every 5 seconds otherwise. At the end a summary goes to
stdout: lines read, events applied, replayed, refused, malformed and failed,
and the certificates revoked by reason. Nothing printed carries personal
data: lines are named by number and keys by name, never by value.

The exit status is 0 only when every line is blank, a comment, or an event
the CA applied or had applied before (replayed).`,
		Example: `  shomeictl events import var/feed-2026-11-21.jsonl
  shomeictl events import --addr ca.internal:8443 --token-file /etc/kiyose/shomei.token -
  zcat feed.jsonl.gz | shomeictl events import -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(cmd.Context(), o, args[0], cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	imp.Flags().StringVar(&o.addr, "addr", "127.0.0.1:8443", "the CA's gRPC address (host:port)")
	imp.Flags().StringVar(&o.tokenFile, "token-file", "", "file whose first line is the client's bearer token (not needed when the CA has no clients configured)")
	imp.Flags().StringVar(&o.caCert, "ca-cert", "", "PEM certificate(s) to verify the CA's TLS certificate with (server.tls); without it the connection is plaintext")
	imp.Flags().StringVar(&o.clientCert, "client-cert", "", "PEM client certificate to present when the CA requires mutual TLS (server.tls.client_ca_file); it names the client whose token is sent")
	imp.Flags().StringVar(&o.clientKey, "client-key", "", "the client certificate's private key (PEM, mode 0600)")
	imp.Flags().IntVar(&o.concurrency, "concurrency", 8, "events in flight at once (1-256)")
	imp.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "time limit of each call to the CA")
	events.AddCommand(imp)
	return events
}

// runImport is `events import FILE`: it prints the summary on stdout, and
// returns an error, for a non-zero exit status, when a line was not applied
// or the import could not finish.
func runImport(ctx context.Context, o importOptions, file string, stdin io.Reader, stdout, stderr io.Writer) error {
	if o.concurrency < 1 || o.concurrency > 256 {
		return fmt.Errorf("--concurrency must be 1-256, not %d", o.concurrency)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	opts, err := clienttoken.Dial{TokenFile: o.tokenFile, CAFile: o.caCert, CertFile: o.clientCert, KeyFile: o.clientKey}.Options()
	if err != nil {
		return fmt.Errorf("--token-file / --ca-cert / --client-cert / --client-key: %w", err)
	}
	in, total, closeIn, err := openFeed(file, stdin)
	if err != nil {
		return err
	}
	defer closeIn()
	conn, err := grpc.NewClient(o.addr, opts...)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", o.addr, err)
	}
	defer conn.Close()

	im := &importer{
		client: cav1.NewEventsClient(conn), concurrency: o.concurrency, timeout: o.timeout,
		attempts: 5, backoff: 250 * time.Millisecond, giveUpAfter: 20,
		display: newProgress(stderr, total),
	}
	s, err := im.run(ctx, in)
	s.print(stdout)
	switch {
	case err != nil:
		return err
	case s.stopped != "":
		return fmt.Errorf("stopped with %d lines read: %s", s.lines, s.stopped)
	case s.notApplied() > 0:
		return fmt.Errorf("%d of %d event lines not applied (malformed %d, refused %d, failed %d)",
			s.notApplied(), s.lines-s.skipped, s.malformed, s.refused, s.failed)
	}
	return nil
}

// openFeed opens the feed and counts its lines when it is a regular file
// (a pipe cannot be read twice).
func openFeed(file string, stdin io.Reader) (in io.Reader, lines int, closeIn func(), err error) {
	var f *os.File
	switch {
	case file == "-":
		in, closeIn = stdin, func() {}
		f, _ = stdin.(*os.File)
	default:
		if f, err = os.Open(file); err != nil {
			return nil, 0, nil, err
		}
		in, closeIn = f, func() { f.Close() }
	}
	if f == nil {
		return in, 0, closeIn, nil
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return in, 0, closeIn, nil
	}
	if lines, err = countLines(f); err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		closeIn()
		return nil, 0, nil, fmt.Errorf("counting the lines of %s: %w", file, err)
	}
	return in, lines, closeIn, nil
}

// countLines counts lines as eventfeed.Reader does: a last line without a
// line ending counts.
func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 64<<10)
	lines, last := 0, byte('\n')
	for {
		n, err := r.Read(buf)
		if n > 0 {
			lines += bytes.Count(buf[:n], []byte("\n"))
			last = buf[n-1]
		}
		if errors.Is(err, io.EOF) {
			if last != '\n' {
				lines++
			}
			return lines, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// print writes the summary: counts only, never data from the feed.
func (s *summary) print(w io.Writer) {
	row := func(name string, n int) { fmt.Fprintf(w, "%-24s%d\n", name, n) }
	row("lines read", s.lines)
	row("  blank or comment", s.skipped)
	row("  malformed", s.malformed)
	row("events applied", s.applied)
	row("events replayed", s.replayed)
	row("events refused", s.refused)
	row("events failed", s.failed)
	total := 0
	for _, n := range s.revoked {
		total += n
	}
	row("certificates revoked", total)
	reasons := make([]string, 0, len(s.revoked))
	for r := range s.revoked {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		row("  "+r, s.revoked[r])
	}
	row("already revoked before", s.alreadyRevoked)
}
