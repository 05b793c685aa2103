package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shomei-pki/shomei/ca/issuer"
)

func newInitCommand(g *globals) *cobra.Command {
	var operator string
	var existingOK bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Run the key ceremony: create the SIGN and AUTH issuer keys in the HSM and their certificates",
		Long: `init runs the issuer key ceremony on an empty token and an empty store.

For each issuer (SIGN: JPKI for digital signature; AUTH: JPKI for user
authentication) it generates a key pair inside the HSM (private, sensitive,
non-extractable), builds the self-signed issuer certificate with the
configured DN, checks it, proves the key against it, and finally records both
issuers and an audit trail in the store in one transaction.

It refuses to run over a store that already has its issuers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, st, tok, err := g.open(true)
			if err != nil {
				return err
			}
			defer st.Close()
			defer tok.Close()
			if existingOK {
				if done, err := st.Initialized(); err != nil {
					return err
				} else if done {
					fmt.Fprintf(cmd.OutOrStdout(), "The store %s already has its issuers; nothing to do.\n", st.Where())
					return nil
				}
			}
			ic, err := c.IssuerConfig()
			if err != nil {
				return err
			}
			if operator == "" {
				operator = currentUser()
			}
			cer := issuer.Ceremony{Token: tok, Store: st, Config: ic, Operator: operator, Log: g.logger()}
			keys, err := cer.Run(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Key ceremony complete: %d issuers recorded in %s.\n\n", len(keys), st.Where())
			issuers, err := issuer.Load(st)
			if err != nil {
				return err
			}
			printIssuers(out, issuers)
			fmt.Fprintf(out, "\nStart the CA (shomei-ca --config %s), then export the issuer certificates for relying parties with:\n  shomeictl issuers export --out DIR\n", c.Path)
			return nil
		},
	}
	cmd.Flags().StringVar(&operator, "operator", "", "name of the operator running the ceremony, for the audit log (default: the login name)")
	cmd.Flags().BoolVar(&existingOK, "existing-ok", false, "succeed without doing anything when the store already has its issuers")
	return cmd
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return "unknown-operator"
}

// printIssuers writes one line per issuer key generation the ceremony made.
func printIssuers(w io.Writer, issuers []issuer.Issuer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ISSUER\tGEN\tSTATE\tALGORITHM\tKEY LABEL\tKEY ID\tSUBJECT KEY ID\tNOT BEFORE\tNOT AFTER")
	for _, is := range issuers {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", issuer.ShortName(is.Profile), is.Generation,
			strings.TrimPrefix(is.State.String(), "KEY_STATE_"), is.KeyAlgorithm, is.KeyLabel, hex.EncodeToString(is.KeyId),
			hex.EncodeToString(is.Certificate.SubjectKeyId), is.Certificate.NotBefore.UTC().Format(time.DateOnly),
			is.Certificate.NotAfter.UTC().Format(time.DateOnly))
	}
	tw.Flush()
}
