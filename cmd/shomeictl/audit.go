package main

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	auditlog "github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/caller"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/config"
)

func newAuditCommand(g *globals, client *caClient) *cobra.Command {
	audit := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the append-only audit log (R-K3)",
	}
	var (
		acceptTail, acceptRollback bool
		operator                   string
	)
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log: hash chain, signed checkpoints, and every certificate's state against it",
		Long: `verify checks the audit log (R-K3), with shomei-ca stopped:

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
    restore, and only then, --accept-rollback --operator NAME records in the
    log who accepted which rollback, signs it and moves the witness back;
  - the unsigned tail: records after the last checkpoint. A clean stop of
    shomei-ca leaves none; after a crash, accept it with --accept-unsigned-tail;
  - reconciliation: every certificate's state (issued, revoked with its
    reason) must be explained by an audit record, and nothing the log issued
    or revoked may be missing or un-revoked. It names the first serial that
    is not.

It exits non-zero on any failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, tok, err := g.open(true)
			if err != nil {
				return err
			}
			defer st.Close()
			defer tok.Close()
			var (
				pub     crypto.PublicKey
				key     *hsm.Signer
				witness *auditlog.Witness
			)
			key, err = auditlog.Key(cmd.Context(), tok, false, nil)
			switch {
			case err == nil:
				pub = key.Public()
			case !errors.Is(err, auditlog.ErrNoKey):
				return err
			}
			if witness, err = auditlog.ReadWitness(cmd.Context(), tok, pub); err != nil {
				return fmt.Errorf("audit log of %s cannot be checked against the HSM: %w", st.Path(), err)
			}
			r, err := auditlog.Verify(st, pub, witness)
			if errors.Is(err, auditlog.ErrRolledBack) && acceptRollback {
				if operator == "" {
					return errors.New("--accept-rollback needs --operator: who accepts it, for the audit log")
				}
				cp, cerr := auditlog.NewCheckpointer(auditlog.CheckpointerConfig{Store: st, Signer: key, Witness: tok})
				if cerr != nil {
					return cerr
				}
				actor := caller.Caller{Kind: caller.Operator, Name: operator}.String()
				old, cerr := cp.AcceptRollback(cmd.Context(), actor)
				if cerr != nil {
					return fmt.Errorf("accepting the rollback: %w", cerr)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "rollback accepted by %s: the HSM had witnessed %s; the log ended at record %d (last checkpoint: record %d); audited and witnessed again\n",
					actor, old, r.Records, r.Signed)
				if witness, err = auditlog.ReadWitness(cmd.Context(), tok, pub); err != nil {
					return err
				}
				r, err = auditlog.Verify(st, pub, witness)
			}
			if err != nil {
				return fmt.Errorf("audit log of %s is NOT intact (%d records, %d checkpoints verified): %w", st.Path(), r.Records, r.Checkpoints, err)
			}
			if acceptRollback && r.Witnessed == 0 {
				return errors.New("--accept-rollback: the HSM holds no witness of the audit log; there is no rollback to accept")
			}
			out := cmd.OutOrStdout()
			if tail := r.UnsignedTail(); tail > 0 {
				msg := fmt.Sprintf("%d records after the last signed checkpoint (record %d) are an unsigned tail: a crash, or records written without the CA", tail, r.Signed)
				if !acceptTail {
					return fmt.Errorf("audit log of %s: %s (--accept-unsigned-tail after a known crash)", st.Path(), msg)
				}
				fmt.Fprintln(out, "warning:", msg)
			}
			if witness == nil {
				fmt.Fprintln(out, "warning: the HSM holds no witness of the audit log yet (a store older than it): shomei-ca creates it at its next start")
			}
			fmt.Fprintf(out, "audit log intact: %d records, %d signed checkpoints (last covers record %d), %d certificates reconciled; the HSM witnessed record %d\n",
				r.Records, r.Checkpoints, r.Signed, r.Certificates, r.Witnessed)
			return nil
		},
	}
	verify.Flags().BoolVar(&acceptTail, "accept-unsigned-tail", false, "accept records after the last checkpoint (after a crash of shomei-ca)")
	verify.Flags().BoolVar(&acceptRollback, "accept-rollback", false, "accept a log older than the HSM's witness (after restoring the store from a backup): audited, signed and witnessed")
	verify.Flags().StringVar(&operator, "operator", "", "who accepts a rollback, for the audit log")
	list := &cobra.Command{
		Use:   "list",
		Short: "Print the audit log, oldest first",
		Args:  cobra.NoArgs,
		RunE: g.readStore(func(st *store.Store, out io.Writer) error {
			return st.AuditRecords(func(r *storev1.AuditRecord) error {
				fields := make([]string, len(r.Fields))
				for i, f := range r.Fields {
					fields[i] = f.Key + "=" + f.Value
				}
				_, err := fmt.Fprintf(out, "%d\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.AsTime().UTC().Format(time.RFC3339),
					r.Actor, r.Action, strings.Join(fields, " "))
				return err
			})
		}),
	}
	audit.AddCommand(verify, list)
	return audit
}

// openAudit opens the audit log for this command's writes (R-K3): the
// HSM's witness seals the log at shomei-ca's clean stop, and a record
// appended without opening it through the HSM would be taken for a forgery
// at the CA's next start. So a command that writes needs the HSM. done
// signs a checkpoint of what the command wrote and seals the log again; if
// that fails, a warning says the log ends in an unsigned tail, which the CA
// signs at its next start.
func openAudit(cmd *cobra.Command, c *config.Config, st *store.Store) (done func(), err error) {
	tok, err := c.OpenHSM()
	if err != nil {
		return nil, fmt.Errorf("writing the audit log needs the HSM (its witness seals the log): %w", err)
	}
	fail := func(err error) (func(), error) {
		tok.Close()
		return nil, fmt.Errorf("opening the audit log for writing (R-K3); investigate with shomeictl audit verify: %w", err)
	}
	key, err := auditlog.Key(cmd.Context(), tok, false, nil)
	if err != nil {
		return fail(err)
	}
	cp, err := auditlog.NewCheckpointer(auditlog.CheckpointerConfig{Store: st, Signer: key, Witness: tok})
	if err != nil {
		return fail(err)
	}
	if err := cp.Open(cmd.Context()); err != nil {
		return fail(err)
	}
	return func() {
		defer tok.Close()
		if err := cp.Close(cmd.Context()); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: no audit checkpoint signed (%v): the log ends in an unsigned tail until shomei-ca starts\n", err)
		}
	}, nil
}
