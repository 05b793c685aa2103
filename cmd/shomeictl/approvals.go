package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
)

// newApprovalsCommand is `shomeictl approvals`: propose, list, approve and
// watch key operations on the running CA (R-K1, R-K2).
func newApprovalsCommand(c *caClient) *cobra.Command {
	group := operatorGroup(&cobra.Command{
		Use:   "approvals",
		Short: "Propose, list, approve and follow key operations that need two operators",
		Long: `Key rotation, retirement, key destruction and issuer compromise need the
agreement of several operators (approvals.required in the CA's configuration,
2 by default). One operator proposes; others approve; the proposer cannot
approve their own proposal, nobody approves twice, and a proposal not approved
within approvals.expire_after (24h by default) expires and never runs. Every
step is recorded in the audit log with the operators' names.`,
	}, c)
	propose := &cobra.Command{
		Use:   "propose rotate|retire|destroy|compromise …",
		Short: "Propose a key operation (keys rotate|retire|destroy|compromise do the same)",
	}
	propose.AddCommand(proposeCommands(c)...)

	var limit uint32
	list := &cobra.Command{
		Use:   "list [--limit N]",
		Short: "List the proposals, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ops, ctx, done, err := c.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var out *opsv1.ListProposalsResponse
			if err := c.call(ctx, func(ctx context.Context) error {
				out, err = ops.ListProposals(ctx, &opsv1.ListProposalsRequest{Limit: limit})
				return err
			}); err != nil {
				return err
			}
			printProposals(cmd.OutOrStdout(), out.Proposals)
			return nil
		},
	}
	list.Flags().Uint32Var(&limit, "limit", 0, "at most this many (default 50, at most 1000)")

	var follow bool
	approve := &cobra.Command{
		Use:   "approve ID [--watch]",
		Short: "Approve a proposal; with the last approval needed it runs",
		Long: `approve adds your approval to the proposal ID. With the last approval needed
it runs: a rotation, retirement or destruction before approve returns; an
issuer compromise in the background, which --watch follows to the end.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ops, ctx, done, err := c.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var out *opsv1.ApproveResponse
			if err := c.call(ctx, func(ctx context.Context) error {
				out, err = ops.Approve(ctx, &opsv1.ApproveRequest{Id: args[0]})
				return err
			}); err != nil {
				return err
			}
			printProposal(cmd.OutOrStdout(), out.Proposal)
			if follow {
				return c.watch(ctx, ops, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return failedErr(out.Proposal)
		},
	}
	approve.Flags().BoolVar(&follow, "watch", false, "follow the proposal until it is done")

	watch := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a proposal until it is executed, failed or expired (a progress bar for a compromise)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ops, ctx, done, err := c.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			return c.watch(ctx, ops, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	group.AddCommand(propose, list, approve, watch)
	return group
}

// keyOperationCommands are `keys rotate|retire|destroy|compromise`: each
// proposes its operation for approval.
func keyOperationCommands(c *caClient) []*cobra.Command { return proposeCommands(c) }

// watch follows proposal id: progress on errw (a bar on a terminal, a line
// every few seconds otherwise), the final state on w. --timeout bounds the
// wait for the first message; after it the proposal may wait for approvals
// for hours, so only the connection's loss ends the wait.
func (c *caClient) watch(ctx context.Context, ops opsv1.OperationsClient, id string, w, errw io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ops.WatchProposal(ctx, &opsv1.WatchProposalRequest{Id: id})
	if err != nil {
		return c.explain(err)
	}
	first := time.AfterFunc(c.timeout, cancel)
	bar := newProposalBar(errw)
	var last *opsv1.Proposal
	for {
		m, err := stream.Recv()
		first.Stop()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			bar.clear()
			if last != nil && last.State == opsv1.ProposalState_PROPOSAL_STATE_RUNNING {
				return fmt.Errorf("%w\nthe proposal was RUNNING at %d of %d: a CA that stopped resumes it when it starts again", c.explain(err), last.Done, last.Total)
			}
			return c.explain(err)
		}
		last = m.Proposal
		bar.show(last)
	}
	bar.clear()
	if last == nil {
		return errors.New("the CA closed the watch without a message")
	}
	printProposal(w, last)
	return failedErr(last)
}

// failedErr makes a FAILED or EXPIRED proposal the command's failure.
func failedErr(p *opsv1.Proposal) error {
	switch p.State {
	case opsv1.ProposalState_PROPOSAL_STATE_FAILED:
		return fmt.Errorf("proposal %s failed: %s", p.Id, p.Error)
	case opsv1.ProposalState_PROPOSAL_STATE_EXPIRED:
		return fmt.Errorf("proposal %s expired without enough approvals; propose it again", p.Id)
	}
	return nil
}

// proposalBar shows a proposal's progress: a bar redrawn in place on a
// terminal (as progress.go draws an import's), otherwise a line every few
// seconds and at every change of state.
type proposalBar struct {
	w         io.Writer
	tty       bool
	last      time.Time
	lastState opsv1.ProposalState
	shown     bool
}

func newProposalBar(w io.Writer) *proposalBar {
	return &proposalBar{w: w, tty: isTerminal(w)}
}

func (b *proposalBar) show(p *opsv1.Proposal) {
	now := time.Now()
	line := fmt.Sprintf("%s %s", stateOf(p.State), p.Result)
	if p.Total > 0 {
		line = fmt.Sprintf("%s %d/%d (%d%%)", stateOf(p.State), p.Done, p.Total, p.Done*100/p.Total)
	}
	switch {
	case b.tty:
		bar := ""
		if p.Total > 0 {
			filled := int(min(uint64(barWidth), p.Done*barWidth/p.Total))
			bar = "[" + strings.Repeat("#", filled) + strings.Repeat(".", barWidth-filled) + "] "
		}
		fmt.Fprintf(b.w, "\r%s%s\x1b[K", bar, line)
		b.shown = true
	case p.State != b.lastState || now.Sub(b.last) >= 5*time.Second:
		fmt.Fprintf(b.w, "progress: %s\n", line)
		b.last = now
	}
	b.lastState = p.State
}

func (b *proposalBar) clear() {
	if b.shown {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.shown = false
	}
}

// stateOf is "OPEN", "RUNNING", ….
func stateOf(s opsv1.ProposalState) string { return strings.TrimPrefix(s.String(), "PROPOSAL_STATE_") }

// describe is what a proposal does, e.g. "compromise sign-g1".
func describe(act *opsv1.Action) string {
	short := func(p opsv1.Profile) string {
		return strings.ToLower(strings.TrimPrefix(p.String(), "PROFILE_"))
	}
	switch a := act.GetAction().(type) {
	case *opsv1.Action_Rotate:
		s := "rotate " + short(a.Rotate.Profile)
		if a.Rotate.ActivateAt != "" {
			s += " active from " + a.Rotate.ActivateAt
		}
		return s
	case *opsv1.Action_Retire:
		return fmt.Sprintf("retire %s-g%d", short(a.Retire.Profile), a.Retire.Generation)
	case *opsv1.Action_Destroy:
		return fmt.Sprintf("destroy %s-g%d", short(a.Destroy.Profile), a.Destroy.Generation)
	case *opsv1.Action_Compromise:
		s := fmt.Sprintf("compromise %s-g%d", short(a.Compromise.Profile), a.Compromise.Generation)
		if a.Compromise.InvalidSince != "" {
			s += " invalid since " + a.Compromise.InvalidSince
		}
		return s
	}
	return "?"
}

// printProposal writes one proposal, a field a line.
func printProposal(w io.Writer, p *opsv1.Proposal) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "proposal:\t%s\n", p.Id)
	fmt.Fprintf(tw, "action:\t%s\n", describe(p.Action))
	fmt.Fprintf(tw, "reason:\t%s\n", p.Reason)
	fmt.Fprintf(tw, "state:\t%s\n", stateOf(p.State))
	fmt.Fprintf(tw, "approvals:\t%d of %d (%s)\n", len(p.Approvers), p.Required, strings.Join(p.Approvers, ", "))
	fmt.Fprintf(tw, "proposed:\t%s by %s; expires %s\n", p.CreatedAt, p.Proposer, p.ExpiresAt)
	if p.Result != "" {
		fmt.Fprintf(tw, "result:\t%s\n", p.Result)
	}
	if p.Error != "" {
		fmt.Fprintf(tw, "error:\t%s\n", p.Error)
	}
	tw.Flush()
}

// printProposals writes a table, newest first.
func printProposals(w io.Writer, ps []*opsv1.Proposal) {
	if len(ps) == 0 {
		fmt.Fprintln(w, "no proposals")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tACTION\tAPPROVALS\tPROPOSER\tPROPOSED\tEXPIRES\tRESULT")
	for _, p := range ps {
		result := p.Result
		if p.Error != "" {
			result = p.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", p.Id, stateOf(p.State), describe(p.Action), len(p.Approvers), p.Required,
			p.Proposer, p.CreatedAt, p.ExpiresAt, result)
	}
	tw.Flush()
}
