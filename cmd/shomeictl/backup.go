package main

import (
	"github.com/spf13/cobra"
)

// newBackupCommand is `shomeictl backup`: a hot backup of the running CA's
// store, and its offline check.
func newBackupCommand(g *globals, c *caClient) *cobra.Command {
	return operatorGroup(&cobra.Command{
		Use:   "backup",
		Short: "Take a consistent backup of the running CA's store, and verify one",
	}, c)
}
