package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
)

func newRespondersCommand(_ *globals, client *caClient) *cobra.Command {
	cmd := operatorGroup(&cobra.Command{
		Use:   "responders",
		Short: "List and revoke delegated OCSP responder certificates (R-R6)",
		Long: `Delegated OCSP responder certificates carry id-pkix-ocsp-nocheck (RFC 6960
§4.2.2.2.1): relying parties never check their status. A revoked responder
certificate therefore stops being usable when it expires (24 h by default,
ocsp.responder_validity) and the CA refuses to certify its key again, so the
replica cannot renew it. Revoke, then remove the key's pin from the replica's
clients[].responder_keys. Through the running CA (--ca).`,
	}, client)
	list := &cobra.Command{
		Use:   "list",
		Short: "Print every responder certificate the CA signed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp *opsv1.ListRespondersResponse
			err := client.call(cmd.Context(), func(ctx context.Context) error {
				api, ctx, done, err := client.dial(ctx)
				if err != nil {
					return err
				}
				defer done()
				resp, err = api.ListResponders(ctx, &opsv1.ListRespondersRequest{})
				return err
			})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SERIAL\tISSUER\tREPLICA\tSTATE\tNOT AFTER\tKEY\tREVOKED")
			for _, r := range resp.Responders {
				replica, revoked := r.Replica, r.RevokedAt
				if replica == "" {
					replica = "(the CA)"
				}
				if revoked == "" {
					revoked = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Serial, r.Issuer, replica, r.State, r.NotAfter, r.Key, revoked)
			}
			return w.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke SERIAL",
		Short: "Revoke a responder certificate; its key is never certified again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var resp *opsv1.RevokeResponderResponse
			err := client.call(cmd.Context(), func(ctx context.Context) error {
				api, ctx, done, err := client.dial(ctx)
				if err != nil {
					return err
				}
				defer done()
				resp, err = api.RevokeResponder(ctx, &opsv1.RevokeResponderRequest{Serial: args[0]})
				return err
			})
			if err != nil {
				return err
			}
			r := resp.Responder
			fmt.Fprintf(cmd.OutOrStdout(), "revoked responder certificate %s of %s (replica %q): usable until it expires at %s; key %s is never certified again\n",
				r.Serial, r.Issuer, r.Replica, r.NotAfter, r.Key)
			return nil
		},
	}
	cmd.AddCommand(list, revoke)
	return cmd
}
