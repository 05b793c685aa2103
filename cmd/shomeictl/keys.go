package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shomei-pki/shomei/ca/issuer"
)

func newKeysCommand(g *globals, client *caClient) *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Inspect the issuer keys",
	}
	var verify bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the issuers, their key generations, key ids, validity and state",
		Long: `list prints every issuer key generation recorded in the store.

With --verify it also opens the HSM and checks each key: that exactly one
private key has the recorded label and id, that it matches the issuer
certificate, and that a test signature made with it verifies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, tok, err := g.open(verify)
			if err != nil {
				return err
			}
			defer st.Close()
			if tok != nil {
				defer tok.Close()
			}
			issuers, err := issuer.Load(st)
			if err != nil {
				return err
			}
			if len(issuers) == 0 {
				return fmt.Errorf("the store %s has no issuers yet: run `shomeictl init`", st.Path())
			}
			var checks []string
			if verify {
				failed := 0
				for _, is := range issuers {
					if _, err := is.Signer(cmd.Context(), tok); err != nil {
						checks = append(checks, "FAILED: "+err.Error())
						failed++
					} else {
						checks = append(checks, "ok")
					}
				}
				printIssuers(cmd.OutOrStdout(), issuers, checks)
				if failed > 0 {
					return fmt.Errorf("%d of %d issuer keys failed the HSM check", failed, len(issuers))
				}
				return nil
			}
			printIssuers(cmd.OutOrStdout(), issuers, nil)
			return nil
		},
	}
	list.Flags().BoolVar(&verify, "verify", false, "check every key in the HSM against its certificate")
	keys.AddCommand(list)
	return keys
}

// printIssuers writes one line per issuer key generation; checks, when not
// nil, adds an HSM column.
func printIssuers(w io.Writer, issuers []issuer.Issuer, checks []string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "ISSUER\tGEN\tSTATE\tALGORITHM\tKEY LABEL\tKEY ID\tSUBJECT KEY ID\tNOT BEFORE\tNOT AFTER"
	if checks != nil {
		header += "\tHSM"
	}
	fmt.Fprintln(tw, header)
	for i, is := range issuers {
		state := strings.TrimPrefix(is.State.String(), "KEY_STATE_")
		line := fmt.Sprintf("%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s", issuer.ShortName(is.Profile), is.Generation, state,
			is.KeyAlgorithm, is.KeyLabel, hex.EncodeToString(is.KeyId), hex.EncodeToString(is.Certificate.SubjectKeyId),
			is.Certificate.NotBefore.UTC().Format(time.DateOnly), is.Certificate.NotAfter.UTC().Format(time.DateOnly))
		if checks != nil {
			line += "\t" + checks[i]
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}
