package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
)

// The key operations an operator proposes for approval (R-K1, R-K2), as
// `approvals propose KIND` and `keys KIND` alike: each sends Propose to
// the running CA and prints the proposal and what the second operator
// must run.

// proposeFlags are the flags of the propose commands.
type proposeFlags struct {
	profile, activateAt, invalidSince, reason string
	generation                                uint32
}

// proposeCommands are the rotate, retire, destroy and compromise
// proposals, new commands on every call (cobra gives each one parent).
func proposeCommands(c *caClient) []*cobra.Command {
	rotate := proposeCommand(c, "rotate --profile sign|auth [--activate-at TIME] --reason TEXT",
		"Propose a new issuer key generation, with its link certificates (R-K1)",
		`rotate proposes a key rotation of the profile's issuer (R-K1): once approved,
the CA makes a new key generation in the HSM, its self-signed issuer
certificate and the two link certificates, and new issuance moves to it at
--activate-at (RFC 3339, at most a year ahead; default: at once).`,
		func(f *proposeFlags, p opsv1.Profile) *opsv1.Action {
			return &opsv1.Action{Action: &opsv1.Action_Rotate{Rotate: &opsv1.RotateKey{Profile: p, ActivateAt: f.activateAt}}}
		})
	retire := proposeCommand(c, "retire --profile sign|auth --generation N --reason TEXT",
		"Propose to retire an issuer key generation whose certificates have all expired",
		`retire proposes that the generation signs nothing more (no CRL, no OCSP
responder certificate). The CA refuses while any of its certificates is
unexpired. Its key stays in the HSM until destroyed (destroy).`,
		func(f *proposeFlags, p opsv1.Profile) *opsv1.Action {
			return &opsv1.Action{Action: &opsv1.Action_Retire{Retire: &opsv1.RetireKey{Profile: p, Generation: f.generation}}}
		})
	destroy := proposeCommand(c, "destroy --profile sign|auth --generation N --reason TEXT",
		"Propose to destroy a retired or compromised generation's private key in the HSM",
		`destroy proposes that the private key of a retired or compromised generation
be destroyed in the HSM. It cannot be undone.`,
		func(f *proposeFlags, p opsv1.Profile) *opsv1.Action {
			return &opsv1.Action{Action: &opsv1.Action_Destroy{Destroy: &opsv1.DestroyKey{Profile: p, Generation: f.generation}}}
		})
	compromise := proposeCommand(c, "compromise --profile sign|auth --generation N [--invalid-since TIME] --reason TEXT",
		"Propose recording an issuer key compromise: revoke every certificate of the generation (R-K2)",
		`compromise proposes recording that the generation's key is compromised (R-K2).
Once approved, the CA marks the generation COMPROMISED (it issues nothing more)
and revokes every certificate it issued with reason cACompromise, in batches;
CRLs and OCSP follow after each batch. If the CA stops half way it finishes
when it starts again, revoking nothing twice. Follow it with
'shomeictl approvals watch ID'. Issuance of the profile resumes with a
rotation (keys rotate).

--invalid-since is when the key is believed compromised (the certificates'
invalidityDate, RFC 3339); default: when the proposal is approved.`,
		func(f *proposeFlags, p opsv1.Profile) *opsv1.Action {
			return &opsv1.Action{Action: &opsv1.Action_Compromise{Compromise: &opsv1.CompromiseKey{Profile: p,
				Generation: f.generation, InvalidSince: f.invalidSince}}}
		})
	return []*cobra.Command{rotate, retire, destroy, compromise}
}

// proposeCommand is one propose command; action builds the action from
// the flags.
func proposeCommand(c *caClient, use, short, long string, action func(*proposeFlags, opsv1.Profile) *opsv1.Action) *cobra.Command {
	f := &proposeFlags{}
	name, _, _ := strings.Cut(use, " ")
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long + "\n\nAnother operator must approve it (approvals approve ID) before it runs.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := parseProfileFlag(f.profile)
			if err != nil {
				return err
			}
			if name != "rotate" && f.generation == 0 {
				return fmt.Errorf("--generation N is required (keys list shows the generations)")
			}
			if f.reason == "" {
				return fmt.Errorf("--reason TEXT is required: why, for the audit log")
			}
			ops, ctx, done, err := c.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var out *opsv1.ProposeResponse
			if err := c.call(ctx, func(ctx context.Context) error {
				out, err = ops.Propose(ctx, &opsv1.ProposeRequest{Action: action(f, p), Reason: f.reason})
				return err
			}); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			printProposal(w, out.Proposal)
			if out.Proposal.State == opsv1.ProposalState_PROPOSAL_STATE_OPEN {
				fmt.Fprintf(w, "\nIt runs once %d operators agreed. Another operator approves it with:\n  shomeictl approvals approve %s\n",
					out.Proposal.Required, out.Proposal.Id)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.profile, "profile", "", "the issuer: sign or auth")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why (1-256 characters), recorded in the audit log")
	if name == "rotate" {
		cmd.Flags().StringVar(&f.activateAt, "activate-at", "", "when new issuance moves to the new generation (RFC 3339); default at once")
	} else {
		cmd.Flags().Uint32Var(&f.generation, "generation", 0, "the key generation (keys list)")
	}
	if name == "compromise" {
		cmd.Flags().StringVar(&f.invalidSince, "invalid-since", "", "when the key is believed compromised (RFC 3339); default when approved")
	}
	return cmd
}

// parseProfileFlag reads --profile.
func parseProfileFlag(s string) (opsv1.Profile, error) {
	switch strings.ToLower(s) {
	case "sign":
		return opsv1.Profile_PROFILE_SIGN, nil
	case "auth":
		return opsv1.Profile_PROFILE_AUTH, nil
	}
	return 0, fmt.Errorf("--profile %q: sign or auth", s)
}
