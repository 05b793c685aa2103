package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
)

// newCompromiseCommand is `shomeictl issuers compromise`: R-K2.
func newCompromiseCommand(g *globals) *cobra.Command {
	var (
		operator, since string
		yes             bool
	)
	cmd := &cobra.Command{
		Use:   "compromise ISSUER --yes [--invalid-since TIME]",
		Short: "Record an issuer key compromise: revoke every certificate of that generation (R-K2)",
		Long: `compromise records that the issuer key generation ISSUER (e.g. sign-g1) is
compromised (R-K2). In one transaction it marks the generation COMPROMISED, so
it issues nothing more, and revokes every certificate it issued with reason
cACompromise, each in the audit log. The CRLs and OCSP answers follow as soon as
shomei-ca runs again (stop it first: the store is locked while it runs). New
issuance for that profile needs a new key generation.

--invalid-since is when the key is believed compromised (the certificates'
invalidityDate, RFC 3339); default now. Running it again changes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, gen, err := parseIssuerName(args[0])
			if err != nil {
				return err
			}
			now := time.Now()
			invalid := now
			if since != "" {
				if invalid, err = time.Parse(time.RFC3339, since); err != nil {
					return fmt.Errorf("--invalid-since: %w (e.g. 2026-11-21T09:00:00+09:00)", err)
				}
				if invalid.After(now) {
					return errors.New("--invalid-since is in the future")
				}
			}
			if !yes {
				return fmt.Errorf("this revokes every certificate of %s and stops it issuing; add --yes to go ahead", args[0])
			}
			c, st, _, err := g.open(false)
			if err != nil {
				if errors.Is(err, store.ErrLocked) {
					return fmt.Errorf("%w: stop shomei-ca first", err)
				}
				return err
			}
			defer st.Close()
			done, err := openAudit(cmd, c, st)
			if err != nil {
				return err
			}
			res, err := st.CompromiseIssuer(p, gen, now, invalid, operator)
			done()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is COMPROMISED: %d certificates revoked (cACompromise), %d already revoked; status revision %d\n",
				args[0], res.Revoked, res.AlreadyRevoked, res.Revision)
			return nil
		},
	}
	cmd.Flags().StringVar(&operator, "operator", "shomeictl", "who records it, for the audit log")
	cmd.Flags().StringVar(&since, "invalid-since", "", "when the key is believed compromised (RFC 3339); default now")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm")
	return cmd
}

// parseIssuerName reads "sign-g1" / "auth-g2".
func parseIssuerName(name string) (storev1.Profile, uint32, error) {
	short, g, ok := strings.Cut(name, "-g")
	n, err := strconv.ParseUint(g, 10, 32)
	if ok && err == nil && n > 0 {
		for _, p := range issuer.Profiles {
			if issuer.ShortName(p) == short {
				return p, uint32(n), nil
			}
		}
	}
	return 0, 0, fmt.Errorf("issuer %q: want <profile>-g<generation>, e.g. sign-g1 or auth-g1", name)
}
