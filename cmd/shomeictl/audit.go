package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	auditlog "github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/caller"
	"github.com/shomei-pki/shomei/ca/ops"
)

func newAuditCommand(g *globals, client *caClient) *cobra.Command {
	audit := operatorGroup(&cobra.Command{
		Use:   "audit",
		Short: "Verify and export the append-only audit log (R-K3)",
		Long: `audit talks to the running CA (--ca). With --offline it opens the store and
the HSM of --config itself, for a CA that is stopped: one that refuses to
start because its log does not verify, or a restored backup whose rollback
must be accepted.`,
	}, client)
	var (
		acceptTail, acceptRollback, offline bool
	)
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log: hash chain, signed checkpoints, the HSM's witness, and every certificate's state against it",
		Long: `verify checks the audit log (R-K3), through the running CA, or with
--offline on a stopped CA's store:

  - the hash chain: records numbered without gaps, each carrying the hash of
    the one before, the last matching the head the store keeps;
  - every checkpoint, signed by the audit key in the HSM (shomei-audit):
    its signature, that the record it signed is still that record (else the
    log was rewritten) and still there (else it was truncated);
  - the HSM's witness (shomei-audit-witness, a private object in the HSM
    holding the last checkpoint the CA signed): the log must still hold the
    record it witnessed (else it was rewritten) and a checkpoint at or past
    it (else it was truncated: records deleted with their checkpoints). A
    store restored from a backup is older than the witness too: after a
    restore, and only then, --offline --accept-rollback --operator NAME
    records in the log who accepted which rollback, signs it and moves the
    witness back;
  - the unsigned tail: records after the last checkpoint. A running CA
    always has one; offline, a clean stop of shomei-ca leaves none; after a
    crash, accept it with --accept-unsigned-tail;
  - reconciliation: every certificate's state (issued, revoked with its
    reason) must be explained by an audit record, and nothing the log issued
    or revoked may be missing or un-revoked. It names the first serial that
    is not.

A failure names the first bad record. It exits non-zero on any failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if offline {
				return verifyOffline(cmd, g, client.operator, acceptTail, acceptRollback)
			}
			if acceptTail || acceptRollback {
				return errors.New("--accept-unsigned-tail and --accept-rollback need --offline (shomei-ca stopped)")
			}
			return verifyOnline(cmd, client)
		},
	}
	verify.Flags().BoolVar(&offline, "offline", false, "check the store of --config with shomei-ca stopped, instead of asking the running CA")
	verify.Flags().BoolVar(&acceptTail, "accept-unsigned-tail", false, "with --offline: accept records after the last checkpoint (after a crash of shomei-ca)")
	verify.Flags().BoolVar(&acceptRollback, "accept-rollback", false, "with --offline: accept a log older than the HSM's witness (after restoring the store from a backup): audited as --operator, signed and witnessed")

	var since string
	var exportOffline bool
	export := &cobra.Command{
		Use:   "export [--since TIME]",
		Short: "Print the audit log from a time on, oldest first, as JSON lines",
		Long: `export prints the audit records at or after --since (RFC 3339; default: all),
oldest first, one JSON object a line, with the field names of the
shomei.ops.v1.AuditRecord message's JSON mapping (seq, time, actor, action,
fields, prevHash). Through the running CA, or with --offline from the store
of --config with shomei-ca stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			return auditRecords(cmd.Context(), g, client, since, exportOffline, func(r *opsv1.AuditRecord) error {
				return writeJSONLine(out, r)
			})
		},
	}
	export.Flags().StringVar(&since, "since", "", "records at or after this time, RFC 3339 (e.g. 2026-11-21T00:00:00+09:00)")
	export.Flags().BoolVar(&exportOffline, "offline", false, "read the store of --config with shomei-ca stopped")
	audit.AddCommand(verify, export, newAuditListCommand(g, client))
	return audit
}

// auditRecords calls each with the audit records at or after since
// (RFC 3339; "" for all), oldest first: through the running CA, or with
// offline from the store of --config.
func auditRecords(ctx context.Context, g *globals, client *caClient, since string, offline bool, each func(*opsv1.AuditRecord) error) error {
	if offline {
		return exportOfflineRecords(g, since, each)
	}
	return client.stream(ctx, func(ctx context.Context, alive func()) error {
		api, ctx, done, err := client.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		stream, err := api.ExportAudit(ctx, &opsv1.ExportAuditRequest{Since: since}, grpc.MaxCallRecvMsgSize(64<<20))
		if err != nil {
			return err
		}
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			alive()
			for _, r := range m.Records {
				if err := each(r); err != nil {
					return err
				}
			}
		}
	})
}

// writeJSONLine writes m as one line of compact JSON (protojson's field
// names; its whitespace, which it varies on purpose, removed).
func writeJSONLine(w io.Writer, m *opsv1.AuditRecord) error {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var line bytes.Buffer
	if err := json.Compact(&line, raw); err != nil {
		return err
	}
	line.WriteByte('\n')
	_, err = w.Write(line.Bytes())
	return err
}

// verifyOnline asks the running CA to verify its log.
func verifyOnline(cmd *cobra.Command, client *caClient) error {
	var r *opsv1.VerifyAuditResponse
	err := client.call(cmd.Context(), func(ctx context.Context) error {
		api, ctx, done, err := client.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		r, err = api.VerifyAudit(ctx, &opsv1.VerifyAuditRequest{})
		return err
	})
	if err != nil {
		return err
	}
	if !r.Ok {
		where := "not in one record"
		if r.FirstBadSeq > 0 {
			where = fmt.Sprintf("first bad record: %d", r.FirstBadSeq)
		}
		return fmt.Errorf("audit log is NOT intact (%s): %s", where, r.Problem)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "audit log intact: %d records, %d signed checkpoints; head: record %d sha256:%s\n",
		r.Records, r.Checkpoints, r.HeadSeq, r.HeadHash)
	return nil
}

// exportOfflineRecords reads the log of a stopped CA's store.
func exportOfflineRecords(g *globals, since string, each func(*opsv1.AuditRecord) error) error {
	var from time.Time
	if since != "" {
		var err error
		if from, err = time.Parse(time.RFC3339, since); err != nil {
			return fmt.Errorf("--since %q: want RFC 3339, e.g. 2026-11-21T00:00:00+09:00", since)
		}
	}
	_, st, _, err := g.open(false)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.AuditRecords(func(r *storev1.AuditRecord) error {
		if r.GetTime().AsTime().Before(from) {
			return nil
		}
		return each(ops.AuditRecordOf(r))
	})
}

// verifyOffline is verify --offline: audit.Check on the store and HSM of
// --config, with the escapes for a crash and a restored backup.
func verifyOffline(cmd *cobra.Command, g *globals, operator string, acceptTail, acceptRollback bool) error {
	_, st, tok, err := g.open(true)
	if err != nil {
		return err
	}
	defer st.Close()
	defer tok.Close()
	ctx := cmd.Context()
	r, witness, err := auditlog.Check(ctx, st, tok)
	if errors.Is(err, auditlog.ErrRolledBack) && acceptRollback {
		if operator == "" {
			return errors.New("--accept-rollback needs --operator: who accepts it, for the audit log")
		}
		key, kerr := auditlog.Key(ctx, tok, false, nil)
		if kerr != nil {
			return kerr
		}
		cp, cerr := auditlog.NewCheckpointer(auditlog.CheckpointerConfig{Store: st, Signer: key, Witness: tok})
		if cerr != nil {
			return cerr
		}
		actor := caller.Caller{Kind: caller.Operator, Name: operator}.String()
		old, cerr := cp.AcceptRollback(ctx, actor)
		if cerr != nil {
			return fmt.Errorf("accepting the rollback: %w", cerr)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "rollback accepted by %s: the HSM had witnessed %s; the log ended at record %d (last checkpoint: record %d); audited and witnessed again\n",
			actor, old, r.Records, r.Signed)
		r, witness, err = auditlog.Check(ctx, st, tok)
	}
	if err != nil {
		if f, ok := auditlog.FaultOf(err); ok && f.Seq > 0 {
			return fmt.Errorf("audit log of %s is NOT intact (first bad record: %d; %d records, %d checkpoints verified): %w", st.Where(), f.Seq, r.Records, r.Checkpoints, err)
		}
		return fmt.Errorf("audit log of %s is NOT intact (%d records, %d checkpoints verified): %w", st.Where(), r.Records, r.Checkpoints, err)
	}
	if acceptRollback && r.Witnessed == 0 {
		return errors.New("--accept-rollback: the HSM holds no witness of the audit log; there is no rollback to accept")
	}
	out := cmd.OutOrStdout()
	if tail := r.UnsignedTail(); tail > 0 {
		msg := fmt.Sprintf("%d records after the last signed checkpoint (record %d) are an unsigned tail: a crash, or records written without the CA", tail, r.Signed)
		if !acceptTail {
			return fmt.Errorf("audit log of %s: %s (--accept-unsigned-tail after a known crash)", st.Where(), msg)
		}
		fmt.Fprintln(out, "warning:", msg)
	}
	if witness == nil {
		fmt.Fprintln(out, "warning: the HSM holds no witness of the audit log yet (a store older than it): shomei-ca creates it at its next start")
	}
	fmt.Fprintf(out, "audit log intact: %d records, %d signed checkpoints (last covers record %d), %d certificates reconciled; the HSM witnessed record %d\n",
		r.Records, r.Checkpoints, r.Signed, r.Certificates, r.Witnessed)
	return nil
}
