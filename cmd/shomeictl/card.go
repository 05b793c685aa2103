package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func newCardCommand() *cobra.Command {
	card := &cobra.Command{
		Use:   "card",
		Short: "Stand in for a holder's card in demos and tests",
	}
	var out string
	newCmd := &cobra.Command{
		Use:   "new --out DIR",
		Short: "Make a card's key pairs and PKCS#10 requests (RSA-2048), as a card would",
		Long: `new makes what a card's chip makes at the counter: for each profile (sign,
auth) an RSA-2048 key pair and a PKCS#10 request signed with it, proving
possession of the key. It writes DIR/<profile>.key (PKCS#8 PEM, mode 0600),
DIR/<profile>.csr (PEM) and DIR/<profile>.csr.b64 (DER in base64, ready for a
grpcurl request). A real card keeps its private keys in the chip; these are
for demonstrations and tests only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out DIR is required")
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			for _, name := range []string{"sign", "auth"} {
				key, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					return err
				}
				csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
					Subject: pkix.Name{CommonName: "card " + name + " key"},
				}, key)
				if err != nil {
					return err
				}
				pk, err := x509.MarshalPKCS8PrivateKey(key)
				if err != nil {
					return err
				}
				files := []struct {
					name string
					data []byte
					mode os.FileMode
				}{
					{name + ".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600},
					{name + ".csr", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o644},
					{name + ".csr.b64", []byte(base64.StdEncoding.EncodeToString(csr) + "\n"), 0o644},
				}
				for _, f := range files {
					if err := os.WriteFile(filepath.Join(out, f.name), f.data, f.mode); err != nil {
						return err
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote sign and auth keys and requests to %s\n", out)
			return nil
		},
	}
	newCmd.Flags().StringVar(&out, "out", "", "directory for the keys and requests (created if missing)")
	card.AddCommand(newCmd)
	return card
}
