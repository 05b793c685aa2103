package main

import (
	"github.com/spf13/cobra"
)

// newApprovalsCommand is `shomeictl approvals`: propose, list, approve and
// watch key operations on the running CA (R-K1, R-K2).
func newApprovalsCommand(c *caClient) *cobra.Command {
	return operatorGroup(&cobra.Command{
		Use:   "approvals",
		Short: "Propose, list, approve and follow key operations that need two operators",
	}, c)
}

// keyOperationCommands are `keys rotate|retire|destroy|compromise`: each
// proposes its operation for approval.
func keyOperationCommands(c *caClient) []*cobra.Command { return nil }
