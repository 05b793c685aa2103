package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

func newAuditCommand(g *globals) *cobra.Command {
	audit := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the append-only audit log (R-K3)",
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain for tampering",
		Long: `verify walks the audit log and checks that records are numbered without gaps,
that each carries the hash of the one before it, and that the last matches
the head the store keeps. It names the first record where the chain breaks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, _, err := g.open(false)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.VerifyAudit()
			if err != nil {
				return fmt.Errorf("audit log of %s is NOT intact (%d records verified before the break): %w", st.Path(), n, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit log intact: %d records\n", n)
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "Print the audit log, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, _, err := g.open(false)
			if err != nil {
				return err
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			return st.AuditRecords(func(r *storev1.AuditRecord) error {
				fields := make([]string, len(r.Fields))
				for i, f := range r.Fields {
					fields[i] = f.Key + "=" + f.Value
				}
				_, err := fmt.Fprintf(out, "%d\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.AsTime().UTC().Format(time.RFC3339),
					r.Actor, r.Action, strings.Join(fields, " "))
				return err
			})
		},
	}
	audit.AddCommand(verify, list)
	return audit
}
