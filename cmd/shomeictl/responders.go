package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/caller"
	"github.com/shomei-pki/shomei/ca/store"
)

func newRespondersCommand(g *globals, client *caClient) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "responders",
		Short: "List and revoke delegated OCSP responder certificates (R-R6)",
		Long: `Delegated OCSP responder certificates carry id-pkix-ocsp-nocheck (RFC 6960
§4.2.2.2.1): relying parties never check their status. A revoked responder
certificate therefore stops being usable when it expires (24 h by default,
ocsp.responder_validity) and the CA refuses to certify its key again, so the
replica cannot renew it. Revoke, then remove the key's pin from the replica's
clients[].responder_keys. Run with shomei-ca stopped (the store is locked
while it runs).`,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "Print every responder certificate the CA signed",
		Args:  cobra.NoArgs,
		RunE: g.readStore(func(st *store.Store, out io.Writer) error {
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SERIAL\tISSUER\tREPLICA\tSTATE\tNOT AFTER\tKEY\tREVOKED")
			err := st.ResponderCertificates(func(r *storev1.ResponderCertificate) error {
				replica, revoked := r.Replica, "-"
				if replica == "" {
					replica = "(the CA)"
				}
				if r.Revocation != nil {
					revoked = r.Revocation.RevokedAt.AsTime().UTC().Format(time.RFC3339)
				}
				_, err := fmt.Fprintf(w, "%x\t%s\t%s\t%s\t%s\tsha256:%x\t%s\n", r.Serial, r.Issuer, replica,
					strings.TrimPrefix(r.State.String(), "CERT_STATE_"), r.NotAfter.AsTime().UTC().Format(time.RFC3339), r.PublicKeySha256, revoked)
				return err
			})
			if err != nil {
				return err
			}
			return w.Flush()
		}),
	}
	var operator string
	revoke := &cobra.Command{
		Use:   "revoke SERIAL",
		Short: "Revoke a responder certificate; its key is never certified again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			serial, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(args[0]), "0x"))
			if err != nil || len(serial) == 0 {
				return fmt.Errorf("serial %q: want hex, as `responders list` prints it", args[0])
			}
			c, st, _, err := g.open(false)
			if err != nil {
				return err
			}
			defer st.Close()
			done, err := openAudit(cmd, c, st)
			if err != nil {
				return err
			}
			actor := caller.Caller{Kind: caller.Operator, Name: operator}.String()
			rec, err := st.RevokeResponder(serial, time.Now(), store.ReasonKeyCompromise, actor)
			done()
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no responder certificate has serial %x (see `shomeictl responders list`)", serial)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked responder certificate %x of %s (replica %q): usable until it expires at %s; key sha256:%x is never certified again\n",
				rec.Serial, rec.Issuer, rec.Replica, rec.NotAfter.AsTime().UTC().Format(time.RFC3339), rec.PublicKeySha256)
			return nil
		},
	}
	revoke.Flags().StringVar(&operator, "operator", "shomeictl", "who revokes it, for the audit log")
	cmd.AddCommand(list, revoke)
	return cmd
}
