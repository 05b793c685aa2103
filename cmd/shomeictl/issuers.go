package main

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/shomei-pki/shomei/ca/issuer"
)

func newIssuersCommand(g *globals, client *caClient) *cobra.Command {
	issuers := &cobra.Command{
		Use:   "issuers",
		Short: "Work with the issuer certificates",
	}
	var out string
	export := &cobra.Command{
		Use:   "export --out DIR",
		Short: "Write the issuer certificates as PEM for relying parties",
		Long: `export writes each issuer certificate to DIR as PEM, one file per issuer key
generation (shomei-sign-g1.pem, shomei-auth-g1.pem, …), plus issuers.pem with all
of them, for relying parties to install as trust anchors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out DIR is required")
			}
			_, st, _, err := g.open(false)
			if err != nil {
				return err
			}
			defer st.Close()
			all, err := issuer.Load(st)
			if err != nil {
				return err
			}
			if len(all) == 0 {
				return fmt.Errorf("the store %s has no issuers yet: run `shomeictl init`", st.Path())
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			var bundle []byte
			for _, is := range all {
				block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.CertificateDer})
				bundle = append(bundle, block...)
				name := filepath.Join(out, is.KeyLabel+".pem")
				if err := writeFile(name, block); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s issuer, generation %d)\n", name, issuer.ShortName(is.Profile), is.Generation)
			}
			name := filepath.Join(out, "issuers.pem")
			if err := writeFile(name, bundle); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (all %d)\n", name, len(all))
			return nil
		},
	}
	export.Flags().StringVar(&out, "out", "", "directory to write the PEM files to (created if missing)")
	issuers.AddCommand(export)
	return issuers
}

// writeFile replaces name atomically, so a reader never sees half a file.
func writeFile(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
