package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
)

// newKeysCommand is `shomeictl keys`: the issuer key generations of the
// running CA, and the key operations that need approval.
func newKeysCommand(_ *globals, client *caClient) *cobra.Command {
	keys := operatorGroup(&cobra.Command{
		Use:   "keys",
		Short: "The issuer key generations of the running CA: list them, rotate, retire, destroy",
	}, client)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the issuer key generations: state, key, validity, certificates, R-V7 warnings",
		Long: `list asks the running CA for every issuer key generation of both issuers:
its state (PENDING until its activation time, ACTIVE, SUPERSEDED, RETIRED,
COMPROMISED, DESTROYED), key algorithm, HSM label and id, subject key id,
validity, and how many of its certificates are unexpired and until when.

Below the table it says when a PENDING generation becomes active, and warns
(R-V7) when an active issuer's remaining life gets close to the longest
certificate it may have to issue: rotate before the date it gives.

The CA checks every active key against its certificate in the HSM when it
starts, and its /readyz reports the HSM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ops, ctx, done, err := client.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var resp *opsv1.ListKeysResponse
			if err := client.call(ctx, func(ctx context.Context) (err error) {
				resp, err = ops.ListKeys(ctx, &opsv1.ListKeysRequest{})
				return err
			}); err != nil {
				return err
			}
			printKeys(cmd.OutOrStdout(), resp.Generations)
			return nil
		},
	}
	keys.AddCommand(list)
	keys.AddCommand(keyOperationCommands(client)...)
	return keys
}

// printKeys writes one line per generation, then the activation times and
// the R-V7 warnings.
func printKeys(w io.Writer, gens []*opsv1.KeyGeneration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ISSUER\tGEN\tSTATE\tALGORITHM\tKEY LABEL\tKEY ID\tSUBJECT KEY ID\tNOT BEFORE\tNOT AFTER\tUNEXPIRED\tLAST EXPIRY")
	var notes []string
	for _, g := range gens {
		profile := strings.ToLower(strings.TrimPrefix(g.Profile.String(), "PROFILE_"))
		state := strings.TrimPrefix(g.State.String(), "KEY_STATE_")
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", profile, g.Generation, state, g.KeyAlgorithm, g.KeyLabel,
			g.KeyId, g.SubjectKeyId, day(g.NotBefore), day(g.NotAfter), g.UnexpiredCertificates, day(g.LastCertificateExpiry))
		if g.State == opsv1.KeyState_KEY_STATE_PENDING {
			notes = append(notes, fmt.Sprintf("%s becomes active at %s", g.Name, g.ActivateAt))
		}
		if g.Warning != "" {
			notes = append(notes, "WARNING "+g.Warning)
		}
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
}

// day is the date of an RFC 3339 time, "-" for none.
func day(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return "-"
	}
	return t.UTC().Format(time.DateOnly)
}
