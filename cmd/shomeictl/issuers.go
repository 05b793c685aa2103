package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
)

func newIssuersCommand(g *globals, client *caClient) *cobra.Command {
	issuers := operatorGroup(&cobra.Command{
		Use:   "issuers",
		Short: "Work with the issuer certificates",
	}, client)
	var out string
	export := &cobra.Command{
		Use:   "export --out DIR",
		Short: "Write the issuer and link certificates as PEM for relying parties",
		Long: `export asks the running CA for its issuer certificates and writes them to DIR
as PEM, one file per certificate:

  shomei-sign-g1.pem, shomei-auth-g1.pem, …  each issuer key generation's
                                             self-signed certificate
  shomei-sign-g2-by-g1.pem                   link: generation 2's key
                                             certified by generation 1's
  shomei-sign-g1-by-g2.pem                   link: generation 1's key
                                             certified by generation 2's

plus issuers.pem with every self-signed certificate (trust anchors) and
links.pem with every link certificate (R-K1: a relying party that trusts
one generation verifies the other's certificates through them, e.g.
openssl verify -CAfile shomei-sign-g1.pem -untrusted links.pem cert.pem).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out DIR is required")
			}
			ops, ctx, done, err := client.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var resp *opsv1.ExportIssuersResponse
			if err := client.call(ctx, func(ctx context.Context) (err error) {
				resp, err = ops.ExportIssuers(ctx, &opsv1.ExportIssuersRequest{})
				return err
			}); err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			var anchors, links []byte
			var nAnchors, nLinks int
			for _, c := range resp.Certificates {
				if !safeName(c.Name) {
					return fmt.Errorf("the CA sent a certificate named %q, not a file name", c.Name)
				}
				block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.CertificateDer})
				name := filepath.Join(out, c.Name+".pem")
				if err := writeFile(name, block); err != nil {
					return err
				}
				kind := "issuer"
				if strings.Contains(c.Name, "-by-g") {
					links, nLinks, kind = append(links, block...), nLinks+1, "link"
				} else {
					anchors, nAnchors = append(anchors, block...), nAnchors+1
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s)\n", name, kind)
			}
			for _, f := range []struct {
				name string
				data []byte
				n    int
			}{{"issuers.pem", anchors, nAnchors}, {"links.pem", links, nLinks}} {
				name := filepath.Join(out, f.name)
				if err := writeFile(name, f.data); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d certificates)\n", name, f.n)
			}
			return nil
		},
	}
	export.Flags().StringVar(&out, "out", "", "directory to write the PEM files to (created if missing)")
	issuers.AddCommand(export)
	return issuers
}

// safeName is a certificate name usable as a file name in DIR.
func safeName(name string) bool {
	return name != "" && len(name) <= 64 && strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}) < 0
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
